"""Deletion jobs (JobsTable): queued → running → completed, with per-store counts and a receipt.

While a job runs it holds the subject's keyed hash; when it completes that attribute is removed, so
the finished job names no subject.
"""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from facegate.core.dynamo import bind
from facegate.deletion.entities import DeletionJob, TableStore


class DeletionItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#DELETIONS
    sk = UnicodeAttribute(range_key=True)  # <deletion_id>
    tenant_id = UnicodeAttribute()
    subject_ref = UnicodeAttribute(null=True)  # removed on completion
    scope = UnicodeAttribute()  # subject | purpose
    purposes = ListAttribute(of=UnicodeAttribute, null=True)
    ended_epoch = UnicodeAttribute(null=True)  # a withdrawal: the consent period it ended
    status = UnicodeAttribute()
    counts = UnicodeAttribute(null=True)  # JSON {store: removed}
    receipt = UnicodeAttribute(null=True)
    requested_at = UnicodeAttribute()
    completed_at = UnicodeAttribute(null=True)
    seconds = NumberAttribute(null=True)


def _pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#DELETIONS"


class DeletionRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(DeletionItem, table_name, region)

    def create(self, job: DeletionJob) -> bool:
        """False when a job with this id exists already (a redelivered event)."""
        try:
            DeletionItem(
                pk=_pk(job.tenant_id),
                sk=job.deletion_id,
                tenant_id=job.tenant_id,
                subject_ref=job.subject_ref,
                scope=job.scope,
                purposes=job.purposes,
                ended_epoch=job.ended_epoch,
                status=job.status,
                requested_at=job.requested_at,
            ).save(condition=DeletionItem.sk.does_not_exist())
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, tenant_id: str, deletion_id: str) -> DeletionJob | None:
        try:
            item = DeletionItem.get(_pk(tenant_id), deletion_id)
        except DeletionItem.DoesNotExist:
            return None
        return DeletionJob(
            deletion_id=deletion_id,
            tenant_id=item.tenant_id,
            scope=item.scope,
            requested_at=item.requested_at,
            status=item.status,
            subject_ref=item.subject_ref,
            purposes=[str(p) for p in item.purposes] if item.purposes else None,
            ended_epoch=item.ended_epoch,
            counts=json.loads(item.counts) if item.counts else {},
            receipt=item.receipt,
            completed_at=item.completed_at,
            seconds=float(item.seconds) if item.seconds is not None else None,
        )

    def mark_running(self, job: DeletionJob) -> None:
        DeletionItem(pk=_pk(job.tenant_id), sk=job.deletion_id).update(actions=[DeletionItem.status.set("running")])

    def save_counts(self, job: DeletionJob, counts: dict[str, int]) -> None:
        """What a run erased before it failed, so that the rerun's receipt adds to it."""
        DeletionItem(pk=_pk(job.tenant_id), sk=job.deletion_id).update(
            actions=[DeletionItem.counts.set(json.dumps(counts, sort_keys=True))]
        )

    def complete(self, job: DeletionJob) -> None:
        actions: list[Any] = [
            DeletionItem.status.set("completed"),
            DeletionItem.counts.set(json.dumps(job.counts, sort_keys=True)),
            DeletionItem.receipt.set(job.receipt or ""),
            DeletionItem.completed_at.set(job.completed_at or ""),
            DeletionItem.seconds.set(job.seconds or 0),
            DeletionItem.subject_ref.remove(),
        ]
        DeletionItem(pk=_pk(job.tenant_id), sk=job.deletion_id).update(actions=actions)

    def all_for_tenant(self, tenant_id: str) -> list[DeletionJob]:
        return [job for item in DeletionItem.query(_pk(tenant_id)) if (job := self.get(tenant_id, item.sk)) is not None]


_deserialize = TypeDeserializer().deserialize
_serialize = TypeSerializer().serialize


class ErasureRepository:
    def __init__(self, dynamodb_client: Any) -> None:
        self._ddb = dynamodb_client

    def items(self, store: TableStore, pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": store.table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": store.partition},
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            page = self._ddb.query(**kwargs)
            items += [{k: _deserialize(v) for k, v in item.items()} for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(
        self, store: TableStore, items: list[dict[str, Any]], guard: str | None = "created_at"
    ) -> list[dict[str, Any]]:
        """Delete each item only if it is still the one that was read (same `guard` attribute, when it
        has one), so that an item written since under the same key stays. Returns those deleted."""
        deleted = []
        for item in items:
            condition: dict[str, Any] = {}
            if guard is not None and guard in item:
                condition = {
                    "ConditionExpression": "#guard = :guard",
                    "ExpressionAttributeNames": {"#guard": guard},
                    "ExpressionAttributeValues": {":guard": _serialize(item[guard])},
                }
            try:
                self._ddb.delete_item(
                    TableName=store.table,
                    Key={store.partition: {"S": item[store.partition]}, store.sort: {"S": item[store.sort]}},
                    **condition,
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    continue  # replaced since it was read: not ours to erase
                raise
            deleted.append(item)
        return deleted

    def put(self, table: str, item: dict[str, Any]) -> None:
        self._ddb.put_item(TableName=table, Item={k: _serialize(v) for k, v in item.items()})

    def scan(self, table: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Whole-table reads, for the retention sweep and the compliance report only."""
        items: list[dict[str, Any]] = []
        args: dict[str, Any] = {"TableName": table, **kwargs}
        while True:
            page = self._ddb.scan(**args)
            items += [{k: _deserialize(v) for k, v in item.items()} for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return items
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def expired(self, store: TableStore, now: int) -> list[dict[str, Any]]:
        """Items whose TTL (`expires_at`, epoch seconds) has passed but that DynamoDB has not removed yet."""
        return self.scan(
            store.table,
            FilterExpression="expires_at < :now",
            ExpressionAttributeValues={":now": {"N": str(now)}},
        )

    def partitions(self, table: str, prefix: str) -> set[str]:
        """The distinct partition keys (`pk`) that start with `prefix`."""
        items = self.scan(
            table, FilterExpression="begins_with(pk, :p)", ExpressionAttributeValues={":p": {"S": prefix}}
        )
        return {str(i["pk"]) for i in items}

    def audit_actions(self, audit_table: str, tenant_id: str, prefixes: tuple[str, ...]) -> list[str]:
        """The actions of a tenant's audit events that start with one of `prefixes` (the audit log outlives erasure)."""
        names = {f":p{n}": {"S": p} for n, p in enumerate(prefixes)}
        either = " OR ".join(f"begins_with(#a, :p{n})" for n in range(len(prefixes)))
        items = self.scan(
            audit_table,
            FilterExpression=f"tenant_id = :t AND ({either})",
            ExpressionAttributeNames={"#a": "action"},
            ExpressionAttributeValues={":t": {"S": tenant_id}, **names},
        )
        return [str(item["action"]) for item in items]
