"""KMS adapters: envelope encryption (a fresh AES-256-GCM data key per item, the encryption context bound
as KMS context and as GCM additional data) and ES256 JSON Web Signatures by a KMS asymmetric key (the
private key never leaves KMS)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import load_der_public_key

from facegate.core.envelope import Sealed
from facegate.core.errors import KeyServiceError, SigningUnavailableError

KMS_RAW_LIMIT = 4096  # KMS hashes RAW messages up to this size itself (SHA-256 for ECDSA_SHA_256)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class KmsSigner:
    """Signs compact JWS (ES256) with KMS and publishes the public half as a JWKS."""

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id
        self._public_der: bytes | None = None

    def _public_key(self) -> bytes:
        if self._public_der is None:
            try:
                self._public_der = self._kms.get_public_key(KeyId=self._key_id)["PublicKey"]
            except ClientError as error:
                raise SigningUnavailableError() from error
        return self._public_der

    @property
    def kid(self) -> str:
        return hashlib.sha256(self._public_key()).hexdigest()[:16]

    def jwks(self) -> dict[str, Any]:
        key = load_der_public_key(self._public_key())
        assert isinstance(key, ec.EllipticCurvePublicKey)
        numbers = key.public_numbers()
        return {
            "keys": [
                {
                    "kty": "EC",
                    "crv": "P-256",
                    "alg": "ES256",
                    "use": "sig",
                    "kid": self.kid,
                    "x": b64url(numbers.x.to_bytes(32, "big")),
                    "y": b64url(numbers.y.to_bytes(32, "big")),
                }
            ]
        }

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        header = {"alg": "ES256", "kid": self.kid, "typ": typ}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
        )
        message = signing_input.encode("ascii")
        if len(message) > KMS_RAW_LIMIT:
            raise ValueError("claims too large to sign")
        try:
            der = self._kms.sign(
                KeyId=self._key_id,
                Message=message,
                MessageType="RAW",
                SigningAlgorithm="ECDSA_SHA_256",
            )["Signature"]
        except ClientError as error:
            raise SigningUnavailableError() from error
        r, s = decode_dss_signature(der)
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


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
