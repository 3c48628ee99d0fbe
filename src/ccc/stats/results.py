"""The tenant's own results, as `ccc submit --json` and `ccc result --json` print them.

Why these lines: they are what the tenant's client produced after decrypting and verifying each
result, so statistics over them use nothing the service could have altered. Only verified `done`
results count, each job once (the same job may appear in a submit log and a result log), and a
job's day is its creation day (UTC), which its id carries (`ccc_core.identity.new_job_id`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from ccc.stats.mechanism import PrivacyError
from ccc_core.identity import NamingError, validate_job_id

MAX_LINE_CHARS = 64 * 1024


class ResultsError(PrivacyError):
    """A results line that is not what `ccc submit --json` / `ccc result --json` print."""


@dataclass
class VerifiedCounts:
    """Cats per verified job, grouped by the job's creation day."""

    by_day: dict[date, dict[str, int]] = field(default_factory=dict)
    skipped: int = 0  # lines that were not a verified, finished result (pending, failed, unverified)

    def cats(self, day: date) -> list[int]:
        return list(self.by_day.get(day, {}).values())


def job_day(job_id: str) -> date:
    """The UTC day a job was created: its id starts with the creation second in hex."""
    return datetime.fromtimestamp(int(job_id[:8], 16), UTC).date()


def read_results(lines: Iterable[str]) -> VerifiedCounts:
    counts = VerifiedCounts()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            raise ResultsError(f"line {number}: longer than {MAX_LINE_CHARS} characters")
        try:
            record = json.loads(line)
        except ValueError:
            raise ResultsError(f"line {number}: not JSON (expected `ccc submit --json` output)") from None
        if not isinstance(record, dict) or not isinstance(record.get("job_id"), str):
            raise ResultsError(f"line {number}: no job_id (expected `ccc submit --json` output)")
        try:
            job_id = validate_job_id(record["job_id"])
        except NamingError:
            raise ResultsError(f"line {number}: job_id is not a job id") from None
        cats = record.get("cats")
        if record.get("status") != "done" or record.get("verified") is not True:
            counts.skipped += 1
            continue
        if isinstance(cats, bool) or not isinstance(cats, int) or cats < 0:
            raise ResultsError(f"line {number}: a verified result without a count")
        counts.by_day.setdefault(job_day(job_id), {})[job_id] = cats
    return counts
