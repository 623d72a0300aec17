"""Sealed data: what envelope encryption (facegate.core.kms.EnvelopeCipher) makes, and its one-blob form.

A fresh AES-256-GCM data key per item. The encryption context (tenant, subject ref, purpose) is bound
twice: KMS will only decrypt the data key under the same context, and the same context is the GCM
additional data, so a template copied to another subject or purpose cannot be decrypted there.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    encrypted_key: bytes
    nonce: bytes


_PACKED = struct.Struct("<4sHH")  # magic, encrypted-key length, nonce length


def pack_sealed(sealed: Sealed) -> bytes:
    """One self-describing blob: header, encrypted data key, nonce, ciphertext."""
    header = _PACKED.pack(b"FGE1", len(sealed.encrypted_key), len(sealed.nonce))
    return header + sealed.encrypted_key + sealed.nonce + sealed.ciphertext


def unpack_sealed(blob: bytes) -> Sealed:
    magic, key_len, nonce_len = _PACKED.unpack_from(blob)
    if magic != b"FGE1":
        raise ValueError("not a sealed blob")
    start = _PACKED.size
    key = blob[start : start + key_len]
    nonce = blob[start + key_len : start + key_len + nonce_len]
    return Sealed(ciphertext=blob[start + key_len + nonce_len :], encrypted_key=key, nonce=nonce)
