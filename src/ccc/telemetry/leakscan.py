"""Find plaintext (image bytes, results) in logs, telemetry and stored objects.

Why a module of its own: "no plaintext outside the client and the enclave" is the project's core
promise, and it is only as good as the test that checks it. The scanner is given the secrets of a
run (the images' encoded bytes, their decoded pixel buffers, the decrypted results and the job ids)
and searches every byte the run left behind for them, in the encodings a careless line of code
would produce:

* raw byte runs (``window`` bytes taken at several offsets of each secret);
* base64 (standard and URL-safe, all three alignments, so a run inside a larger encoded blob is
  found wherever the blob started), also with line breaks removed (MIME-style wrapping);
* hex (lower and upper case) and Python ``repr`` escapes (``b'\\x89PNG...'`` from ``default=str``);
* a result next to its job id: a record (line) that names a job id and also carries
  ``cats``/``count`` with a number or a ``detections`` list.

A reported leak names the secret and where it was found, never the secret's bytes (the report
itself must not become a leak).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_WINDOW = 32
DEFAULT_WINDOWS_PER_SECRET = 16
MIN_WINDOW = 16
# A window with fewer distinct byte values than this (a flat image region, zero padding) occurs in
# unrelated data (e.g. zero PCRs in an attestation document): such windows are skipped.
MIN_DISTINCT_BYTES = 10
# Record-level rule: a number or a detections list labelled like a result.
_RESULT_FIELD = re.compile(rb"""(?ix) (?<![a-z0-9_.]) (?:cats|cat_count|count) ["']? \s* [:=] \s* ["']? \d
                                  | ["']detections["'] \s* [:=] \s* \[""")
_LINE_BREAKS = re.compile(rb"\r|\n|\\r|\\n")


@dataclass(frozen=True)
class Needle:
    secret: str  # label of the secret this needle comes from (e.g. "image job=ab12…")
    encoding: str  # raw | base64 | base64url | hex | HEX | repr | document
    data: bytes = field(repr=False)
    # base64-family needles are also searched in haystacks with line breaks removed.
    wrapped: bool = False


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
    needles: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.leaks

    def summary(self) -> str:
        return (f"{len(self.leaks)} leak(s) in {self.sources} source(s), {self.bytes_scanned} bytes, "
                f"{self.needles} needles, {self.seconds:.2f}s")


def window_offsets(length: int, window: int, count: int) -> list[int]:
    """`count` window starts spread over [0, length - window], always including both ends."""
    if length < window:
        return [0] if length >= MIN_WINDOW else []
    last = length - window
    if count <= 1 or last == 0:
        return [0]
    return sorted({round(i * last / (count - 1)) for i in range(count)})


def encodings_of(run: bytes) -> list[tuple[str, bytes, bool]]:
    """(encoding, needle, wrapped) for one raw byte run, alignment-independent where it matters."""
    found: list[tuple[str, bytes, bool]] = [("raw", run, False)]
    for shift in range(3):
        usable = (len(run) - shift) // 3 * 3
        if usable >= 12:
            chunk = run[shift : shift + usable]
            found.append(("base64", base64.b64encode(chunk), True))
            found.append(("base64url", base64.urlsafe_b64encode(chunk), True))
    found.append(("hex", binascii.hexlify(run), False))
    found.append(("HEX", binascii.hexlify(run).upper(), False))
    for escaped in _repr_variants(run):
        if escaped != run:
            found.append(("repr", escaped, False))
            # The same text inside a JSON string (a log line that json.dumps'ed str(bytes)).
            found.append(("repr", escaped.replace(b"\\", b"\\\\").replace(b'"', b'\\"'), False))
    # Drop needles that are identical bytes under two names (e.g. hex of digits-only data).
    unique: dict[bytes, tuple[str, bytes, bool]] = {}
    for item in found:
        unique.setdefault(item[1], item)
    return list(unique.values())


_SPECIAL_ESCAPES = {0x09: b"\\t", 0x0A: b"\\n", 0x0D: b"\\r", 0x5C: b"\\\\"}


def _repr_variants(run: bytes) -> list[bytes]:
    """The bytes as Python's repr writes them inside its quotes, byte by byte; a single quote is
    escaped only when repr chose single quotes as delimiters, so both spellings are produced."""
    plain = b"".join(
        _SPECIAL_ESCAPES.get(byte, bytes([byte]) if 0x20 <= byte < 0x7F else b"\\x%02x" % byte) for byte in run
    )
    variants = [plain]
    if b"'" in run:
        variants.append(plain.replace(b"'", b"\\'"))
    return variants


def distinct_bytes(run: bytes) -> int:
    return len(set(run))


class LeakScanner:
    """Collects a run's secrets, then scans haystacks (bytes, files, directories) for them."""

    def __init__(self, *, window: int = DEFAULT_WINDOW, windows_per_secret: int = DEFAULT_WINDOWS_PER_SECRET) -> None:
        if window < MIN_WINDOW:
            raise ValueError(f"window must be at least {MIN_WINDOW} bytes (shorter runs occur by chance)")
        if windows_per_secret < 1:
            raise ValueError("windows_per_secret must be at least 1")
        self.window = window
        self.windows_per_secret = windows_per_secret
        self.needles: list[Needle] = []
        self.job_ids: set[bytes] = set()

    # ----- secrets ------------------------------------------------------------------------
    def add_blob(self, label: str, data: bytes) -> int:
        """A byte string that must never appear (an encoded image, a decoded pixel buffer).

        Returns the number of needles added. Secrets shorter than MIN_WINDOW bytes are refused:
        they would match by chance.
        """
        if len(data) < MIN_WINDOW:
            raise ValueError(f"secret {label!r} is {len(data)} bytes; at least {MIN_WINDOW} are needed")
        before = len(self.needles)
        offsets = window_offsets(len(data), self.window, self.windows_per_secret)
        for index, start in enumerate(offsets):
            limit = offsets[index + 1] if index + 1 < len(offsets) else len(data)
            offset = self._distinctive_window(data, start, limit)
            if offset is None:
                continue
            run = data[offset : offset + self.window]
            for encoding, needle, wrapped in encodings_of(run):
                self.needles.append(Needle(f"{label}@{offset}", encoding, needle, wrapped))
        if len(self.needles) == before:
            raise ValueError(f"secret {label!r} has no distinctive {self.window}-byte window (too uniform to scan for)")
        return len(self.needles) - before

    def _distinctive_window(self, data: bytes, start: int, limit: int) -> int | None:
        """The first window at or after `start` (before `limit`) varied enough to be unmistakable."""
        step = max(1, self.window // 4)
        offset = start
        while offset == start or (offset < limit and offset + self.window <= len(data)):
            if distinct_bytes(data[offset : offset + self.window]) >= min(MIN_DISTINCT_BYTES, self.window // 2):
                return offset
            offset += step
        return None

    def add_result(self, job_id: str, plaintext: bytes) -> None:
        """A decrypted result document of `job_id`: the whole document and its job-specific part
        (everything before the model block, which repeats in every result) in every encoding."""
        self.add_job_id(job_id)
        label = f"result job={job_id[:8]}"
        parts = [plaintext]
        cut = plaintext.find(b',"format"')
        if cut >= MIN_WINDOW:
            parts.append(plaintext[:cut])
        for part in parts:
            for encoding, needle, wrapped in encodings_of(part):
                if encoding in ("hex", "HEX", "repr") or len(needle) >= MIN_WINDOW:
                    self.needles.append(Needle(label, f"document/{encoding}", needle, wrapped))

    def add_job_id(self, job_id: str) -> None:
        """A job id whose records must not carry a result (cats, count, detections)."""
        if not job_id:
            raise ValueError("empty job id")
        self.job_ids.add(job_id.encode("ascii"))

    # ----- scanning -----------------------------------------------------------------------
    def scan_bytes(self, source: str, data: bytes) -> list[Leak]:
        leaks: list[Leak] = []
        unwrapped: bytes | None = None
        for needle in self.needles:
            offset = data.find(needle.data)
            if offset < 0 and needle.wrapped:
                if unwrapped is None:
                    unwrapped = _LINE_BREAKS.sub(b"", data)
                offset = unwrapped.find(needle.data)
            if offset >= 0:
                leaks.append(Leak(source, needle.secret, needle.encoding, offset))
        leaks.extend(self._results_next_to_job_ids(source, data))
        return leaks

    def _results_next_to_job_ids(self, source: str, data: bytes) -> list[Leak]:
        if not self.job_ids:
            return []
        leaks = []
        position = 0
        for line in data.splitlines(keepends=True):
            if any(job_id in line for job_id in self.job_ids) and _RESULT_FIELD.search(line):
                job = next(j for j in self.job_ids if j in line).decode()
                leaks.append(Leak(source, f"result next to job={job[:8]}", "record", position))
            position += len(line)
        return leaks

    def scan_files(self, paths: Iterable[Path]) -> ScanReport:
        report = ScanReport(needles=len(self.needles))
        began = time.perf_counter()
        for path in paths:
            if not path.is_file():
                continue
            data = path.read_bytes()
            report.sources += 1
            report.bytes_scanned += len(data)
            report.leaks.extend(self.scan_bytes(str(path), data))
        report.seconds = time.perf_counter() - began
        return report

    def scan_tree(self, *roots: Path, patterns: tuple[str, ...] = ("**/*",)) -> ScanReport:
        """Every regular file under the roots (symlinks are not followed out of the tree)."""
        files: list[Path] = []
        for root in roots:
            for pattern in patterns:
                files.extend(p for p in sorted(root.glob(pattern)) if p.is_file() and not p.is_symlink())
        return self.scan_files(dict.fromkeys(files))

    def scan_objects(self, objects: Iterable[tuple[str, bytes]]) -> ScanReport:
        """Named byte strings (e.g. every S3 object as ("s3://bucket/key", body))."""
        report = ScanReport(needles=len(self.needles))
        began = time.perf_counter()
        for name, data in objects:
            report.sources += 1
            report.bytes_scanned += len(data)
            report.leaks.extend(self.scan_bytes(name, data))
        report.seconds = time.perf_counter() - began
        return report


def merge(*reports: ScanReport) -> ScanReport:
    merged = ScanReport(needles=max((r.needles for r in reports), default=0))
    for report in reports:
        merged.leaks.extend(report.leaks)
        merged.sources += report.sources
        merged.bytes_scanned += report.bytes_scanned
        merged.seconds += report.seconds
    return merged
