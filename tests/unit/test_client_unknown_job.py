"""Another tenant's (or an unknown) job reads the same with and without --wait (issue 13 §4).

Observed before: "job failed: … HTTP 404" with --wait, "ccc result: JobsApiError: …" without.
"""

from __future__ import annotations

from typing import Any

import pytest

import ccc.cli.client_cmd as client_cmd
from ccc.cli import main
from ccc.client import CccClient, UnknownJob
from ccc.client.api import JobsApiError
from ccc.trust import TrustFile, aws_nitro_root, write_trust
from ccc.trust.releases import pinned_release
from ccc_core.identity import JobRef
from tests.support.client_target import offline_target

JOB = JobRef(tenant="tenant-a", job_id="c" * 32)
TARGET = offline_target()
TRUST = TrustFile(format="ccc.trust/v1", tenant="tenant-a", data_key_arn="arn:aws:kms:eu-west-1:111122223333:key/k",
                  attestation_root=aws_nitro_root(), releases=[pinned_release(None, {0: "01" * 48}, source="pcrs")])


class _NotYours:
    calls = 0

    def get_job(self, job: JobRef) -> Any:
        _NotYours.calls += 1
        raise JobsApiError(f"cannot read job {job.job_id}: HTTP 404 not-found", status=404)


@pytest.fixture
def not_yours(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    _NotYours.calls = 0
    write_trust(tmp_path / "trust.json", TRUST)
    monkeypatch.setenv("CCC_TRUST_FILE", str(tmp_path / "trust.json"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(CccClient, "api", property(lambda self: _NotYours()))
    monkeypatch.setattr(client_cmd, "_target", lambda args: TARGET)


@pytest.mark.usefixtures("not_yours")
def test_fetch_and_wait_both_say_unknown_job_and_wait_does_not_poll_on() -> None:
    client = CccClient(TARGET, JOB.tenant, trust=TRUST)
    with pytest.raises(UnknownJob) as fetched:
        client.fetch(JOB)
    with pytest.raises(UnknownJob) as waited:
        client.wait(JOB, timeout=30)
    assert str(fetched.value) == str(waited.value) == (
        f"no job {JOB.job_id} for tenant tenant-a (unknown, or not this tenant's)"
    )
    assert _NotYours.calls == 2  # no polling for the 30 s: waiting cannot help


@pytest.mark.usefixtures("not_yours")
@pytest.mark.parametrize("wait", [[], ["--wait"]], ids=["fetch", "wait"])
def test_ccc_result_prints_one_line_and_exits_1(wait: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["result", JOB.job_id, "--tenant", "tenant-a", *wait]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    expected = f"ccc result: no job {JOB.job_id} for tenant tenant-a (unknown, or not this tenant's)"
    assert captured.err.strip() == expected
