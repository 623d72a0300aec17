"""Rate limits and the subject's OTP guess budget: what every fallback use case checks before it acts."""

from __future__ import annotations

import secrets
from datetime import timedelta

from facegate.core.clock import Clock, utcnow
from facegate.core.errors import RateLimitedError
from facegate.core.observability import count
from facegate.core.tenancy import subject_pk
from facegate.fallback.entities import Guess, Limits
from facegate.fallback.ports import OtpGuessStore, RateCounters
from facegate.fallback.rules import OTP_GUESS_LIMIT, OTP_GUESS_WINDOW, epoch


class RateLimiter:
    def __init__(self, counters: RateCounters, limits: Limits, clock: Clock = utcnow) -> None:
        self._counters = counters
        self._limits = limits
        self._clock = clock

    def check(self, tenant_id: str, subject_ref: str, action: str) -> None:
        self._hit(subject_pk(tenant_id, subject_ref), action, self._limits.per_subject)
        self._hit(f"T#{tenant_id}#RATE", "all", self._limits.per_tenant)

    def check_destination(self, tenant_id: str, destination_hash: str) -> None:
        self._hit(f"T#{tenant_id}#DEST#{destination_hash}", "sends", self._limits.per_destination)

    def _hit(self, pk: str, name: str, limit: int) -> None:
        now = epoch(self._clock())
        window = now - now % 60
        if self._counters.hit(pk, name, window, window + 120) > limit:
            count("FallbackRateLimited")
            raise RateLimitedError(retry_after=window + 60 - now)


class OtpGuessBudget:
    """At most `limit` code guesses per subject in any `window` (sliding), whatever the challenge, session or
    purpose: a new challenge or session gives no new guesses. Each guess takes its place *before* the code
    is checked, so parallel guesses never exceed the limit; a right code gives its place back. When the
    budget is spent, email_otp, sms_otp and totp are locked until the oldest guess ages out."""

    def __init__(
        self,
        guesses: OtpGuessStore,
        limit: int = OTP_GUESS_LIMIT,
        window: timedelta = OTP_GUESS_WINDOW,
        clock: Clock = utcnow,
    ) -> None:
        self._guesses = guesses
        self.limit = limit
        self._window = window
        self._clock = clock

    def locked_for(self, tenant_id: str, subject_ref: str) -> int | None:
        """Seconds until a code may be tried again, or None when the code methods are open."""
        now = epoch(self._clock())
        live = [t for t in self._guesses.guesses(tenant_id, subject_ref) if t >= self._since(now)]
        return self._retry_after(live, now) if len(live) >= self.limit else None

    def reserve(self, tenant_id: str, subject_ref: str) -> Guess | int:
        """A place for one guess, or (an int) the seconds until one frees up."""
        now = epoch(self._clock())
        window = int(self._window.total_seconds())
        token = secrets.token_hex(8)
        taken, live = self._guesses.reserve(
            tenant_id, subject_ref, token, now, self._since(now), self.limit, now + window
        )
        if not taken:
            return self._retry_after(live, now)
        return Guess(tenant_id, subject_ref, token, len(live))

    def give_back(self, guess: Guess) -> None:
        self._guesses.release(guess.tenant_id, guess.subject_ref, guess.token)

    def _since(self, now: int) -> int:
        """The oldest second still in the window: a guess counts for exactly `window`."""
        return now - int(self._window.total_seconds()) + 1

    def _retry_after(self, live: list[int], now: int) -> int:
        # The oldest guesses age out first; the limit-th newest decides when one place is free.
        return max(1, sorted(live)[-self.limit] + int(self._window.total_seconds()) - now)
