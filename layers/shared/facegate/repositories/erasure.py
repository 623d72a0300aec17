"""Erasure across every subject-scoped store. Items are found by key, never by scanning for ids.

Every subject-scoped item in facegate's tables has a partition key that starts with
`T#<tenant>#S#<subject_ref>` (or, in the idempotency table, `idempotency#T#<tenant>#S#<subject_ref>`),
so a subject's data is one Query away in each table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

_deserialize = TypeDeserializer().deserialize


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

    def delete(self, store: TableStore, items: list[dict[str, Any]]) -> int:
        for item in items:
            self._ddb.delete_item(
                TableName=store.table,
                Key={store.partition: {"S": item[store.partition]}, store.sort: {"S": item[store.sort]}},
            )
        return len(items)

    def put(self, table: str, item: dict[str, Any]) -> None:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        self._ddb.put_item(TableName=table, Item={k: serializer.serialize(v) for k, v in item.items()})

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
