"""The object-storage ports of the job lifecycle, the dead-letter handler and the jobs API.

Why ports: those three are domain logic that must run unchanged against S3 (the adapters in
``ccc_common.aws.s3_adapters``), moto, and in-memory fakes in the unit tests; none of them may
import an AWS client.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Archive(ABC):
    """Where the dead-letter handler keeps each message before it marks its jobs failed."""

    @abstractmethod
    def put(self, key: str, document: bytes) -> None: ...


class FailureRecordReader(ABC):
    """Reads the enclave's failure record for the job lifecycle (metadata, bounded in size)."""

    @abstractmethod
    def read(self, bucket: str, key: str) -> bytes:
        """At most ``contracts.failure_record.MAX_FAILURE_RECORD_BYTES + 1`` bytes of the object."""


class Presigner(ABC):
    """The URLs the jobs API hands out, so clients move ciphertext to and from S3 directly."""

    @abstractmethod
    def presign_put(self, bucket: str, key: str, expires_in: int) -> str: ...

    @abstractmethod
    def presign_get(self, bucket: str, key: str, expires_in: int) -> str: ...

    @abstractmethod
    def presign_post(self, bucket: str, key: str, expires_in: int, max_bytes: int) -> dict[str, Any]:
        """{"url": ..., "fields": {...}} for a browser-style POST limited to max_bytes."""


class ResultDigests(ABC):
    """The digest a finished job's result object declares, which addresses its attestation
    (``ccc_common.contracts.result_objects``): read from the object's metadata, never its bytes."""

    @abstractmethod
    def result_digest(self, bucket: str, key: str) -> str | None:
        """The declared SHA-256 (hex), or None when the object is missing or declares none."""
