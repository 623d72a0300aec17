"""Erasure of a subject (all purposes) or of one purpose, as an idempotent, retryable job.

Every store is erased by key; a failure midway raises, SQS redelivers, and the rerun removes what is
left (erasing an erased store removes nothing), adding to the counts already recorded.

A job erases only what existed when the withdrawal or erasure request it serves was made (its
`requested_at`, the cutoff), in every store, so a job that runs late never erases a newer consent or
enrolment. Each delete is conditional on the item being the one that was read. Templates enrolled
under the consent period a withdrawal ended are erased whenever they were written. Items that carry
no creation time are treated as older than the cutoff (erased); idempotency records are dated from
their expiry, to the second, and one of the same second as the request is erased too.
"""

from __future__ import annotations

import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from facegate.core.audit import Auditor
from facegate.core.clock import iso, utcnow
from facegate.core.errors import DeletionNotFoundError
from facegate.core.events import DomainEvents
from facegate.core.hashing import Subject
from facegate.core.observability import count, logger
from facegate.core.ports import Signer
from facegate.core.tenancy import CallerContext, subject_pk
from facegate.deletion.entities import FILING_THRESHOLD, DeletionJob, Stores, filing_warnings
from facegate.deletion.ports import DeletionStore, ErasureStore, JobQueue, ObjectStore, SubjectData
from facegate.enrolment.entities import UPLOAD_PREFIX
from facegate.matching.entities import subject_probes_prefix


def _for_purpose(item: dict[str, Any], sort: str, purpose: str) -> bool:
    return item.get("purpose") == purpose or f"#{purpose}" in str(item.get(sort, ""))


def _before(item: dict[str, Any], cutoff: str, attribute: str = "created_at") -> bool:
    """Created before the cutoff (ISO-8601 UTC strings of one format compare as times); an item
    without a creation time counts as older."""
    created = item.get(attribute)
    return created is None or str(created) < cutoff


GalleryDiscard = Callable[[str, str, list[str] | None, Callable[[str, str | None], bool]], int]
EndConsents = Callable[[CallerContext, Subject], object]  # withdraw every granted purpose of a subject, unannounced


