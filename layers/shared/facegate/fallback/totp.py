"""TOTP set-up: a first secret, or its replacement with proof of another verification."""

from __future__ import annotations

from datetime import datetime

import pyotp

from facegate.core.audit import Auditor
from facegate.core.clock import Clock, iso, utcnow
from facegate.core.envelope import Sealed
from facegate.core.errors import InvalidRequestError, TotpReplacementRequiresProofError
from facegate.core.hashing import Subject
from facegate.core.observability import count, logger
from facegate.core.ports import Cipher
from facegate.core.tenancy import CallerContext
from facegate.fallback.budget import RateLimiter
from facegate.fallback.entities import TotpSetUp, ref_of
from facegate.fallback.ports import SessionStore, TotpStore
from facegate.fallback.proofs import ResultTokenReader
from facegate.fallback.rules import EXPIRED_GRACE, PROOF_LIFETIME, PROOF_METHODS, TOTP_ISSUER, epoch, totp_context


class TotpService:
    """TOTP set-up. The first secret of a subject needs only the `fallback` scope; replacing one needs proof,
    or else whoever holds a `fallback` token could swap in their own secret and get a signed match."""

    def __init__(
        self,
        totp: TotpStore,
        sessions: SessionStore,
        results: ResultTokenReader,
        issuer: str,
        limiter: RateLimiter,
        cipher: Cipher,
        auditor: Auditor,
        clock: Clock = utcnow,
    ) -> None:
        self._totp = totp
        self._sessions = sessions
        self._results = results
        self._issuer = issuer
        self._limiter = limiter
        self._cipher = cipher
        self._auditor = auditor
        self._clock = clock

    def set_up(
        self,
        caller: CallerContext,
        subject: Subject,
        label: str | None = None,
        proof_session_id: str | None = None,
        proof_result_token: str | None = None,
    ) -> TotpSetUp:
        """A new secret, stored sealed; the caller shows it once as a QR code. An existing secret is
        replaced only with proof: a verification of this subject by another method (a verified session or
        a signed match, each usable once), or the admin scope."""
        ref = subject.ref
        self._limiter.check(caller.tenant_id, ref, "totp")
        now = self._clock()
        proof = self._proof(caller, subject, proof_session_id, proof_result_token, now)
        secret = pyotp.random_base32()
        sealed: Sealed = self._cipher.seal(secret.encode(), totp_context(caller.tenant_id, ref))
        uri = pyotp.TOTP(secret).provisioning_uri(name=label or subject.id, issuer_name=TOTP_ISSUER)
        # Create-if-absent: two first set-ups at once cannot both win, the second one needs proof.
        if self._totp.create(caller.tenant_id, ref, sealed, iso(now)):
            self._auditor.record(caller, "fallback.totp_set_up", "ok", ref)
            count("TotpSetUp")
            return TotpSetUp(secret=secret, otpauth_uri=uri)
        if proof is None:
            self._auditor.record(caller, "fallback.totp_replaced", "refused", ref, basis="none")
            count("TotpReplacementRefused")
            raise TotpReplacementRequiresProofError(
                "pass proof_session_id or proof_result_token of a fresh verification by another method"
            )
        basis, verification_id = proof
        if verification_id is not None and not self._totp.use_proof(
            caller.tenant_id, ref, verification_id, epoch(now), epoch(now + PROOF_LIFETIME + EXPIRED_GRACE)
        ):
            self._auditor.record(caller, "fallback.totp_replaced", "refused", ref, basis=basis, reason="proof_used")
            count("TotpReplacementRefused")
            raise TotpReplacementRequiresProofError("this verification has already proved a replacement")
        self._totp.replace(caller.tenant_id, ref, sealed, iso(now))
        self._auditor.record(
            caller, "fallback.totp_replaced", "ok", ref, basis=basis, proof_verification_id=verification_id
        )
        count("TotpReplaced", basis=basis)
        logger.info("totp secret replaced", subject_ref=ref, basis=basis)
        return TotpSetUp(secret=secret, otpauth_uri=uri)

    def _proof(
        self,
        caller: CallerContext,
        subject: Subject,
        session_id: str | None,
        token: str | None,
        now: datetime,
    ) -> tuple[str, str | None] | None:
        """(basis, the verification to spend) for a valid proof, None for none; a proof given is checked
        even when no secret exists yet, so that a tenant learns at once that its proofs are wrong."""
        ref = subject.ref
        if session_id is not None and token is not None:
            raise InvalidRequestError("pass one proof: proof_session_id or proof_result_token")
        if session_id is not None:
            session = self._sessions.find(caller.tenant_id, session_id) if ref_of(session_id) == ref else None
            if (
                session is None
                or session.status != "verified"
                or session.verified_method not in PROOF_METHODS
                or session.verification_id is None
                or session.verified_at is None
                or now.timestamp() >= session.verified_at + PROOF_LIFETIME.total_seconds()
            ):
                raise self._bad_proof(caller, ref, "session")
            return f"session:{session.verified_method}", session.verification_id
        if token is not None:
            claims = self._results.claims(token)
            if (
                claims is None
                or claims.get("typ") != "verification-result"
                or claims.get("iss") != self._issuer
                or claims.get("aud") != caller.tenant_id
                or claims.get("sub") != subject.id
                or claims.get("decision") != "match"
                or claims.get("method") not in PROOF_METHODS
                or not isinstance(claims.get("jti"), str)
                or not isinstance(claims.get("exp"), int)
                or now.timestamp() >= claims["exp"]
            ):
                raise self._bad_proof(caller, ref, "result_token")
            return f"result:{claims['method']}", str(claims["jti"])
        if "admin" in caller.scopes:
            return "admin", None
        return None

    def _bad_proof(self, caller: CallerContext, ref: str, kind: str) -> TotpReplacementRequiresProofError:
        self._auditor.record(caller, "fallback.totp_replaced", "refused", ref, basis=kind, reason="proof_invalid")
        count("TotpReplacementRefused")
        return TotpReplacementRequiresProofError(
            f"the {kind.replace('_', ' ')} is no proof: it must be a match of this subject by face, e-mail, SMS or "
            f"manual review, at most {int(PROOF_LIFETIME.total_seconds() // 60)} minutes old, and used once"
        )
