"""The uploads bucket as erasure sees it (implements facegate.deletion.ports.ObjectStore): objects by prefix."""

from __future__ import annotations

from typing import Any


class ObjectErasure:
    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

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

    def old_objects(self, bucket: str, prefix: str, before_epoch: float) -> list[str]:
        keys = []
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = self._s3.list_objects_v2(**kwargs)
            keys += [o["Key"] for o in page.get("Contents", []) if o["LastModified"].timestamp() < before_epoch]
            if not page.get("IsTruncated"):
                return keys
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
