"""Find plaintext (image bytes, results) in logs, telemetry and stored objects.

Why a module of its own: "no plaintext outside the client and the enclave" is the project's core
promise, and it is only as good as the test that checks it. The scanner is given the secrets of a
run (the images' encoded bytes, their decoded pixel buffers, the decrypted results and the job ids)
and searches every byte the run left behind for them, in the encodings a careless line of code
would produce:

* raw bytes;
* base64, standard and URL-safe, in all three alignments (a copy of any sub-range, wherever it
  starts, is a substring of one of them), also with line breaks removed (MIME-style wrapping);
* hex (lower and upper case);
* Python ``repr`` escapes (``b'\\x89PNG...'`` from ``json.dumps(..., default=str)``), also as
  they appear inside a JSON string;
* a decrypted result document, whole or its job-specific head (exact search);
* a result next to its job id: a record (line) that names a job id and also carries
  ``cats``/``count`` with a number or a ``detections`` list.

How blobs are found (coverage, not sampling): each encoded form of a secret is cut into 16-byte
grams at a fixed stride, and each gram is indexed by two independent 64-bit fingerprints. A
haystack is fingerprinted at *every* byte position (numpy, vectorised) and looked up in the index;
a hit is confirmed with the second fingerprint. Any copy of at least ``stride + 15`` consecutive
characters of an encoded form therefore contains an indexed gram and is found, wherever it starts
(``guaranteed_length``). Grams with few distinct byte values (flat image regions, zero padding)
are not indexed: they occur in unrelated data.

A reported leak names the secret, the encoding and where it was found, never the secret's bytes
(the report itself must not become a leak).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GRAM = 16
DEFAULT_STRIDE = 32
MIN_SECRET = 32
# A gram with fewer distinct byte values than this (a flat image region, zero padding, "AAAA" in
# base64) also occurs in unrelated data (e.g. zero PCRs in an attestation document): not indexed.
MIN_DISTINCT_BYTES = 6
# Stride per encoding, scaled by how much the encoding expands the bytes, so each encoding has about
# as many index entries per secret byte as raw.
_EXPANSION = {"raw": 1.0, "base64": 4 / 3, "base64url": 4 / 3, "hex": 2.0, "HEX": 2.0, "repr": 2.0, "repr/json": 2.0}
_MUL1 = np.uint64(0x9E3779B97F4A7C15)
_MUL2 = np.uint64(0xC2B2AE3D27D4EB4F)
_ROT = np.uint64(29)
# Record-level rule: a number or a detections list labelled like a result.
_RESULT_FIELD = re.compile(rb"""(?ix) (?<![a-z0-9_.]) (?:cats|cat_count|count) ["']? \s* [:=] \s* ["']? \d
                                  | ["']detections["'] \s* [:=] \s* \[""")
_LINE_BREAKS = re.compile(rb"\r|\n|\\r|\\n")
_REPR_TABLE = [
    {0x09: b"\\t", 0x0A: b"\\n", 0x0D: b"\\r", 0x5C: b"\\\\"}.get(b, bytes([b]) if 0x20 <= b < 0x7F else b"\\x%02x" % b)
    for b in range(256)
]


@dataclass(frozen=True)
class Needle:
    """An exact byte string to search for (result documents, which are short)."""

    secret: str
    encoding: str
    data: bytes = field(repr=False)
    wrapped: bool = False  # also searched with line breaks removed


@dataclass(frozen=True)
class Leak:
    """One finding: which secret, in which encoding, where. Never the secret's bytes."""

    source: str
    secret: str
    encoding: str
    offset: int

    def __str__(self) -> str:
        return f"{self.secret} ({self.encoding}) found in {self.source} at byte {self.offset}"


@dataclass
class ScanReport:
    leaks: list[Leak] = field(default_factory=list)
    sources: int = 0
    bytes_scanned: int = 0
    index_entries: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.leaks

    def summary(self) -> str:
        return (f"{len(self.leaks)} leak(s) in {self.sources} source(s), {self.bytes_scanned} bytes scanned against "
                f"{self.index_entries} index entries in {self.seconds:.2f}s")


def repr_escaped(data: bytes, *, escape_single_quote: bool = False) -> bytes:
    """The bytes as Python's repr writes them between its quotes (byte by byte, so concatenative)."""
    escaped = b"".join(_REPR_TABLE[b] for b in data)
    return escaped.replace(b"'", b"\\'") if escape_single_quote else escaped


def encoded_forms(data: bytes) -> list[tuple[str, bytes, bool]]:
    """(encoding, encoded secret, wrapped) such that any encoded copy of a sub-range of `data` is a
    substring of one of them (base64 needs all three alignments; repr both quote spellings)."""
    forms: list[tuple[str, bytes, bool]] = [("raw", data, False)]
    for shift in range(3):
        forms.append(("base64", base64.b64encode(data[shift:]), True))
        forms.append(("base64url", base64.urlsafe_b64encode(data[shift:]), True))
    hexed = binascii.hexlify(data)
    forms += [("hex", hexed, False), ("HEX", hexed.upper(), False)]
    plain = repr_escaped(data)
    reprs = [plain] + ([repr_escaped(data, escape_single_quote=True)] if b"'" in data else [])
    for escaped in reprs:
        if escaped != data:
            forms.append(("repr", escaped, False))
            forms.append(("repr/json", escaped.replace(b"\\", b"\\\\").replace(b'"', b'\\"'), False))
    return forms


def _u64_le(array: np.ndarray, count: int) -> np.ndarray:
    """Little-endian uint64 of the 8 bytes starting at each of the first `count` positions."""
    out = np.zeros(count, dtype=np.uint64)
    for k in range(8):
        out |= array[k : k + count].astype(np.uint64) << np.uint64(8 * k)
    return out


def _fingerprints(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit fingerprints of 16-byte grams given as (first 8, last 8) uint64."""
    first = (lo * _MUL1) ^ hi
    second = ((hi * _MUL2) ^ (lo >> _ROT)) + lo
    return first, second


def gram_fingerprints(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprints of the 16-byte gram at every position of `data` (len(data) - 15 of each)."""
    count = len(data) - GRAM + 1
    if count <= 0:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty
    array = np.frombuffer(data, dtype=np.uint8)
    words = _u64_le(array, len(data) - 7)
    with np.errstate(over="ignore"):
        return _fingerprints(words[:count], words[8 : 8 + count])


def _sampled_fingerprints(data: bytes, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fingerprints and offsets of the distinctive grams at offsets 0, stride, 2*stride, ..."""
    if len(data) < GRAM:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty, np.zeros(0, dtype=np.int64)
    array = np.frombuffer(data, dtype=np.uint8)
    grams = np.lib.stride_tricks.sliding_window_view(array, GRAM)[::stride]
    offsets = np.arange(0, len(data) - GRAM + 1, stride, dtype=np.int64)[: len(grams)]
    ordered = np.sort(grams, axis=1)
    distinct = 1 + np.count_nonzero(np.diff(ordered, axis=1), axis=1)
    keep = distinct >= MIN_DISTINCT_BYTES
    packed = np.ascontiguousarray(grams[keep]).view("<u8").reshape(-1, 2)
    with np.errstate(over="ignore"):
        first, second = _fingerprints(packed[:, 0].copy(), packed[:, 1].copy())
    return first, second, offsets[keep]


class _GramIndex:
    """Sorted first fingerprints with, per entry, the second fingerprint and what it stands for."""

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.labels: list[tuple[str, str, bool]] = []  # (secret, encoding, wrapped)
        self._first = np.zeros(0, dtype=np.uint64)
        self._second = np.zeros(0, dtype=np.uint64)
        self._label = np.zeros(0, dtype=np.int32)
        self._offset = np.zeros(0, dtype=np.int64)
        self._dirty = False

    def add(self, secret: str, encoding: str, wrapped: bool, data: bytes, stride: int) -> int:
        first, second, offsets = _sampled_fingerprints(data, stride)
        self.labels.append((secret, encoding, wrapped))
        label = np.full(len(first), len(self.labels) - 1, dtype=np.int32)
        self._parts.append((first, second, label, offsets))
        self._dirty = True
        return len(first)

    def _build(self) -> None:
        if not self._dirty:
            return
        first = np.concatenate([self._first, *(p[0] for p in self._parts)])
        order = np.argsort(first, kind="stable")
        self._first = first[order]
        self._second = np.concatenate([self._second, *(p[1] for p in self._parts)])[order]
        self._label = np.concatenate([self._label, *(p[2] for p in self._parts)])[order]
        self._offset = np.concatenate([self._offset, *(p[3] for p in self._parts)])[order]
        self._parts.clear()
        self._dirty = False

    def __len__(self) -> int:
        self._build()
        return len(self._first)

    def hits(self, data: bytes, *, wrapped_only: bool = False) -> Iterator[tuple[int, int]]:
        """(haystack offset, label index) of every confirmed gram match."""
        self._build()
        if not len(self._first) or len(data) < GRAM:
            return
        first, second = gram_fingerprints(data)
        slots = np.searchsorted(self._first, first)
        slots[slots >= len(self._first)] = 0
        candidates = np.nonzero(self._first[slots] == first)[0]
        for position in candidates.tolist():
            slot = int(slots[position])
            while slot < len(self._first) and self._first[slot] == first[position]:
                label = int(self._label[slot])
                if self._second[slot] == second[position] and (not wrapped_only or self.labels[label][2]):
                    yield position, label
                slot += 1


class LeakScanner:
    """Collects a run's secrets, then scans haystacks (bytes, files, directories) for them."""

    def __init__(self, *, stride: int = DEFAULT_STRIDE) -> None:
        if not 1 <= stride <= 4096:
            raise ValueError("stride must be 1..4096 bytes")
        self.stride = stride
        self._index = _GramIndex()
        self.needles: list[Needle] = []
        self.job_ids: set[bytes] = set()

    @property
    def guaranteed_length(self) -> int:
        """A raw copy at least this long is always found (encoded copies: the encoding's stride + 15)."""
        return self.stride + GRAM - 1

    # ----- secrets ------------------------------------------------------------------------
    def add_blob(self, label: str, data: bytes) -> int:
        """A byte string that must never appear (an encoded image, a decoded pixel buffer), in any of
        the encoded forms. Returns the number of index entries added."""
        if len(data) < MIN_SECRET:
            raise ValueError(f"secret {label!r} is {len(data)} bytes; at least {MIN_SECRET} are needed")
        added = 0
        for encoding, encoded, wrapped in encoded_forms(data):
            stride = max(1, round(self.stride * _EXPANSION[encoding]))
            added += self._index.add(label, encoding, wrapped, encoded, stride)
        if added == 0:
            raise ValueError(f"secret {label!r} is too uniform to scan for (no distinctive {GRAM}-byte run)")
        return added

    def add_result(self, job_id: str, plaintext: bytes) -> None:
        """A decrypted result document of `job_id`: the whole document and its job-specific part
        (everything before the model block, which repeats in every result) in every encoding."""
        self.add_job_id(job_id)
        label = f"result job={job_id[:8]}"
        parts = [plaintext]
        cut = plaintext.find(b',"format"')
        if cut >= GRAM:
            parts.append(plaintext[:cut])
        for part in parts:
            for encoding, encoded, wrapped in encoded_forms(part):
                if encoding.startswith("base64"):  # trim the alignment-dependent edges
                    encoded = encoded[4:-4]
                if len(encoded) >= GRAM:
                    self.needles.append(Needle(label, f"document/{encoding}", encoded, wrapped))

    def add_job_id(self, job_id: str) -> None:
        """A job id whose records must not carry a result (cats, count, detections)."""
        if not job_id:
            raise ValueError("empty job id")
        self.job_ids.add(job_id.encode("ascii"))

    @property
    def index_entries(self) -> int:
        return len(self._index)

    # ----- scanning -----------------------------------------------------------------------
    def scan_bytes(self, source: str, data: bytes) -> list[Leak]:
        """Every secret found in `data`: one finding per (secret, encoding), at its first offset."""
        found: dict[tuple[str, str], int] = {}

        def note(secret: str, encoding: str, offset: int) -> None:
            key = (secret, encoding)
            found[key] = min(offset, found.get(key, offset))

        for position, label in self._index.hits(data):
            secret, encoding, _ = self._index.labels[label]
            note(secret, encoding, position)
        unwrapped = _LINE_BREAKS.sub(b"", data)
        if len(unwrapped) != len(data):
            for position, label in self._index.hits(unwrapped, wrapped_only=True):
                secret, encoding, _ = self._index.labels[label]
                note(secret, f"{encoding} (wrapped)", position)
        for needle in self.needles:
            offset = data.find(needle.data)
            if offset < 0 and needle.wrapped and len(unwrapped) != len(data):
                offset = unwrapped.find(needle.data)
            if offset >= 0:
                note(needle.secret, needle.encoding, offset)
        leaks = [Leak(source, secret, encoding, offset) for (secret, encoding), offset in found.items()]
        leaks.extend(self._results_next_to_job_ids(source, data))
        return leaks

    def _results_next_to_job_ids(self, source: str, data: bytes) -> list[Leak]:
        if not self.job_ids:
            return []
        leaks = []
        position = 0
        for line in data.splitlines(keepends=True):
            if _RESULT_FIELD.search(line):
                job = next((j for j in self.job_ids if j in line), None)
                if job is not None:
                    leaks.append(Leak(source, f"result next to job={job.decode()[:8]}", "record", position))
            position += len(line)
        return leaks

    def scan_objects(self, objects: Iterable[tuple[str, bytes]]) -> ScanReport:
        """Named byte strings (e.g. every S3 object as ("s3://bucket/key", body))."""
        report = ScanReport(index_entries=self.index_entries)
        began = time.perf_counter()
        for name, data in objects:
            report.sources += 1
            report.bytes_scanned += len(data)
            report.leaks.extend(self.scan_bytes(name, data))
        report.seconds = time.perf_counter() - began
        return report

    def scan_files(self, paths: Iterable[Path]) -> ScanReport:
        return self.scan_objects((str(path), path.read_bytes()) for path in paths if path.is_file())

    def scan_tree(self, *roots: Path, patterns: tuple[str, ...] = ("**/*",)) -> ScanReport:
        """Every regular file under the roots matching the patterns (symlinks are not followed)."""
        files: list[Path] = []
        for root in roots:
            for pattern in patterns:
                files.extend(p for p in sorted(root.glob(pattern)) if p.is_file() and not p.is_symlink())
        return self.scan_files(dict.fromkeys(files))


def merge(*reports: ScanReport) -> ScanReport:
    merged = ScanReport(index_entries=max((r.index_entries for r in reports), default=0))
    for report in reports:
        merged.leaks.extend(report.leaks)
        merged.sources += report.sources
        merged.bytes_scanned += report.bytes_scanned
        merged.seconds += report.seconds
    return merged
