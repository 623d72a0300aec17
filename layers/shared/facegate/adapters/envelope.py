"""KMS envelope encryption of templates: a fresh AES-256-GCM data key per template.

The encryption context (tenant, subject ref, purpose) is bound twice: KMS will only decrypt the data
key under the same context, and the same context is the GCM additional data, so a template copied to
another subject or purpose cannot be decrypted there.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facegate.errors import FacegateError


class KeyServiceError(FacegateError):
    status, code, title = 503, "key_service_unavailable", "Encryption keys are unavailable; retry"


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


def _aad(context: dict[str, str]) -> bytes:
    return json.dumps(context, sort_keys=True, separators=(",", ":")).encode()


class EnvelopeCipher:
    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    def seal(self, plaintext: bytes, context: dict[str, str]) -> Sealed:
        try:
            key = self._kms.generate_data_key(KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=context)
        except ClientError as error:
            raise KeyServiceError() from error
        nonce = os.urandom(12)
        ciphertext = AESGCM(key["Plaintext"]).encrypt(nonce, plaintext, _aad(context))
        return Sealed(ciphertext=ciphertext, encrypted_key=key["CiphertextBlob"], nonce=nonce)

    def open(self, sealed: Sealed, context: dict[str, str]) -> bytes:
        try:
            key = self._kms.decrypt(CiphertextBlob=sealed.encrypted_key, EncryptionContext=context, KeyId=self._key_id)[
                "Plaintext"
            ]
        except ClientError as error:
            raise KeyServiceError() from error
        return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, _aad(context))
