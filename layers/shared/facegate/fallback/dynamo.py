"""Fallback data: verification sessions, rate counters and the OTP guess budget (SessionsTable);
challenges, TOTP secrets and used replacement proofs (ChallengesTable).

Everything lives in the subject's `T#<tenant>#S#<subject_ref>` partition, so that erasure finds it with
one Query and leaves nothing behind. Session and challenge ids therefore start with the subject's keyed
hash (40 hex) followed by 32 random hex: the id alone locates the item, with no separate lookup item.
Personal data (the subject id, e-mail, phone) is stored only sealed (KMS envelope) inside the session,
and only until the session ends.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import BinaryAttribute, ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from facegate.core.dynamo import bind, is_condition_failure
from facegate.core.envelope import Sealed
from facegate.core.errors import ConflictError
from facegate.core.tenancy import subject_pk
from facegate.fallback.entities import Challenge, VerificationSession, ref_of

# ---------------------------------------------------------------- items


class VerificationSessionItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # VSESSION#<session_id>
    session_id = UnicodeAttribute()
    # Not called `purpose`: erasing a purpose's *face* data (consent withdrawn) must leave the
    # non-face session of that purpose alone.
    session_purpose = UnicodeAttribute()
    status = UnicodeAttribute()  # open | verified
    methods = ListAttribute(of=UnicodeAttribute)
    locale = UnicodeAttribute()
    sealed = BinaryAttribute(legacy_encoding=False, null=True)  # {subject_id, email, phone}, AES-GCM
    sealed_key = BinaryAttribute(legacy_encoding=False, null=True)
    sealed_nonce = BinaryAttribute(legacy_encoding=False, null=True)
    email_sent_at = NumberAttribute(null=True)
    sms_sent_at = NumberAttribute(null=True)
    sends = NumberAttribute(default=0)
    verification_id = UnicodeAttribute(null=True)
    verified_method = UnicodeAttribute(null=True)  # the method that verified it (a TOTP replacement proof)
    verified_at = NumberAttribute(null=True)
    created_at = UnicodeAttribute()
    valid_until = NumberAttribute()  # epoch seconds: challenges may be started until then
    expires_at = NumberAttribute()  # DynamoDB TTL (later than valid_until while a review is open or a proof lives)


class RateItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref> | T#<tenant>#RATE | T#<tenant>#DEST#<hash>
    sk = UnicodeAttribute(range_key=True)  # RATE#<name>#<window start>
    hits = NumberAttribute(default=0)
    expires_at = NumberAttribute()


class OtpGuessesItem(Model):
    """Every code guess of a subject in the last window, across challenges, sessions and purposes."""

    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # OTP_GUESSES
    guesses: MapAttribute[str, Any] = MapAttribute()  # random token -> epoch seconds of the guess
    version = NumberAttribute(default=0)  # bumped by every reservation: the condition of the next one
    expires_at = NumberAttribute()  # DynamoDB TTL: the newest guess plus the window


class ChallengeItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # CHALLENGE#<challenge_id>
    challenge_id = UnicodeAttribute()
    session_id = UnicodeAttribute()
    method = UnicodeAttribute()
    status = UnicodeAttribute()
    code_hash = UnicodeAttribute(null=True)  # HMAC of the code; the code itself is never stored
    attempts = NumberAttribute(default=0)
    sent_to = UnicodeAttribute(null=True)  # masked destination, e.g. a***@example.com
    created_at = UnicodeAttribute()
    valid_until = NumberAttribute()
    decided_at = UnicodeAttribute(null=True)
    decided_by = UnicodeAttribute(null=True)
    reason_code = UnicodeAttribute(null=True)
    verification_id = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()


class TotpItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # TOTP
    ciphertext = BinaryAttribute(legacy_encoding=False)
    encrypted_key = BinaryAttribute(legacy_encoding=False)
    nonce = BinaryAttribute(legacy_encoding=False)
    last_step = NumberAttribute(default=0)  # the newest time step accepted: older or equal ones are replays
    created_at = UnicodeAttribute()


class ProofItem(Model):
    """A verification that proved a TOTP replacement once (a proof is single-use)."""

    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # PROOF#<verification_id>
    used_at = NumberAttribute()
    expires_at = NumberAttribute()  # DynamoDB TTL: once the proof could no longer be accepted anyway


# ---------------------------------------------------------------- records


# ---------------------------------------------------------------- repositories


class SessionRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(VerificationSessionItem, table_name, region)

    def create(self, session: VerificationSession) -> None:
        VerificationSessionItem(
            pk=subject_pk(session.tenant_id, session.subject_ref),
            sk=f"VSESSION#{session.session_id}",
            session_id=session.session_id,
            session_purpose=session.purpose,
            status=session.status,
            methods=session.methods,
            locale=session.locale,
            sealed=session.sealed.ciphertext if session.sealed else None,
            sealed_key=session.sealed.encrypted_key if session.sealed else None,
            sealed_nonce=session.sealed.nonce if session.sealed else None,
            created_at=session.created_at,
            valid_until=session.valid_until,
            expires_at=session.expires_at,
        ).save(condition=VerificationSessionItem.sk.does_not_exist())

    def find(self, tenant_id: str, session_id: str) -> VerificationSession | None:
        ref = ref_of(session_id)
        try:
            item = VerificationSessionItem.get(
                subject_pk(tenant_id, ref), f"VSESSION#{session_id}", consistent_read=True
            )
        except VerificationSessionItem.DoesNotExist:
            return None
        return _session(tenant_id, ref, item)

    def mark_sent(self, session: VerificationSession, method: str, at: int, not_since: int) -> bool:
        """Record a send, unless one for this method happened at or after `not_since` (the cooldown)."""
        attribute = (
            VerificationSessionItem.email_sent_at if method == "email_otp" else VerificationSessionItem.sms_sent_at
        )
        try:
            self._item(session).update(
                actions=[attribute.set(at), VerificationSessionItem.sends.add(1)],
                condition=VerificationSessionItem.pk.exists() & (attribute.does_not_exist() | (attribute < not_since)),
            )
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def mark_verified(
        self, session: VerificationSession, verification_id: str, method: str, at: int, keep_until: int
    ) -> bool:
        """Single use: open → verified once, and the sealed personal data goes with it. The method and
        time stay (until `keep_until` at least), so that the session can prove a TOTP replacement."""
        try:
            self._item(session).update(
                actions=[
                    VerificationSessionItem.status.set("verified"),
                    VerificationSessionItem.verification_id.set(verification_id),
                    VerificationSessionItem.verified_method.set(method),
                    VerificationSessionItem.verified_at.set(at),
                    VerificationSessionItem.expires_at.set(max(session.expires_at, keep_until)),
                    VerificationSessionItem.sealed.remove(),
                    VerificationSessionItem.sealed_key.remove(),
                    VerificationSessionItem.sealed_nonce.remove(),
                ],
                condition=VerificationSessionItem.status == "open",
            )
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def keep_until(self, session: VerificationSession, expires_at: int) -> None:
        """Keep the session while a manual review that needs it is open."""
        if expires_at > session.expires_at:
            self._item(session).update(actions=[VerificationSessionItem.expires_at.set(expires_at)])

    @staticmethod
    def _item(session: VerificationSession) -> VerificationSessionItem:
        return VerificationSessionItem(
            pk=subject_pk(session.tenant_id, session.subject_ref), sk=f"VSESSION#{session.session_id}"
        )


def _session(tenant_id: str, subject_ref: str, item: VerificationSessionItem) -> VerificationSession:
    sealed = (
        Sealed(bytes(item.sealed), bytes(item.sealed_key), bytes(item.sealed_nonce))
        if item.sealed is not None and item.sealed_key is not None and item.sealed_nonce is not None
        else None
    )
    sent_at = {
        method: int(at) for method, at in (("email_otp", item.email_sent_at), ("sms_otp", item.sms_sent_at)) if at
    }
    return VerificationSession(
        tenant_id=tenant_id,
        subject_ref=subject_ref,
        session_id=item.session_id,
        purpose=item.session_purpose,
        status=item.status,
        methods=[str(method) for method in item.methods],
        locale=item.locale,
        sealed=sealed,
        created_at=item.created_at,
        valid_until=int(item.valid_until),
        expires_at=int(item.expires_at),
        sent_at=sent_at,
        sends=int(item.sends or 0),
        verification_id=item.verification_id,
        verified_method=item.verified_method,
        verified_at=int(item.verified_at) if item.verified_at is not None else None,
    )


class RateLimitRepository:
    """Fixed-window counters, one atomic ADD per hit."""

    def __init__(self, table_name: str, region: str) -> None:
        bind(RateItem, table_name, region)

    def hit(self, pk: str, name: str, window_start: int, expires_at: int) -> int:
        item = RateItem(pk=pk, sk=f"RATE#{name}#{window_start}")
        item.update(actions=[RateItem.hits.add(1), RateItem.expires_at.set(expires_at)])
        return int(item.hits)


class OtpGuessRepository:
    """The subject's code guesses in a sliding window, reserved one at a time with a conditional write.

    A reservation reads the item, and writes the new guess (dropping those older than the window) on
    condition that nobody wrote since: `version` is unchanged. DynamoDB applies conditional writes to one
    item one after the other, so N parallel guesses never hold more than `limit` places. A lost race
    reads again; every lost round means another guess was recorded, so rounds are bounded.
    """

    KEY = "OTP_GUESSES"

    def __init__(self, table_name: str, region: str) -> None:
        bind(OtpGuessesItem, table_name, region)

    def guesses(self, tenant_id: str, subject_ref: str) -> list[int]:
        """Times of the recorded guesses (those older than the window included, until pruned)."""
        item = self._get(tenant_id, subject_ref)
        return sorted(_times(item).values()) if item else []

    def reserve(
        self, tenant_id: str, subject_ref: str, token: str, at: int, since: int, limit: int, keep_until: int
    ) -> tuple[bool, list[int]]:
        """Record guess `token` at `at` unless `limit` guesses made at or after `since` are there already.
        Answers whether it was recorded, and the times of the guesses in the window (this one included)."""
        key = subject_pk(tenant_id, subject_ref)
        for _ in range(2 * limit + 5):
            item = self._get(tenant_id, subject_ref)
            times = _times(item) if item else {}
            live = sorted(t for t in times.values() if t >= since)
            if len(live) >= limit:
                return False, live
            try:
                if item is None:
                    OtpGuessesItem(pk=key, sk=self.KEY, guesses={token: at}, version=1, expires_at=keep_until).save(
                        condition=OtpGuessesItem.pk.does_not_exist()
                    )
                else:
                    version = int(item.version or 0)
                    actions: list[Action] = [
                        OtpGuessesItem.guesses[token].set(at),
                        OtpGuessesItem.version.set(version + 1),
                        OtpGuessesItem.expires_at.set(keep_until),
                    ]
                    actions += [OtpGuessesItem.guesses[old].remove() for old, t in times.items() if t < since]
                    item.update(actions=actions, condition=OtpGuessesItem.version == version)
            except (PutError, UpdateError) as error:
                if is_condition_failure(error):
                    continue
                raise
            return True, sorted([*live, at])
        raise ConflictError("too many guesses at the same moment; retry")

    def release(self, tenant_id: str, subject_ref: str, token: str) -> None:
        """Give a reservation back (the code was right). Leaves `version` alone: a place only frees up."""
        try:
            OtpGuessesItem(pk=subject_pk(tenant_id, subject_ref), sk=self.KEY).update(
                actions=[OtpGuessesItem.guesses[token].remove()], condition=OtpGuessesItem.pk.exists()
            )
        except UpdateError as error:
            if not is_condition_failure(error):  # erased meanwhile: nothing to give back
                raise

    def _get(self, tenant_id: str, subject_ref: str) -> OtpGuessesItem | None:
        try:
            return OtpGuessesItem.get(subject_pk(tenant_id, subject_ref), self.KEY, consistent_read=True)
        except OtpGuessesItem.DoesNotExist:
            return None


def _times(item: OtpGuessesItem) -> dict[str, int]:
    raw = item.guesses.as_dict() if item.guesses is not None else {}
    return {str(token): int(at) for token, at in raw.items()}


class ChallengeRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(ChallengeItem, table_name, region)

    def create(self, challenge: Challenge) -> None:
        ChallengeItem(
            pk=subject_pk(challenge.tenant_id, challenge.subject_ref),
            sk=f"CHALLENGE#{challenge.challenge_id}",
            challenge_id=challenge.challenge_id,
            session_id=challenge.session_id,
            method=challenge.method,
            status=challenge.status,
            code_hash=challenge.code_hash,
            attempts=0,
            sent_to=challenge.sent_to,
            created_at=challenge.created_at,
            valid_until=challenge.valid_until,
            expires_at=challenge.expires_at,
        ).save(condition=ChallengeItem.sk.does_not_exist())

    def find(self, tenant_id: str, challenge_id: str) -> Challenge | None:
        ref = ref_of(challenge_id)
        try:
            item = ChallengeItem.get(subject_pk(tenant_id, ref), f"CHALLENGE#{challenge_id}", consistent_read=True)
        except ChallengeItem.DoesNotExist:
            return None
        return _challenge(tenant_id, ref, item)

    def pending_for_session(self, tenant_id: str, subject_ref: str, session_id: str, method: str) -> list[Challenge]:
        items = ChallengeItem.query(
            subject_pk(tenant_id, subject_ref),
            ChallengeItem.sk.startswith("CHALLENGE#"),
            filter_condition=(ChallengeItem.session_id == session_id)
            & (ChallengeItem.method == method)
            & (ChallengeItem.status == "pending"),
        )
        return [_challenge(tenant_id, subject_ref, item) for item in items]

    def add_attempt(self, challenge: Challenge, limit: int) -> int | None:
        """Count one attempt atomically; None once `limit` attempts have been made."""
        item = self._item(challenge)
        try:
            item.update(
                actions=[ChallengeItem.attempts.add(1)],
                condition=ChallengeItem.pk.exists() & (ChallengeItem.attempts < limit),
            )
        except UpdateError as error:
            if is_condition_failure(error):
                return None
            raise
        return int(item.attempts)

    def set_status(
        self,
        challenge: Challenge,
        status: str,
        expected: tuple[str, ...] = ("pending",),
        fields: dict[str, str] | None = None,
    ) -> bool:
        """Move to `status` only from one of the `expected` states (False if another request won)."""
        actions: list[Action] = [ChallengeItem.status.set(status)]
        for name, value in (fields or {}).items():
            actions.append(getattr(ChallengeItem, name).set(value))
        try:
            self._item(challenge).update(actions=actions, condition=ChallengeItem.status.is_in(*expected))
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    @staticmethod
    def _item(challenge: Challenge) -> ChallengeItem:
        return ChallengeItem(
            pk=subject_pk(challenge.tenant_id, challenge.subject_ref), sk=f"CHALLENGE#{challenge.challenge_id}"
        )


def _challenge(tenant_id: str, subject_ref: str, item: ChallengeItem) -> Challenge:
    return Challenge(
        tenant_id=tenant_id,
        subject_ref=subject_ref,
        challenge_id=item.challenge_id,
        session_id=item.session_id,
        method=item.method,
        status=item.status,
        created_at=item.created_at,
        valid_until=int(item.valid_until),
        expires_at=int(item.expires_at),
        code_hash=item.code_hash,
        attempts=int(item.attempts or 0),
        sent_to=item.sent_to,
        decided_at=item.decided_at,
        verification_id=item.verification_id,
    )


class TotpRepository:
    """One TOTP secret per subject (any purpose), sealed with context tenant + subject + "totp"."""

    def __init__(self, table_name: str, region: str) -> None:
        bind(TotpItem, table_name, region)
        bind(ProofItem, table_name, region)

    def create(self, tenant_id: str, subject_ref: str, sealed: Sealed, created_at: str) -> bool:
        """The subject's first secret: False (nothing written) when one exists already."""
        try:
            self._new(tenant_id, subject_ref, sealed, created_at).save(condition=TotpItem.pk.does_not_exist())
        except PutError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def replace(self, tenant_id: str, subject_ref: str, sealed: Sealed, created_at: str) -> None:
        """A new secret in place of the old one (the caller has checked the proof)."""
        self._new(tenant_id, subject_ref, sealed, created_at).save()

    def use_proof(self, tenant_id: str, subject_ref: str, verification_id: str, at: int, expires_at: int) -> bool:
        """Spend a verification as the proof of one replacement: False when it was spent already."""
        try:
            ProofItem(
                pk=subject_pk(tenant_id, subject_ref), sk=f"PROOF#{verification_id}", used_at=at, expires_at=expires_at
            ).save(condition=ProofItem.pk.does_not_exist())
        except PutError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    @staticmethod
    def _new(tenant_id: str, subject_ref: str, sealed: Sealed, created_at: str) -> TotpItem:
        return TotpItem(
            pk=subject_pk(tenant_id, subject_ref),
            sk="TOTP",
            ciphertext=sealed.ciphertext,
            encrypted_key=sealed.encrypted_key,
            nonce=sealed.nonce,
            last_step=0,
            created_at=created_at,
        )

    def get(self, tenant_id: str, subject_ref: str) -> tuple[Sealed, int] | None:
        try:
            item = TotpItem.get(subject_pk(tenant_id, subject_ref), "TOTP", consistent_read=True)
        except TotpItem.DoesNotExist:
            return None
        return Sealed(bytes(item.ciphertext), bytes(item.encrypted_key), bytes(item.nonce)), int(item.last_step or 0)

    def exists(self, tenant_id: str, subject_ref: str) -> bool:
        return self.get(tenant_id, subject_ref) is not None

    def use_step(self, tenant_id: str, subject_ref: str, step: int) -> bool:
        """Accept a time step once: False when it (or a later one) was already used."""
        try:
            TotpItem(pk=subject_pk(tenant_id, subject_ref), sk="TOTP").update(
                actions=[TotpItem.last_step.set(step)],
                condition=TotpItem.pk.exists() & (TotpItem.last_step < step),
            )
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True
