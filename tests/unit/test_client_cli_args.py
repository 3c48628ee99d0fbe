"""`ccc submit`/`ccc result` refuse bad --timeout and --tenant values with one line and exit 2 (issue 13 §4).

Observed before: `--timeout nan` waited for ever and busy-polled, negative timeouts were accepted,
and `--tenant ""` silently became tenant-a. argparse ends a bad value with its usage line, one
`error:` line and exit status 2, before any stack is looked up.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ccc.cli import main
from ccc.cli.client_cmd import _print_report


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-5", "0", "-0.1", "1e9", "soon"])
@pytest.mark.parametrize("command", [["submit", "cat.jpg"], ["result", "a" * 32]])
def test_a_timeout_that_is_not_a_finite_positive_number_is_a_usage_error(
    command: list[str], value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--timeout", value])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("ccc ") and "--timeout" in error and "Traceback" not in error


@pytest.mark.parametrize("value", ["", "Tenant-A", "-a", "a" * 64, "a/b"])
def test_an_invalid_tenant_is_a_usage_error_not_the_default_tenant(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["result", "a" * 32, "--tenant", value])
    assert exit_.value.code == 2
    assert "--tenant" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_verified_result_without_a_measured_time_prints_no_none(capsys: pytest.CaptureFixture[str]) -> None:
    report = SimpleNamespace(image=None, job_id="a" * 32, status="done", verified=True, cats=2, pcr0="ab" * 48,
                             elapsed_ms=None, error=None)
    _print_report(report, as_json=False)
    out = capsys.readouterr().out
    assert "None" not in out and "2 cats" in out and "verified" in out


@pytest.mark.parametrize("command", ["up", "down", "env"])
def test_a_state_dir_that_is_a_file_is_a_usage_error(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13 §4: `ccc local up --state-dir <a file>` printed a FileExistsError traceback."""
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    with pytest.raises(SystemExit) as exit_:
        main(["local", command, "--state-dir", str(a_file)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--state-dir" in error and "not a directory" in error
