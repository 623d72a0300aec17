"""The uploads bucket (implements facegate.core.ports.Uploads): presigned POSTs for devices, and size/type
checks before an object is read."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from facegate.core.errors import ImageTooLargeError, InvalidImageError, UnsupportedMediaTypeError
from facegate.core.uploads import ALLOWED_TYPES, PRESIGN_SECONDS, PresignedUpload


class UploadStore:
    def __init__(self, s3_client: Any, bucket: str, max_bytes: int) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self.max_bytes = max_bytes

    def presign(self, key: str, content_type: str, expires_in: int = PRESIGN_SECONDS) -> PresignedUpload:
        """A POST policy limited to one key, one content type, a size range and five minutes."""
        if content_type not in ALLOWED_TYPES:
            raise UnsupportedMediaTypeError()
        post = self._s3.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, self.max_bytes],
            ],
            ExpiresIn=expires_in,
        )
        return PresignedUpload(post["url"], post["fields"], expires_in, self.max_bytes, content_type)

    def fetch(self, key: str) -> bytes:
        """Read an uploaded image after checking its real size and type (the POST policy is not trusted)."""
        head = self._s3.head_object(Bucket=self._bucket, Key=key)
        if int(head["ContentLength"]) > self.max_bytes:
            raise ImageTooLargeError(f"the image may be at most {self.max_bytes} bytes")
        if head.get("ContentType") not in ALLOWED_TYPES:
            raise UnsupportedMediaTypeError()
        body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read(self.max_bytes + 1)
        if len(body) > self.max_bytes:
            raise ImageTooLargeError(f"the image may be at most {self.max_bytes} bytes")
        if not body:
            raise InvalidImageError("the upload is empty")
        return bytes(body)

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise

    def keys(self, prefix: str) -> list[str]:
        answer = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=prefix)
        return [item["Key"] for item in answer.get("Contents", [])]
