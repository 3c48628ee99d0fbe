"""An in-memory dead-letter archive: the documents the handler archived, by key."""

from __future__ import annotations

from ccc_common.domain.storage_ports import Archive


class InMemoryArchive(Archive):
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, document: bytes) -> None:
        self.objects[key] = document
