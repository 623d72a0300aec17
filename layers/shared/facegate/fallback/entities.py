"""The fallback's entities: verification sessions (the methods a person may choose, always at least one
non-face), challenges (a code sent, a TOTP prompt, a manual review), what callers see of them, and limits.

Session and challenge ids start with the subject's keyed hash (40 hex) followed by 32 random hex: the id
alone locates the item in the subject's partition (facegate.fallback.dynamo), with no separate lookup item.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from facegate.core.envelope import Sealed

REF_LENGTH = 40


def new_id(subject_ref: str) -> str:
    """A session or challenge id: the subject's keyed hash, then 128 random bits."""
    return subject_ref + uuid.uuid4().hex


def ref_of(item_id: str) -> str:
    return item_id[:REF_LENGTH]


@dataclass(frozen=True)
class VerificationSession:
    tenant_id: str
    subject_ref: str
    session_id: str
    purpose: str
    status: str
    methods: list[str]
    locale: str
    sealed: Sealed | None
    created_at: str
    valid_until: int
    expires_at: int
    sent_at: dict[str, int] = field(default_factory=dict)
    sends: int = 0
    verification_id: str | None = None
    verified_method: str | None = None
    verified_at: int | None = None


@dataclass(frozen=True)
class Challenge:
    tenant_id: str
    subject_ref: str
    challenge_id: str
    session_id: str
    method: str
    status: str
    created_at: str
    valid_until: int
    expires_at: int
    code_hash: str | None = None
    attempts: int = 0
    sent_to: str | None = None
    decided_at: str | None = None
    verification_id: str | None = None


@dataclass(frozen=True)
class Limits:
    """Requests per minute; each counts per subject, and all of a tenant's together."""

    per_subject: int = 10
    per_tenant: int = 600
    per_destination: int = 5  # codes sent to one address or number, across subjects


@dataclass(frozen=True)
class Guess:
    """One reserved place in the subject's guess budget."""

    tenant_id: str
    subject_ref: str
    token: str
    used: int  # guesses in the window, this one included


@dataclass(frozen=True)
class SessionView:
    session_id: str
    purpose: str
    status: str
    methods: list[str]
    expires_at: str
    verification_id: str | None = None


@dataclass(frozen=True)
class ChallengeView:
    challenge_id: str
    session_id: str
    method: str
    status: str
    expires_at: str
    attempts_left: int | None = None
    resend_after: str | None = None
    sent_to: str | None = None
    review_id: str | None = None


@dataclass(frozen=True)
class FallbackResult:
    verification_id: str
    subject_id: str
    purpose: str
    method: str
    decision: str
    result_token: str
    session_id: str
    challenge_id: str


@dataclass(frozen=True)
class TotpSetUp:
    secret: str
    otpauth_uri: str
