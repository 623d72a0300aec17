"""Face attempts per subject and purpose, for the lockout (SessionsTable, TTL-expired).

One item per subject × purpose counts the attempts of a fixed window (it opens at the first attempt
and lasts `window`). An attempt is reserved by a single conditional UpdateItem *before* the engine
runs, so concurrent requests (several Lambda instances) can never evaluate more than `limit`
attempts in a window: DynamoDB applies a conditional write to one item atomically.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from facegate.repositories.base import bind, is_condition_failure, subject_pk


class AttemptsItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # FACE_ATTEMPTS#<purpose>
    attempts = NumberAttribute(null=True)  # reserved or failed attempts in the current window
    window_start = NumberAttribute(null=True)  # epoch seconds
    window_id = UnicodeAttribute(null=True)  # names the window, so a late release cannot touch a newer one
    expires_at = NumberAttribute(null=True)  # TTL: the end of the window


@dataclass(frozen=True)
class Reservation:
    """One attempt counted in a window; released if the attempt ends without a decision."""

    tenant_id: str
    subject_ref: str
    purpose: str
    window_id: str


def _key(tenant_id: str, subject_ref: str, purpose: str) -> tuple[str, str]:
    return subject_pk(tenant_id, subject_ref), f"FACE_ATTEMPTS#{purpose}"


class AttemptRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(AttemptsItem, table_name, region)

    def reserve(
        self, tenant_id: str, subject_ref: str, purpose: str, at: datetime, limit: int, window: timedelta
    ) -> Reservation | None:
        """Count one attempt if fewer than `limit` were counted in the current window; None if not (locked).

        Two single-item conditional updates, never a read-then-write: (1) add one to a current window
        below the limit; else (2) open a new window if there is none or it has ended. If both are
        refused, the window is current and full, unless another request opened a new window between
        the two: then (1) is tried again.
        """
        now = int(at.timestamp())
        floor = int((at - window).timestamp())
        for _ in range(3):
            item = AttemptsItem(*_key(tenant_id, subject_ref, purpose))
            try:
                item.update(
                    actions=[AttemptsItem.attempts.add(1)],
                    condition=(AttemptsItem.window_start > floor) & (AttemptsItem.attempts < limit),
                )
                return Reservation(tenant_id, subject_ref, purpose, str(item.window_id))
            except UpdateError as error:
                if not is_condition_failure(error):
                    raise
            window_id = uuid.uuid4().hex
            try:
                item.update(
                    actions=[
                        AttemptsItem.attempts.set(1),
                        AttemptsItem.window_start.set(now),
                        AttemptsItem.window_id.set(window_id),
                        AttemptsItem.expires_at.set(now + int(window.total_seconds())),
                    ],
                    condition=AttemptsItem.window_start.does_not_exist() | (AttemptsItem.window_start <= floor),
                )
                return Reservation(tenant_id, subject_ref, purpose, window_id)
            except UpdateError as error:
                if not is_condition_failure(error):
                    raise
            if self.recent_failures(tenant_id, subject_ref, purpose, at - window) >= limit:
                return None
        return None

    def release(self, reservation: Reservation) -> None:
        """Give an attempt back (it ended before a decision); a no-op if its window was cleared or replaced."""
        item = AttemptsItem(*_key(reservation.tenant_id, reservation.subject_ref, reservation.purpose))
        try:
            item.update(
                actions=[AttemptsItem.attempts.add(-1)],
                condition=(AttemptsItem.window_id == reservation.window_id) & (AttemptsItem.attempts > 0),
            )
        except UpdateError as error:
            if not is_condition_failure(error):
                raise

    def recent_failures(self, tenant_id: str, subject_ref: str, purpose: str, since: datetime) -> int:
        """Attempts counted in a window opened after `since` (in-flight reservations included)."""
        try:
            item = AttemptsItem.get(*_key(tenant_id, subject_ref, purpose), consistent_read=True)
        except AttemptsItem.DoesNotExist:
            return 0
        if item.window_start is None or item.window_start <= int(since.timestamp()):
            return 0
        return int(item.attempts or 0)

    def clear(self, tenant_id: str, subject_ref: str, purpose: str) -> None:
        """A match ends the window: the subject proved who they are."""
        AttemptsItem(*_key(tenant_id, subject_ref, purpose)).delete()