class DeletionService:
    def __init__(
        self,
        stores: Stores,
        erasure: ErasureStore,
        objects: ObjectStore,
        deletions: DeletionStore,
        signer: Signer,
        queue: JobQueue,
        auditor: Auditor,
        issuer: str,
        gallery_discard: GalleryDiscard | None = None,
        end_overdue_enrolments: Callable[[], int] | None = None,
        end_consents: EndConsents | None = None,
        clock: Callable[[], datetime] = utcnow,
        more: Sequence[SubjectData] = (),
        events: DomainEvents | None = None,
    ) -> None:
        self._more = list(more)  # capabilities' own stores (proctoring), reached by their repositories
        self._events = events  # webhooks: erasure.completed
        self._gallery_discard = gallery_discard
        self._end_overdue_enrolments = end_overdue_enrolments
        self._end_consents = end_consents
        self._stores = stores
        self._erasure = erasure
        self._objects = objects
        self._deletions = deletions
        self._signer = signer
        self._queue = queue
        self._auditor = auditor
        self._issuer = issuer
        self._clock = clock

    # -- requests

    def request_subject_erasure(self, caller: CallerContext, subject: Subject) -> DeletionJob:
        """Answers the same whether or not the subject exists (no enumeration).

        The request withdraws every granted consent at once, so the subject's face data is never used
        again, even before the job runs. A consent granted after the request begins a new period: the
        job erases everything that existed at the request and leaves what came after it.
        """
        if self._end_consents is not None:
            self._end_consents(caller, subject)
        job = DeletionJob(
            deletion_id=uuid.uuid4().hex,
            tenant_id=caller.tenant_id,
            scope="subject",
            requested_at=iso(self._clock()),
            subject_ref=subject.ref,
        )
        self._deletions.create(job)
        self._queue.send({"deletion_id": job.deletion_id, "tenant_id": job.tenant_id})
        self._auditor.record(caller, "erasure.requested", "queued", job.subject_ref, deletion_id=job.deletion_id)
        return job

    def on_consent_withdrawn(self, detail: dict[str, Any]) -> DeletionJob:
        """ConsentWithdrawn → erase that purpose's face data (consent records stay as proof)."""
        job = DeletionJob(
            deletion_id=f"withdrawal-{detail['record_id']}",
            tenant_id=str(detail["tenant_id"]),
            scope="purpose",
            purposes=[str(detail["purpose"])],
            requested_at=str(detail.get("withdrawn_at") or iso(self._clock())),
            subject_ref=str(detail["subject_ref"]),
            ended_epoch=str(detail["epoch"]) if detail.get("epoch") else None,
        )
        self._deletions.create(job)  # a redelivered event finds the job and resumes it
        return self.run(job.tenant_id, job.deletion_id)

    def status(self, caller: CallerContext, deletion_id: str) -> DeletionJob:
        job = self._deletions.get(caller.tenant_id, deletion_id)
        if job is None:
            raise DeletionNotFoundError()
        return job

    # -- the job

    def run(self, tenant_id: str, deletion_id: str) -> DeletionJob:
        job = self._deletions.get(tenant_id, deletion_id)
        if job is None:
            raise DeletionNotFoundError()
        if job.status == "completed" or job.subject_ref is None:
            return job
        self._deletions.mark_running(job)
        ref = job.subject_ref
        counts = dict(job.counts)
        purposes = job.purposes if job.scope == "purpose" else None
        pk = subject_pk(tenant_id, ref)

        try:
            cutoff = job.requested_at
            erased_templates: set[str] = set()
            erased_jobs: list[str] = []
            for store in self._stores.face_data():
                items = self._erasure.items(store, pk)
                if purposes:
                    items = [i for i in items if any(_for_purpose(i, store.sort, p) for p in purposes)]
                if store is self._stores.templates:
                    # Also those of the ended consent period written after the withdrawal (an enrolment in flight).
                    items = [i for i in items if _before(i, cutoff) or _ended(i, job.ended_epoch)]
                else:
                    items = [i for i in items if _before(i, cutoff)]
                erased = self._erasure.delete(
                    store, items, "template_id" if store is self._stores.templates else "created_at"
                )
                if store is self._stores.templates:
                    erased_templates |= {str(i["template_id"]) for i in erased if "template_id" in i}
                if store is self._stores.jobs:
                    erased_jobs = [str(i["sk"]).removeprefix("ENROLMENT#") for i in erased]
                counts[store.name] = counts.get(store.name, 0) + len(erased)
            for data in self._more:
                erased_there = data.erase_subject(tenant_id, ref, purposes, cutoff, job.ended_epoch)
                counts[data.store_name] = counts.get(data.store_name, 0) + erased_there

            # Uploads of the erased enrolments, and any other upload of the subject older than the cutoff.
            prefix = f"{UPLOAD_PREFIX}{tenant_id}/{ref}/"
            cutoff_epoch = datetime.fromisoformat(cutoff).timestamp()
            keys = {prefix + e for e in erased_jobs}
            if not purposes:  # a withdrawal erases only the uploads of that purpose's enrolments
                keys |= set(self._objects.old_objects(self._stores.uploads_bucket, prefix, cutoff_epoch))
            removed = sum(self._objects.delete_objects(self._stores.uploads_bucket, key) for key in sorted(keys))
            # Probes uploaded for the subject's verification and never used (they name no purpose and live minutes:
            # any erasure takes them).
            removed += self._objects.delete_objects(self._stores.uploads_bucket, subject_probes_prefix(tenant_id, ref))
            counts["uploads"] = counts.get("uploads", 0) + removed

            if self._gallery_discard is not None:
                templates = self._stores.templates

                def doomed(purpose: str, template_id: str | None) -> bool:
                    """A row goes if its template was erased here or is gone (rows of templates enrolled after
                    the request stay); rows that name no template predate every request."""
                    if template_id is None or template_id in erased_templates:
                        return True
                    return template_id not in {str(i.get("template_id")) for i in self._erasure.items(templates, pk)}

                counts["galleries"] = counts.get("galleries", 0) + self._gallery_discard(
                    tenant_id, ref, purposes, doomed
                )

            idem = self._stores.idempotency
            # Records hold no creation time: they expire a fixed time after it.
            latest_expiry = int(cutoff_epoch) + self._stores.idempotency_seconds
            items = [
                i
                for i in self._erasure.items(idem, f"idempotency#{pk}")
                if int(i.get("expiration", 0)) <= latest_expiry
            ]
            counts[idem.name] = counts.get(idem.name, 0) + len(self._erasure.delete(idem, items))

            if not purposes:
                counts["consents"] = counts.get("consents", 0) + self._tombstone(tenant_id, ref, cutoff)

        except BaseException:
            # A rerun (SQS redelivers) adds to what this run erased: the receipt counts both runs.
            self._deletions.save_counts(job, counts)
            raise

        completed = self._clock()
        job.counts = counts
        job.completed_at = iso(completed)
        job.seconds = max(0.0, (completed - datetime.fromisoformat(job.requested_at)).total_seconds())
        job.receipt = self._signer.sign(
            {
                "iss": self._issuer,
                "typ": "deletion-receipt",
                "deletion_id": job.deletion_id,
                "tenant": tenant_id,
                "scope": job.scope,
                "purposes": purposes or "all",
                "stores": counts,
                "requested_at": job.requested_at,
                "completed_at": job.completed_at,
                "iat": int(completed.timestamp()),
            }
        )
        self._deletions.complete(job)
        job.status = "completed"
        caller = CallerContext(tenant_id, "facegate-deletion", frozenset(), None)
        self._auditor.record(caller, "erasure.completed", "ok", ref, ",".join(purposes or []) or None, **counts)
        count("SubjectErased" if job.scope == "subject" else "PurposeErased")
        logger.info("erasure completed", deletion_id=job.deletion_id, scope=job.scope)
        if self._events is not None:
            self._events.erasure_completed(tenant_id, job.deletion_id, job.scope, purposes, job.completed_at or "")
        job.subject_ref = None
        return job

    def _tombstone(self, tenant_id: str, ref: str, cutoff: str) -> int:
        """Replace the consent history before the cutoff with the proof that consent existed and when it
        ended. Records after the cutoff (a new consent) stay, chained to the tombstone's last hash."""
        store = self._stores.consents
        items = self._erasure.items(store, subject_pk(tenant_id, ref))
        events = sorted((i for i in items if str(i["sk"]).startswith("EVENT#")), key=lambda i: str(i["sk"]))
        records = [i for i in events if _before(i, cutoff)]
        newer = [i for i in events if not _before(i, cutoff)]
        states = [i for i in items if str(i["sk"]).startswith("STATE#") and _before(i, cutoff, "updated_at")]
        previous = next((i for i in items if i["sk"] == "TOMBSTONE"), None)
        removed = len(self._erasure.delete(store, records)) + len(self._erasure.delete(store, states, "updated_at"))
        head = next((i for i in items if i["sk"] == "HEAD"), None)
        if head is not None and not newer:  # nothing after the cutoff: the chain ends here
            removed += len(self._erasure.delete(store, [head], "head_hash"))
        removed += len(self._erasure.delete(store, [i for i in items if _stray(i) and _before(i, cutoff)]))
        if records or previous:
            purposes = sorted({str(r["purpose"]) for r in records} | set((previous or {}).get("purposes", [])))
            times = sorted(str(r["created_at"]) for r in records)
            self._erasure.put(
                store.table,
                {
                    "pk": subject_pk(tenant_id, ref),
                    "sk": "TOMBSTONE",
                    "purposes": purposes,
                    "first_record_at": (previous or {}).get("first_record_at") or (times[0] if times else ""),
                    "last_record_at": times[-1] if times else (previous or {}).get("last_record_at", ""),
                    "last_record_hash": str(records[-1]["record_hash"])
                    if records
                    else (previous or {}).get("last_record_hash", ""),
                    "erased_at": iso(self._clock()),
                },
            )
        return removed

    # -- retention

    def sweep(self) -> dict[str, int]:
        """Remove what TTL has not removed yet and what TTL cannot reach (objects past their day); end
        enrolments left pending past their deadline (a crashed instance, an upload that never came)."""
        now = self._clock()
        counts: dict[str, int] = {}
        if self._end_overdue_enrolments is not None:
            counts["enrolments_ended"] = self._end_overdue_enrolments()
        for store in (self._stores.templates, self._stores.jobs, self._stores.sessions, self._stores.challenges):
            expired = self._erasure.expired(store, int(now.timestamp()))
            erased = self._erasure.delete(store, expired, "expires_at")
            counts[store.name] = len(erased)
            if store is self._stores.templates:
                counts["galleries"] = self._discard_gallery_rows(erased)
        for data in self._more:
            counts[data.store_name] = data.sweep(int(now.timestamp()))
        old = self._objects.old_objects(self._stores.uploads_bucket, "", (now - timedelta(days=1)).timestamp())
        for key in old:
            self._objects.delete_objects(self._stores.uploads_bucket, key)
        counts["uploads"] = len(old)
        logger.info("retention sweep", extra={"removed": counts})
        return counts

    def _discard_gallery_rows(self, templates: list[dict[str, Any]]) -> int:
        """The 1:N rows of expired templates go with them (a row is named by its template id)."""
        if self._gallery_discard is None:
            return 0
        gone: dict[tuple[str, str], set[str]] = defaultdict(set)
        for item in templates:
            tenant_id, _, ref = str(item["pk"]).removeprefix("T#").rpartition("#S#")
            if "template_id" in item:
                gone[(tenant_id, ref)].add(str(item["template_id"]))
        discard = self._gallery_discard
        removed = 0
        for (tenant_id, ref), ids in gone.items():

            def expired(_purpose: str, template_id: str | None, ids: set[str] = ids) -> bool:
                return template_id in ids

            removed += discard(tenant_id, ref, None, expired)
        return removed

    # -- compliance

    def report(self, caller: CallerContext, purposes: list[dict[str, Any]], audit_table: str) -> dict[str, Any]:
        tenant = caller.tenant_id
        prefix = f"T#{tenant}#S#"
        individuals = self._erasure.partitions(self._stores.templates.table, prefix)
        # Decisions are counted from the audit log, which outlives erasure (kept at least three years).
        actions = Counter(self._erasure.audit_actions(audit_table, tenant, ("consent.", "fallback.")))
        decisions = {d: actions[f"consent.{d}"] for d in ("granted", "refused", "withdrawn")}
        done = [j for j in self._deletions.all_for_tenant(tenant) if j.status == "completed"]
        seconds = [j.seconds for j in done if j.seconds is not None]
        stored = len(individuals)
        warnings = filing_warnings(stored)
        return {
            "tenant_id": tenant,
            "generated_at": iso(self._clock()),
            "individuals_with_face_data": stored,
            "consents": decisions,
            "fallbacks_used": actions["fallback.verified"],
            "fallback_challenges_started": actions["fallback.challenge_started"],
            "erasures_completed": len(done),
            "erasure_median_seconds": statistics.median(seconds) if seconds else None,
            "identification_purposes": purposes,
            "filing_threshold": FILING_THRESHOLD,
            "warnings": warnings,
        }


def _ended(item: dict[str, Any], epoch: str | None) -> bool:
    return epoch is not None and item.get("consent_epoch") == epoch


def _stray(item: dict[str, Any]) -> bool:
    """Consent-table items of a subject that are neither history, state, head nor tombstone."""
    sk = str(item["sk"])
    return not (sk.startswith(("EVENT#", "STATE#")) or sk in ("HEAD", "TOMBSTONE"))
