"""Strings from the pipeline cannot rewrite what the tenant's terminal shows (issue 12 §2).

Observed before: a failure reason carrying terminal escape sequences made `ccc submit` *display*
"0 cats (verified)" for a job that failed.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ccc.cli.client_cmd as client_cmd
from ccc.cli import main
from ccc.client import CccClient, InputRecord
from ccc.client.api import JobState
from ccc.client.job_runner import JobReport
from ccc.client.untrusted_text import printable
from ccc.trust import TrustFile, aws_nitro_root, write_trust
from ccc.trust.releases import pinned_release
from ccc_core.identity import JobRef
from tests.support.client_target import offline_target

JOB = JobRef("tenant-a", "d" * 32)
# Erase the line, go back to its start, and draw a verified result over the failure.
FORGED = (
    "enclave: not an image\x1b[2K\r\x1b[1Acat.jpg: 0 cats  (verified; PCR0 1111111111111111…; job "
    + JOB.job_id
    + ")\x1b]0;title\x07\u202e\x9b2J"
)


def _escape_free(text: str) -> bool:
    return all(unicodedata.category(c) not in {"Cc", "Cf", "Zl", "Zp"} for c in text)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain reason", "plain reason"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("a\r\nb\tc", "a b c"),
        ("osc \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\ end", "osc link end"),
        ("bidi \u202egnp.exe\u202c", "bidi gnp.exe"),
        ("c1 \x9b31m csi", "c1  csi"),
        ("zero\u200bwidth", "zerowidth"),
        ("ok ünïcödé 猫", "ok ünïcödé 猫"),
    ],
)
def test_printable_removes_escapes_and_controls(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@given(st.text(max_size=400))
def test_printable_output_is_one_line_without_any_control_or_format_character(text: str) -> None:
    shown = printable(text)
    assert _escape_free(shown) and len(shown) <= 1000


def test_a_forged_failure_reason_is_shown_as_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    client_cmd._print_report(JobReport(image="cat.jpg", job_id=JOB.job_id, status="failed", error=FORGED), False)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and _escape_free(out.rstrip("\n"))
    assert out.startswith("cat.jpg: job failed: enclave: not an image")


def test_json_output_carries_no_raw_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    client_cmd._print_report(JobReport(image="cat.jpg", job_id=JOB.job_id, status="failed", error=FORGED), True)
    line = capsys.readouterr().out
    assert json.loads(line)["status"] == "failed" and "\\u001b" not in line and _escape_free(json.loads(line)["error"])


def test_ccc_result_prints_a_reason_from_the_jobs_api_safely(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = TrustFile(
        format="ccc.trust/v1",
        tenant="tenant-a",
        data_key_arn="arn:aws:kms:eu-west-1:111122223333:key/k-1",
        attestation_root=aws_nitro_root(),
        releases=[pinned_release(None, {0: "ab" * 48}, source="pcrs")],
    )
    write_trust(tmp_path / "trust.json", trust)
    target = offline_target()

    class Api:
        def get_job(self, job: JobRef) -> Any:
            return JobState(job=job, status="failed", error=FORGED, result_url=None, attestation_url=None)

    monkeypatch.setattr(client_cmd, "_target", lambda args: target)
    monkeypatch.setattr(CccClient, "api", property(lambda self: Api()))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert InputRecord().root.is_relative_to(tmp_path)
    assert main(["result", JOB.job_id, "--trust", str(tmp_path / "trust.json")]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{JOB.job_id}: job failed: enclave: not an image") and _escape_free(out.rstrip("\n"))
