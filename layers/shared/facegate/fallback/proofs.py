"""Reading back a signed verification result (ES256 compact JWS made by the KMS signer), so that a fresh
face or fallback match can prove who asks for a new TOTP secret. Offline: the public key of /v1/keys."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ResultTokenReader:
    """The claims of a token this service signed, or None for anything else (bad signature, another key,
    another algorithm, garbage). Expiry and meaning are the caller's to check."""

    def __init__(self, jwks: Callable[[], dict[str, Any]]) -> None:
        self._jwks = jwks

    def claims(self, token: str) -> dict[str, Any] | None:
        try:
            head, body, signature = token.split(".")
            header = json.loads(_b64url(head))
            raw = _b64url(signature)
        except (ValueError, binascii.Error):
            return None
        if not isinstance(header, dict) or header.get("alg") != "ES256" or len(raw) != 64:
            return None
        keys = [k for k in self._jwks().get("keys", []) if k.get("kid") == header.get("kid")]
        if not keys:
            return None
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(_b64url(keys[0]["x"]), "big"), int.from_bytes(_b64url(keys[0]["y"]), "big"), ec.SECP256R1()
        )
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        try:
            numbers.public_key().verify(der, f"{head}.{body}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
            claims = json.loads(_b64url(body))
        except (InvalidSignature, ValueError, binascii.Error):
            return None
        return claims if isinstance(claims, dict) else None
