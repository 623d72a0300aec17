"""Which stored templates may be used: the one rule every reader of templates applies (verification,
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

from facegate.repositories.consents import ConsentState
from facegate.repositories.templates import StoredTemplate


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
