"""S3 adapters of the object-storage ports (``ccc_common.domain.storage_ports``): the dead-letter
archive, the failure-record reader, the presigner and the result-digest reader. Each receives a
boto3 S3 client."""

from __future__ import annotations

from typing import Any

from ccc_common.contracts.failure_record import MAX_FAILURE_RECORD_BYTES
from ccc_common.contracts.result_objects import digest_from_metadata
from ccc_common.domain.storage_ports import Archive, FailureRecordReader, Presigner, ResultDigests
from ccc_core.aws_errors import client_error_code


class S3Archive(Archive):
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def put(self, key: str, document: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=document, ContentType="application/json")


class S3FailureRecordReader(FailureRecordReader):
    """Ranged GET: a failure record larger than the limit is never downloaded whole."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self, bucket: str, key: str) -> bytes:
        response = self._client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{MAX_FAILURE_RECORD_BYTES}")
        body = response["Body"]
        try:
            data: bytes = body.read(MAX_FAILURE_RECORD_BYTES + 1)
        finally:
            body.close()
        return data


class S3Presigner(Presigner):
    """Presigns with an injected boto3 S3 client (SigV4; the client's endpoint decides the host)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def presign_put(self, bucket: str, key: str, expires_in: int) -> str:
        return str(
            self._client.generate_presigned_url(
                "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in, HttpMethod="PUT"
            )
        )

    def presign_get(self, bucket: str, key: str, expires_in: int) -> str:
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in, HttpMethod="GET"
            )
        )

    def presign_post(self, bucket: str, key: str, expires_in: int, max_bytes: int) -> dict[str, Any]:
        post = self._client.generate_presigned_post(
            Bucket=bucket, Key=key, Conditions=[["content-length-range", 1, max_bytes]], ExpiresIn=expires_in
        )
        return {"url": post["url"], "fields": dict(post["fields"])}


class S3ResultDigests(ResultDigests):
    """HEAD of the result object: its declared digest, without downloading the ciphertext."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def result_digest(self, bucket: str, key: str) -> str | None:
        try:
            head = self._client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if client_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return digest_from_metadata(head.get("Metadata"))
