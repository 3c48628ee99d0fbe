"""`ccc submit`/`ccc result` trust only the tenant's trust file, and refuse results of inputs they did not upload.

The client runs against a fake jobs API (no stack); attestation documents are real-format ones
signed by a local CA (`SimulatedNsm`), bound with the enclave's `ccc_core.result_binding`. The
decryption step is replaced by the result document the enclave would have sealed: decryption is
tested end to end in tests/e2e.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import ccc.cli.client_cmd as client_cmd
import ccc.client.job_runner as job_runner
from ccc.cli import main
from ccc.client import CccClient, InputRecord, TargetError
from ccc.client.api import JobState, PresignedUpload
from ccc.client.job_runner import JobTicket
from ccc.trust import TrustFile, root_from_der, write_trust
from ccc.trust.releases import pinned_release, with_release
from ccc_core.identity import JobRef
from ccc_core.result_binding import result_user_data
from ccc_core.result_document import ModelInfo, ResultDocument
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm
from tests.support.client_target import offline_target

PCRS = {0: bytes.fromhex("11" * 48), 1: bytes.fromhex("22" * 48), 2: bytes.fromhex("33" * 48)}
ROGUE = {**PCRS, 0: bytes.fromhex("44" * 48)}
KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
INPUT = b"the ESDK input message the tenant uploaded"
INPUT_SHA256 = hashlib.sha256(INPUT).hexdigest()
RESULT = b"an ESDK result message"
JOB = JobRef("tenant-a", "c" * 32)
TARGET = offline_target()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalNitroCA:
    return LocalNitroCA.create(tmp_path_factory.mktemp("ca"), now=datetime.now(UTC) - timedelta(days=1))


def _trust(ca: LocalNitroCA, pcrs: dict[int, bytes] = PCRS, tenant: str = "tenant-a") -> TrustFile:
    release = pinned_release("release-1", {i: v.hex() for i, v in pcrs.items()}, source="pcrs")
    return TrustFile(
        format="ccc.trust/v1",
        tenant=tenant,
        data_key_arn=KEY,
        attestation_root=root_from_der(ca.root_der, kind="local"),
        releases=[release],
    )


def _attest(ca: LocalNitroCA, pcrs: dict[int, bytes] = PCRS, source: bytes = INPUT) -> bytes:
    return SimulatedNsm(ca, pcrs).attest(user_data=result_user_data(source, RESULT))


class FakeApi:
    """The jobs API as the stack would answer (whatever the operator makes it answer)."""

    def __init__(self, state: JobState, blobs: dict[str, bytes]) -> None:
        self.state, self.blobs = state, blobs
        self.puts: list[bytes] = []

    def get_job(self, job: JobRef) -> JobState:
        return self.state

    def get_bytes(self, url: str, limit: int) -> bytes:
        return self.blobs[url]

    def create_job(self, tenant: str) -> tuple[JobRef, PresignedUpload]:
        return JOB, PresignedUpload(url="https://put.invalid", headers={}, max_bytes=1 << 20)

    def put(self, upload: PresignedUpload, body: Any, size: int) -> None:
        self.puts.append(body.read())


def _done(document: bytes) -> FakeApi:
    return FakeApi(
        JobState(job=JOB, status="done", error=None, result_url="r", attestation_url="a"), {"r": RESULT, "a": document}
    )


def _sealed_document(job: JobRef, *, provider: Any) -> ResultDocument:
    return ResultDocument(
        job_id=job.job_id,
        tenant=job.tenant,
        input_sha256=INPUT_SHA256,
        cats=0,
        detections=(),
        detections_truncated=False,
        model=ModelInfo(name="m", sha256="ab" * 32),
    )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    holder: dict[str, Any] = {}
    monkeypatch.setattr(CccClient, "api", property(lambda self: holder["api"]))
    monkeypatch.setattr(
        job_runner, "decrypt_result", lambda ciphertext, job, provider: _sealed_document(job, provider=provider)
    )
    monkeypatch.setattr(job_runner, "key_provider", lambda arn, session: ("provider for", arn))
    return holder


def _client(ca: LocalNitroCA, tmp_path: Path, trust: TrustFile | None = None) -> CccClient:
    return CccClient(TARGET, "tenant-a", trust=trust or _trust(ca), inputs=InputRecord(tmp_path / "state"))


def test_a_result_of_the_uploaded_input_verifies_against_the_pinned_release(ca, tmp_path, fake) -> None:
    client = _client(ca, tmp_path)
    fake["api"] = _done(_attest(ca))
    client.upload(JobTicket(JOB, PresignedUpload("https://put.invalid", {}, 1 << 20)), io.BytesIO(INPUT), len(INPUT))
    report = client.fetch(JOB)
    assert report.ok and report.verified and report.release == "release-1"
    assert report.input_sha256 == INPUT_SHA256
    assert json.loads(report.to_json())["input_sha256"] == report.input_sha256


def test_the_client_encrypts_only_to_the_pinned_key(ca, tmp_path, fake) -> None:
    assert _client(ca, tmp_path).provider == ("provider for", KEY)


def test_a_genuine_enclave_of_an_unpinned_release_is_not_verified(ca, tmp_path, fake) -> None:
    client = _client(ca, tmp_path)
    client.inputs.remember(JOB, INPUT_SHA256, len(INPUT))
    fake["api"] = _done(_attest(ca, ROGUE))
    report = client.fetch(JOB)
    assert report.status == "done" and not report.verified and not report.ok and report.cats is None
    assert (report.error or "").startswith("pcr_mismatch") and "release-1" in (report.error or "")


def test_any_pinned_release_verifies_so_releases_roll_without_downtime(ca, tmp_path, fake) -> None:
    trust = with_release(_trust(ca), pinned_release("release-2", {i: v.hex() for i, v in ROGUE.items()}, source="pcrs"))
    client = _client(ca, tmp_path, trust)
    client.inputs.remember(JOB, INPUT_SHA256, len(INPUT))
    fake["api"] = _done(_attest(ca, ROGUE))
    report = client.fetch(JOB)
    assert report.ok and report.release == "release-2"


def test_a_result_of_an_input_someone_else_made_is_refused(ca, tmp_path, fake) -> None:
    client = _client(ca, tmp_path)
    client.inputs.remember(JOB, INPUT_SHA256, len(INPUT))
    fake["api"] = _done(_attest(ca, source=b"the operator's ciphertext under the tenant's context"))
    report = client.fetch(JOB)
    assert not report.verified and (report.error or "").startswith("input_mismatch")


def test_a_job_this_client_never_uploaded_is_not_verified(ca, tmp_path, fake) -> None:
    fake["api"] = _done(_attest(ca))
    report = _client(ca, tmp_path).fetch(JOB)
    assert not report.verified and (report.error or "").startswith("input_unknown")


def test_another_root_never_verifies(ca, tmp_path, fake, tmp_path_factory) -> None:
    other = LocalNitroCA.create(tmp_path_factory.mktemp("other"), now=datetime.now(UTC) - timedelta(days=1))
    client = _client(ca, tmp_path)
    client.inputs.remember(JOB, INPUT_SHA256, len(INPUT))
    fake["api"] = _done(_attest(other))
    report = client.fetch(JOB)
    assert not report.verified and (report.error or "").startswith("attestation_invalid")


def test_the_trust_file_names_the_tenant(ca, tmp_path) -> None:
    with pytest.raises(TargetError, match="tenant tenant-a's, not tenant-b's"):
        CccClient(TARGET, "tenant-b", trust=_trust(ca), inputs=InputRecord(tmp_path))
    assert CccClient(TARGET, None, trust=_trust(ca), inputs=InputRecord(tmp_path)).tenant == "tenant-a"


def test_the_upload_is_recorded_before_it_is_sent(ca, tmp_path, fake) -> None:
    client = _client(ca, tmp_path)
    fake["api"] = _done(b"")
    seen: list[str | None] = []
    fake["api"].put = lambda upload, body, size: seen.append(client.inputs.recall(JOB))
    digest = client.upload(
        JobTicket(JOB, PresignedUpload("https://put.invalid", {}, 1 << 20)), io.BytesIO(INPUT), len(INPUT)
    )
    assert seen == [digest] and InputRecord(tmp_path / "state").recall(JOB) == digest


def test_a_damaged_upload_record_is_an_error_not_a_pass(ca, tmp_path) -> None:
    record = InputRecord(tmp_path)
    record.remember(JOB, "ab" * 32, 10)
    path = tmp_path / "inputs" / "tenant-a" / f"{JOB.job_id}.json"
    path.write_text(path.read_text().replace("ab" * 32, "zz" * 32))
    with pytest.raises(Exception, match="damaged"):
        record.recall(JOB)


# ----- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def no_trust_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CCC_TRUST_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


@pytest.mark.parametrize("command", [["submit", "cat.jpg"], ["result", "c" * 32]])
def test_without_a_trust_file_the_commands_say_how_to_make_one(command, no_trust_anywhere, capsys) -> None:
    assert main([*command, "--state-dir", str(no_trust_anywhere / "no-stack")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "no trust file" in error and "ccc trust init" in error


def test_result_json_prints_input_sha256_next_to_verified(ca, no_trust_anywhere, fake, monkeypatch, capsys) -> None:
    path = no_trust_anywhere / "trust.json"
    write_trust(path, _trust(ca))
    monkeypatch.setattr(client_cmd, "_target", lambda args: TARGET)
    InputRecord().remember(JOB, INPUT_SHA256, len(INPUT))
    fake["api"] = _done(_attest(ca))
    assert main(["result", JOB.job_id, "--json", "--trust", str(path)]) == 0
    line = json.loads(capsys.readouterr().out)
    keys = list(line)
    assert line["verified"] is True and keys.index("input_sha256") == keys.index("verified") + 1
    assert line["input_sha256"] == INPUT_SHA256


def test_a_wrong_pcr0_trust_file_makes_ccc_result_exit_1(ca, no_trust_anywhere, fake, monkeypatch, capsys) -> None:
    path = no_trust_anywhere / "trust.json"
    write_trust(path, _trust(ca, ROGUE))
    monkeypatch.setattr(client_cmd, "_target", lambda args: TARGET)
    InputRecord().remember(JOB, INPUT_SHA256, len(INPUT))
    fake["api"] = _done(_attest(ca))
    assert main(["result", JOB.job_id, "--trust", str(path)]) == 1
    assert "result NOT VERIFIED: pcr_mismatch" in capsys.readouterr().out
