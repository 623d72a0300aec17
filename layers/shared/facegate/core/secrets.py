"""The pepper for keyed subject hashes, read once per cold start from Secrets Manager."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SecretsProvider


def load_pepper(secrets: SecretsProvider, secret_arn: str) -> bytes:
    """The secret's value; the provider caches it for the life of the warm container."""
    value = secrets.get(secret_arn, max_age=3600)
    if not isinstance(value, str) or len(value) < 32:
        raise RuntimeError("pepper secret missing or too short")
    return value.encode("utf-8")
