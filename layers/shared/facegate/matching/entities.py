"""Matching's entities: stored templates and the one rule on which may be used, security levels, attempts,
probes, results of verification and identification, and the 1:N gallery's keys.

Which stored templates may be used: the one rule every reader of templates applies (verification,
identification and its gallery, enrolment's consistency check, the fallback's offer of face).

A template is usable only while its subject's consent for the purpose is granted *in the same
uninterrupted period* (consent epoch) it was enrolled under. Once that period ends (withdrawal,
refusal, erasure request) the template is never used again, whatever happens to consent afterwards,
even if the erasure job that removes it has not run yet or dead-lettered.

Templates written before epochs existed carry none: they are usable only if they were created at or
after the start of the current granted period (so a template enrolled before a withdrawal never is).

A deliberate replacement writes a template marked `replacement`: the subject's earlier templates of
that purpose stop being usable at that instant, before they are erased.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from facegate.consent.entities import ConsentState

if TYPE_CHECKING:
    from facegate.liveness.entities import LivenessOutcome

FAR_BY_LEVEL: dict[str, float] = {"standard": 1e-2, "high": 1e-3, "very_high": 1e-4}
LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
PROBE_PREFIX = "probes/"

CALIBRATED_FARS = (1e-2, 1e-3, 1e-4)
TARGET_FALSE_CANDIDATE_RATE = 1e-2

N_SHARDS = 16
PREFIX = "galleries/"


@dataclass(frozen=True)
class EngineTemplate:
    """A face template as the engine made it (faceengine.Template, opaque here), with the model that made it.
    Compared and searched in memory; turned into bytes only to be sealed and stored."""

    model_id: str
    model_version: str
    engine: Any = field(repr=False)


@dataclass(frozen=True)
class StoredTemplate:
    tenant_id: str
    subject_ref: str
    purpose: str
    template_id: str
    enrolment_id: str
    model_id: str
    model_version: str
    ciphertext: bytes
    encrypted_key: bytes
    nonce: bytes
    created_at: str
    expires_at: int
    subject_sealed: bytes | None = None
    consent_epoch: str | None = None
    seq: int = 0
    replacement: bool = False


def template_context(tenant_id: str, subject_ref: str, purpose: str) -> dict[str, str]:
    return {"tenant": tenant_id, "subject": subject_ref, "purpose": purpose}


def subject_id_context(tenant_id: str, subject_ref: str) -> dict[str, str]:
    return {"tenant": tenant_id, "subject": subject_ref, "field": "subject_id"}


def enrolled_in_period(template: StoredTemplate, state: ConsentState | None) -> bool:
    """True if the template was enrolled under the consent period that is active now."""
    if state is None or not state.active:
        return False
    if template.consent_epoch is not None:
        return template.consent_epoch == state.epoch
    return state.epoch_started_at is not None and template.created_at >= state.epoch_started_at


def usable_templates(templates: Sequence[StoredTemplate], state: ConsentState | None) -> list[StoredTemplate]:
    """The templates that may be used now, oldest first."""
    live = sorted((t for t in templates if enrolled_in_period(t, state)), key=lambda t: (t.seq, t.created_at))
    floor = max((t.seq for t in live if t.replacement), default=0)
    return [t for t in live if t.seq >= floor]


@dataclass(frozen=True)
class Reservation:
    """One attempt counted in a window; released if the attempt ends without a decision."""

    tenant_id: str
    subject_ref: str
    purpose: str
    window_id: str


@dataclass(frozen=True)
class ShardPointer:
    shard_no: int
    version: int
    object_key: str
    rows: int


@dataclass(frozen=True)
class Verification:
    verification_id: str
    decision: str
    security_level: str
    model_id: str
    model_version: str
    result_token: str
    score: float | None = None  # only where the purpose exposes scores (an oracle otherwise)
    threshold: float | None = None
    liveness: LivenessOutcome | None = None  # None: no liveness service wired (unit tests of the face path)
    alternatives: list[str] | None = None  # the non-face methods, offered whenever liveness was not `live`


@dataclass(frozen=True)
class Identification:
    candidates: list[tuple[str, float | None]]  # scores only where the purpose exposes them
    threshold: float | None
    far: float
    gallery_size: int
    model_id: str
    model_version: str


def far_for_gallery(size: int) -> float:
    """The loosest calibrated per-comparison FAR that keeps size × FAR within the target; the
    strictest calibrated one beyond that (the answer then reports the higher expected rate)."""
    for far in CALIBRATED_FARS:
        if max(size, 1) * far <= TARGET_FALSE_CANDIDATE_RATE:
            return far
    return CALIBRATED_FARS[-1]


def probe_key(tenant_id: str, probe_id: str, subject_ref: str | None = None) -> str:
    """A verification probe lives under its subject (erasure finds it); an identification probe has none."""
    if subject_ref is None:
        return f"{PROBE_PREFIX}{tenant_id}/{probe_id}"
    return f"{PROBE_PREFIX}{tenant_id}/{subject_ref}/{probe_id}"


def subject_probes_prefix(tenant_id: str, subject_ref: str) -> str:
    """Every probe uploaded for a subject's verification (erased with the subject)."""
    return f"{PROBE_PREFIX}{tenant_id}/{subject_ref}/"


def gallery_id(tenant_id: str, purpose: str, model_id: str, model_version: str) -> str:
    return f"{tenant_id}#{purpose}#{model_id}@{model_version}"


def row_id(ref: str, template_id: str) -> str:
    return f"{ref}/{template_id}"


def parse_row(row: str) -> tuple[str, str | None]:
    """(subject_ref, template_id); the template is None for rows written before rows named it."""
    ref, _, template_id = row.partition("/")
    return ref, template_id or None
