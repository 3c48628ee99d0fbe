"""`ccc stats`: the tenant's own DP figures, with a ledger that outlives every run.

What a tenant relies on: only its verified, finished results count, each job once, on the day the
job was created; each figure spends epsilon from a ledger file on its machine, so running the
command again (a new process: what "restarting" means here) cannot spend the day's budget twice;
a damaged ledger is refused, never read as empty; bad input is one line and exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ccc.cli import main
from ccc.stats.ledger import LEDGER_FORMAT, FileBudgetLedger, default_ledger_path
from ccc.stats.mechanism import (
    BudgetExhausted,
    InMemoryBudgetLedger,
    LedgerError,
    PrivacyPolicy,
    PrivateAggregator,
)
from ccc.stats.results import ResultsError, job_day, read_results

DAY = date(2026, 11, 24)
SECOND = int(datetime(2026, 11, 24, 12, tzinfo=UTC).timestamp())


def _job(index: int, second: int = SECOND) -> str:
    return f"{second:08x}{index:024x}"


def _line(index: int, cats: int | None, *, status: str = "done", verified: bool = True, second: int = SECOND) -> str:
    return json.dumps(
        {"image": f"{index}.jpg", "job_id": _job(index, second), "status": status, "cats": cats, "verified": verified}
    )


def _results(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    status = main(["stats", *args, "--json"])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def test_only_verified_finished_results_count_once_on_their_creation_day() -> None:
    lines = [
        _line(1, 3),
        _line(1, 3),
        _line(2, 0),
        _line(3, None, status="failed"),
        _line(4, 9, verified=False),
        _line(5, 2, second=SECOND + 86_400),
        "",
    ]
    counts = read_results(lines)
    assert sorted(counts.cats(DAY)) == [0, 3]
    assert counts.cats(date(2026, 11, 25)) == [2]
    assert counts.skipped == 2 and job_day(_job(1)) == DAY


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        json.dumps([1]),
        json.dumps({"job_id": "x", "status": "done"}),
        json.dumps({"job_id": _job(1), "status": "done", "verified": True, "cats": "3"}),
        json.dumps({"job_id": _job(1), "status": "done", "verified": True, "cats": -1}),
    ],
)
def test_malformed_results_are_refused_with_the_line_number(line: str) -> None:
    with pytest.raises(ResultsError, match="line 2"):
        read_results([_line(1, 1), line])


def test_the_budget_holds_across_runs_of_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _results(tmp_path, [_line(i, i % 4) for i in range(10)])
    ledger = tmp_path / "ledger.json"
    common = (str(results), "--tenant", "tenant-a", "--day", DAY.isoformat(), "--ledger", str(ledger))
    status, figures, _ = _run(capsys, *common)  # cats + images: 0.5 of 1.0
    assert status == 0 and [f["metric"] for f in figures] == ["cats", "images"]
    assert all(f["epsilon"] == 0.25 and f["day"] == DAY.isoformat() for f in figures)
    assert figures[0]["scale"] == 24.0 and figures[1]["scale"] == 4.0
    status, figures, _ = _run(capsys, *common)  # the second run (a new ledger object) spends the rest
    assert status == 0 and len(figures) == 2
    status, figures, err = _run(capsys, *common)  # spent: refused, whatever process asks
    assert status == 1 and figures == [] and "refused" in err
    assert FileBudgetLedger(ledger).spent("tenant-a", DAY) == pytest.approx(1.0)
    status, figures, _ = _run(
        capsys,
        str(results),
        "--tenant",
        "tenant-b",
        "--day",
        DAY.isoformat(),
        "--ledger",
        str(ledger),
        "--metric",
        "cats",
    )
    assert status == 0 and len(figures) == 1  # another tenant's budget is its own


def test_a_separate_process_sees_the_spent_budget(tmp_path: Path) -> None:
    ledger = FileBudgetLedger(tmp_path / "ledger.json")
    for _ in range(4):
        ledger.spend("tenant-a", DAY, 0.25, 1.0)
    results = _results(tmp_path, [_line(1, 2)])
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "ccc",
            "stats",
            str(results),
            "--tenant",
            "tenant-a",
            "--day",
            DAY.isoformat(),
            "--ledger",
            str(ledger.path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1 and completed.stdout == ""
    assert completed.stderr.count(": refused:") == 2 and "Traceback" not in completed.stderr


def test_the_released_values_are_noisy_around_the_clipped_total(tmp_path: Path) -> None:
    counts = read_results([_line(1, 20), _line(2, 1)])  # 20 clips to 6: exact clipped total 7
    aggregator = PrivateAggregator(InMemoryBudgetLedger(), PrivacyPolicy(daily_budget=1e9))
    values = [aggregator.cats_per_day("t", DAY, counts.cats(DAY)).value for _ in range(4000)]
    assert 7.0 not in values
    assert sum(values) / len(values) == pytest.approx(7.0, abs=4 * 2**0.5 * 24.0 / 4000**0.5)


def test_a_damaged_ledger_is_an_error_not_a_fresh_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "ledger.json"
    for damaged in (
        "{",
        json.dumps({"format": "other", "spent": {}}),
        json.dumps({"format": LEDGER_FORMAT, "spent": {"tenant-a/2026-11-24": -1}}),
        json.dumps({"format": LEDGER_FORMAT, "spent": {"tenant-a/2026-11-24": "0"}}),
    ):
        ledger.write_text(damaged)
        with pytest.raises(LedgerError, match="refusing to treat it as empty"):
            FileBudgetLedger(ledger).spend("tenant-a", DAY, 0.25, 1.0)
        status, figures, err = _run(
            capsys,
            str(_results(tmp_path, [_line(1, 1)])),
            "--tenant",
            "tenant-a",
            "--day",
            DAY.isoformat(),
            "--ledger",
            str(ledger),
        )
        assert status == 2 and figures == [] and err.count("\n") == 1
    # The damaged file is left as it was, for the tenant to look at.
    assert json.loads(ledger.read_text()) == {"format": LEDGER_FORMAT, "spent": {"tenant-a/2026-11-24": "0"}}


def test_spending_past_the_budget_records_nothing(tmp_path: Path) -> None:
    ledger = FileBudgetLedger(tmp_path / "ledger.json")
    ledger.spend("tenant-a", DAY, 0.75, 1.0)
    with pytest.raises(BudgetExhausted):
        ledger.spend("tenant-a", DAY, 0.5, 1.0)
    assert ledger.spent("tenant-a", DAY) == pytest.approx(0.75)
    assert json.loads(ledger.path.read_text()) == {"format": LEDGER_FORMAT, "spent": {"tenant-a/2026-11-24": 0.75}}


@pytest.mark.parametrize(
    "args",
    [
        ["--tenant", "Tenant A"],
        ["--tenant", "t", "--day", "24/11/2026"],
        ["--tenant", "t", "--epsilon", "0"],
        ["--tenant", "t", "--epsilon", "2", "--daily-budget", "1"],
        ["--tenant", "t", "--clip", "nan"],
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args) -> None:
    results = _results(tmp_path, [_line(1, 1)])
    assert main(["stats", str(results), *args, "--ledger", str(tmp_path / "l.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ccc stats:") and err.count("\n") == 1
    assert not (tmp_path / "l.json").exists()  # nothing spent


def test_missing_results_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(tmp_path / "none.jsonl"), "--tenant", "t", "--ledger", str(tmp_path / "l")]) == 2
    assert capsys.readouterr().err.startswith("ccc stats:")


def test_the_default_ledger_lives_in_the_users_state_dir(tmp_path: Path) -> None:
    assert default_ledger_path({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "ccc" / "privacy-ledger.json"
    assert default_ledger_path({"XDG_STATE_HOME": "relative"}).parts[-3:] == ("state", "ccc", "privacy-ledger.json")
