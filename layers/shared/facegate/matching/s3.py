"""The galleries bucket (implements facegate.matching.ports.ShardObjects): sealed shard blobs by key."""

from __future__ import annotations

from typing import Any


class S3ShardObjects:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def get(self, key: str) -> bytes:
        return bytes(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read())

    def put(self, key: str, blob: bytes) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=blob)

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=key)
