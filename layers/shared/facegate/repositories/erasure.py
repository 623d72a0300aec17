"""Erasure across every subject-scoped store. Items are found by key, never by scanning for ids.

Every subject-scoped item in facegate's tables has a partition key that starts with
`T#<tenant>#S#<subject_ref>` (or, in the idempotency table, `idempotency#T#<tenant>#S#<subject_ref>`),
so a subject's data is one Query away in each table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

_deserialize = TypeDeserializer().deserialize
_serialize = TypeSerializer().serialize


@dataclass(frozen=True)
class TableStore:
    """One table's share of a subject: its partition, optionally narrowed to sort keys of a purpose."""

    name: str
    table: str
    partition: str  # the partition key attribute name
    sort: str  # the sort key attribute name


class ErasureRepository:
    def __init__(self, dynamodb_client: Any, s3_client: Any) -> None:
        self._ddb = dynamodb_client
        self._s3 = s3_client

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

    def delete_objects(self, bucket: str, prefix: str) -> int:
        removed = 0
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = self._s3.list_objects_v2(**kwargs)
            for obj in page.get("Contents", []):
                self._s3.delete_object(Bucket=bucket, Key=obj["Key"])
                removed += 1
            if not page.get("IsTruncated"):
                return removed
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

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

    def old_objects(self, bucket: str, prefix: str, before_epoch: float) -> list[str]:
        keys = []
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = self._s3.list_objects_v2(**kwargs)
            keys += [o["Key"] for o in page.get("Contents", []) if o["LastModified"].timestamp() < before_epoch]
            if not page.get("IsTruncated"):
                return keys
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
