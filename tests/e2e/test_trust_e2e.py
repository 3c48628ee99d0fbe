"""The tenant's trust file end to end (issue 11 §4, §5): the client believes only what the tenant pinned.

One stack for the module (conftest; its fixture gives every client tenant-a's trust file made by
`ccc trust init --local-stack ... --yes`). Here the commands run as a tenant would run them, with
explicit `--trust` files: the right one verifies, one pinning another PCR0 makes every result
`verified: false` with a reason and exit 1, none at all is refused with how to make one, and a
result computed from an input the client did not upload is refused by its digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccc.client import CccClient, InputRecord, local_target
from ccc.client.crypto import encrypt_stream
from ccc.trust import load_trust
from ccc_core.identity import JobRef

from .conftest import make_trust_file

pytestmark = pytest.mark.slow
JOB_TIMEOUT_S = 90.0
ANOTHER_PCR0 = "5e" * 48


def _ccc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccc", *args], capture_output=True, text=True, timeout=240, check=False, env=env
    )


@pytest.fixture(scope="module")
def trust_files(stack, tmp_path_factory) -> dict[str, Path]:
    """tenant-a's trust file from the stack, and a copy that pins another release instead."""
    directory = tmp_path_factory.mktemp("trust")
    right = make_trust_file(stack.state_dir, directory / "right.json")
    wrong = directory / "wrong.json"
    wrong.write_bytes(right.read_bytes())
    pinned = load_trust(right).releases[0].id
    added = _ccc("trust", "add-release", "--trust", str(wrong), "--pcr0", ANOTHER_PCR0)
    assert added.returncode == 0, added.stderr
    removed = _ccc("trust", "remove-release", pinned, "--trust", str(wrong))
    assert removed.returncode == 0, removed.stderr
    return {"right": right, "wrong": wrong}


def test_init_pins_the_stack_root_the_tenant_key_and_what_the_key_releases_to(stack, trust_files):
    shown = _ccc("trust", "show", "--json", "--trust", str(trust_files["right"]))
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["format"] == "ccc.trust/v1" and document["tenant"] == "tenant-a"
    assert document["attestation_root"]["kind"] == "local"
    assert document["releases"][0]["pcrs"]["PCR0"] == stack.info.expected_pcrs["0"]
    tenant_keys = getattr(stack.info, "tenant_key_arns", None) or {}
    assert document["data_key_arn"] == tenant_keys.get("tenant-a", stack.info.key_arn)


def test_results_verify_with_the_right_trust_file_and_report_the_uploaded_digest(stack, samples, trust_files):
    piped = _ccc(
        "submit",
        "--wait",
        "--json",
        "--state-dir",
        str(stack.state_dir),
        "--trust",
        str(trust_files["right"]),
        str(samples[1]),
    )
    assert piped.returncode == 0, piped.stdout + piped.stderr
    report = json.loads(piped.stdout)
    assert report["verified"] is True and report["status"] == "done"
    assert report["input_sha256"] == InputRecord().recall(JobRef("tenant-a", report["job_id"]))
    again = _ccc(
        "result", report["job_id"], "--json", "--state-dir", str(stack.state_dir), "--trust", str(trust_files["right"])
    )
    assert again.returncode == 0 and json.loads(again.stdout)["input_sha256"] == report["input_sha256"]


def test_a_trust_file_pinning_another_pcr0_makes_every_result_unverified(stack, samples, trust_files):
    piped = _ccc(
        "submit",
        "--wait",
        "--json",
        "--state-dir",
        str(stack.state_dir),
        "--trust",
        str(trust_files["wrong"]),
        *map(str, samples[:2]),
    )
    assert piped.returncode == 1, piped.stdout + piped.stderr
    reports = [json.loads(line) for line in piped.stdout.splitlines()]
    assert len(reports) == 2
    for report in reports:
        assert report["status"] == "done" and report["verified"] is False and report["cats"] is None
        assert report["error"].startswith("pcr_mismatch") and ANOTHER_PCR0[:12] in report["error"]
    fetched = _ccc(
        "result", reports[0]["job_id"], "--state-dir", str(stack.state_dir), "--trust", str(trust_files["wrong"])
    )
    assert fetched.returncode == 1 and "NOT VERIFIED: pcr_mismatch" in fetched.stdout


def test_submit_without_a_trust_file_says_how_to_make_one(stack, samples, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "CCC_TRUST_FILE"}
    env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")})
    refused = _ccc("submit", "--wait", "--state-dir", str(stack.state_dir), str(samples[0]), env=env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "no trust file" in refused.stderr and "ccc trust init" in refused.stderr


def test_audit_finds_no_drift_for_the_right_file_and_drift_for_the_wrong_one(stack, trust_files):
    right = _ccc(
        "trust", "audit", "--json", "--trust", str(trust_files["right"]), "--local-stack", str(stack.state_dir)
    )
    assert right.returncode == 0, right.stdout + right.stderr
    assert json.loads(right.stdout)["drift"] is False
    wrong = _ccc("trust", "audit", "--trust", str(trust_files["wrong"]), "--local-stack", str(stack.state_dir))
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "does not pin" in wrong.stdout and "can decrypt your inputs" in wrong.stdout


def test_an_input_made_by_another_principal_with_the_tenants_context_is_refused(stack, samples, tmp_path, trust_files):
    """Someone who can act as the tenant's role (the issue's operator) puts its own ciphertext, under
    the tenant's context, into a job the tenant's client created: the enclave genuinely counts it,
    and the tenant's client refuses the result because it is not the input it uploaded."""
    trust = load_trust(trust_files["right"])
    tenant = CccClient(
        local_target(stack.state_dir), trust=trust, inputs=InputRecord(tmp_path / "tenant"), show_progress=False
    )
    other = CccClient(
        local_target(stack.state_dir), trust=trust, inputs=InputRecord(tmp_path / "other"), show_progress=False
    )
    ticket = tenant.create_job()
    mine = io.BytesIO()
    encrypt_stream(io.BytesIO(samples[0].read_bytes()), mine, provider=tenant.provider, context=ticket.context)
    tenant.inputs.remember(ticket.job, hashlib.sha256(mine.getvalue()).hexdigest(), len(mine.getvalue()))
    theirs = io.BytesIO()
    encrypt_stream(io.BytesIO(samples[2].read_bytes()), theirs, provider=other.provider, context=ticket.context)
    other.upload(ticket, io.BytesIO(theirs.getvalue()), len(theirs.getvalue()))
    report = tenant.wait(ticket.job, timeout=JOB_TIMEOUT_S)
    assert report.status == "done" and not report.verified and report.cats is None, report
    assert report.error and report.error.startswith("input_mismatch"), report
    # The one who really uploaded it would verify it: the binding names exactly that ciphertext.
    assert other.fetch(ticket.job).ok
