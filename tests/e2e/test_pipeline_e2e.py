"""The confidential pipeline end to end, in real processes: client -> moto S3/SQS -> parent agent ->
simulated enclave (attested KMS through the gateway) -> results -> verified, decrypted by the client.

One stack for the module (see conftest). Tests run in file order; the confidentiality scan runs last
so that it covers every job the module ran (good, tampered, wrong-context, official CLI, restart).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ccc.client import CccClient, check_image, local_target
from ccc.client.crypto import encrypt_stream
from ccc.trust import load_trust
from ccc_core.identity import JobRef

from .conftest import ESDK_CLI, make_trust_file

pytestmark = pytest.mark.slow
JOB_TIMEOUT_S = 90.0
# Everything the module submitted: (job id, plaintext image bytes, result plaintext or None).
JOURNAL: list[tuple[str, bytes, bytes | None]] = []


def _client(stack) -> CccClient:
    return CccClient(local_target(stack.state_dir), "tenant-a", show_progress=False)


def _ccc(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccc", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _admin_clients(stack):
    import boto3

    admin = stack.info.identity("admin")
    session = boto3.session.Session(
        aws_access_key_id=admin.access_key_id, aws_secret_access_key=admin.secret_access_key,
        region_name=stack.info.region,
    )
    return session.client("s3", endpoint_url=stack.info.endpoint_url)


def _encrypt(client: CccClient, plaintext: bytes, context: dict[str, str]) -> bytes:
    sink = io.BytesIO()
    encrypt_stream(io.BytesIO(plaintext), sink, provider=client.provider, context=context)
    return sink.getvalue()


def _result_plaintext(client: CccClient, job: JobRef) -> bytes:
    """Decrypt a stored result the way the client does (for the confidentiality scan)."""
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import CommitmentPolicy

    body = client.s3.get_object(Bucket=client.target.results_bucket, Key=job.result_key)["Body"].read()
    sdk = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    plaintext, _ = sdk.decrypt(source=body, key_provider=client.provider)
    return plaintext


def test_pipeline_counts_equal_ccc_count_and_every_result_verifies(stack, samples):
    local = _ccc("count", "--json", *map(str, samples))
    assert local.returncode == 0, local.stderr
    expected = {json.loads(line)["image"]: json.loads(line)["cats"] for line in local.stdout.splitlines()}

    piped = _ccc("submit", "--wait", "--json", "--state-dir", str(stack.state_dir), *map(str, samples))
    assert piped.returncode == 0, piped.stdout + piped.stderr
    reports = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [r["image"] for r in reports] == [str(p) for p in samples]
    client = _client(stack)
    for report in reports:
        assert report["status"] == "done" and report["verified"] is True, report
        assert report["error"] is None
        assert report["pcr0"] == stack.info.expected_pcrs["0"]
        assert report["cats"] == expected[report["image"]]
        assert isinstance(report["elapsed_ms"], int) and report["elapsed_ms"] > 0
        job = JobRef("tenant-a", report["job_id"])
        JOURNAL.append((job.job_id, Path(report["image"]).read_bytes(), _result_plaintext(client, job)))


def test_result_cli_fetches_and_verifies_a_finished_job(stack, samples, tmp_path):
    job_id = JOURNAL[0][0]
    shown = _ccc("result", job_id, "--json", "--state-dir", str(stack.state_dir))
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["status"] == "done" and report["verified"] and report["job_id"] == job_id
    # Another tenant cannot decrypt tenant-a's result: the key policy only lets a tenant decrypt its own.
    from ccc.client.crypto import decrypt_result
    from ccc.client.errors import VerificationError

    job = JobRef("tenant-a", job_id)
    intruder_trust = load_trust(make_trust_file(stack.state_dir, tmp_path / "trust-b.json", "tenant-b"))
    intruder = CccClient(local_target(stack.state_dir), "tenant-b", trust=intruder_trust, show_progress=False)
    # Its IAM policy does not even let it read the object (as on AWS: results/<tenant>/ is the tenant's)...
    with pytest.raises(ClientError) as denied:
        intruder.s3.get_object(Bucket=intruder.target.results_bucket, Key=job.result_key)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    # ...and handed the ciphertext by someone who can (the operator), it cannot decrypt it.
    operator = _admin_clients(stack)
    ciphertext = operator.get_object(Bucket=intruder.target.results_bucket, Key=job.result_key)["Body"].read()
    with pytest.raises(VerificationError, match="does not decrypt"):
        decrypt_result(ciphertext, job, provider=intruder.provider)


def test_tampered_ciphertext_ends_failed_with_a_reason(stack, samples):
    client = _client(stack)
    ticket = client.create_job()
    job = ticket.job
    image = samples[0].read_bytes()
    sealed = bytearray(_encrypt(client, image, ticket.context))
    sealed[len(sealed) // 2] ^= 0x01  # one bit in the encrypted body
    client.upload(ticket, io.BytesIO(bytes(sealed)), len(sealed))
    report = client.wait(job, timeout=JOB_TIMEOUT_S)
    JOURNAL.append((job.job_id, image, None))
    assert report.status == "failed", report
    assert report.error and "decrypt" in report.error.lower()
    assert not report.ok


def test_input_encrypted_for_another_job_ends_failed_with_a_reason(stack, samples):
    client = _client(stack)
    victim = client.create_job()
    replay = client.create_job()
    image = samples[2].read_bytes()
    sealed = _encrypt(client, image, victim.context)  # valid ciphertext, but bound to `victim`
    client.upload(replay, io.BytesIO(sealed), len(sealed))
    report = client.wait(replay.job, timeout=JOB_TIMEOUT_S)
    JOURNAL.append((replay.job.job_id, image, None))
    assert report.status == "failed", report
    assert report.error and "context" in report.error.lower()


@pytest.mark.skipif(not ESDK_CLI.exists(), reason="official aws-encryption-cli not installed (make setup)")
def test_official_esdk_cli_input_is_accepted_and_its_result_decrypts_with_the_cli(stack, samples, tmp_path):
    info = stack.info
    tenant = info.identity("tenant-a")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": tenant.access_key_id,
        "AWS_SECRET_ACCESS_KEY": tenant.secret_access_key,
        "AWS_DEFAULT_REGION": info.region,
        "AWS_ENDPOINT_URL_KMS": info.kms_endpoint_url,  # botocore's per-service endpoint override
    }
    client = _client(stack)
    ticket = client.create_job()
    job = ticket.job
    image = samples[2]
    sealed = tmp_path / "input.ccc"
    encrypt = subprocess.run(
        [str(ESDK_CLI), "--encrypt", "--input", str(image), "--output", str(sealed),
         "--wrapping-keys", f"key={client.trust.data_key_arn}",  # the tenant's pinned key
         "--commitment-policy", "require-encrypt-require-decrypt",
         "--encryption-context", *(f"{k}={v}" for k, v in job.input_context().items()), "-S"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert encrypt.returncode == 0, encrypt.stderr
    with sealed.open("rb") as body:
        client.upload(ticket, body, sealed.stat().st_size)
    report = client.wait(job, timeout=JOB_TIMEOUT_S)
    assert report.status == "done" and report.verified, report

    result = tmp_path / "result.ccc"
    result.write_bytes(client.s3.get_object(Bucket=info.results_bucket, Key=job.result_key)["Body"].read())
    decrypted = tmp_path / "result.json"
    decrypt = subprocess.run(
        [str(ESDK_CLI), "--decrypt", "--input", str(result), "--output", str(decrypted),
         "--wrapping-keys", f"key={client.trust.data_key_arn}",
         "--commitment-policy", "require-encrypt-require-decrypt",
         "--encryption-context", *(f"{k}={v}" for k, v in job.result_context().items()), "-S"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert decrypt.returncode == 0, decrypt.stderr
    document = json.loads(decrypted.read_bytes())
    assert document["cats"] == report.cats and document["job_id"] == job.job_id
    JOURNAL.append((job.job_id, image.read_bytes(), decrypted.read_bytes()))


def _wait_for_log(path: Path, needle: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return True
        time.sleep(0.02)
    return False


def _result_exists(client: CccClient, job: JobRef) -> bool:
    listing = client.s3.list_objects_v2(Bucket=client.target.results_bucket, Prefix=job.result_key)
    return bool(listing.get("Contents"))


def test_enclave_killed_mid_job_is_restarted_and_the_job_still_completes(stack, samples):
    client = _client(stack)
    moto_log = stack.state_dir / "logs" / "moto.log"
    for _attempt in range(3):
        victim = stack.refresh().pids["enclave-1"]
        submitted = client.submit(check_image(samples[3], client.target.limits.max_image_bytes))
        # The parent GETs the ciphertext right before handing it to the enclave: kill the enclave then.
        fetched = f"GET /{stack.info.inbox_bucket}/{submitted.job.inbox_key}"
        assert _wait_for_log(moto_log, fetched, timeout=30), "the parent never picked the job up"
        os.kill(victim, signal.SIGKILL)
        killed_mid_job = not _result_exists(client, submitted.job)
        report = client.wait(submitted.job, timeout=JOB_TIMEOUT_S, started=submitted.started)
        assert report.status == "done" and report.verified, report
        JOURNAL.append((submitted.job.job_id, samples[3].read_bytes(), _result_plaintext(client, submitted.job)))
        deadline = time.monotonic() + 10
        while stack.refresh().pids["enclave-1"] == victim and time.monotonic() < deadline:
            time.sleep(0.1)
        replacement = stack.info.pids["enclave-1"]
        assert replacement != victim, "the supervisor did not restart the killed enclave"
        os.kill(replacement, 0)
        if killed_mid_job:
            break
    else:
        pytest.fail("the enclave finished every job before it could be killed (3 attempts)")
    parent_log = (stack.state_dir / "logs" / "parent-1.log").read_text()
    assert any(submitted.job.job_id in line and "retry" in line for line in parent_log.splitlines())


def test_every_enclave_process_runs_in_the_enclave_environment(stack):
    """The local enclave runs what the EIF runs: `.venv-enclave`'s interpreter, its packages only."""
    from ccc.local.components import enclave_python

    enclaves = {name: pid for name, pid in stack.refresh().pids.items() if name.startswith("enclave-")}
    assert enclaves
    dev_venv = str(Path(__file__).resolve().parents[2] / ".venv") + "/"
    for name, pid in enclaves.items():
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert argv[0].decode() == str(enclave_python()), (name, argv)
        mapped = {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                  if len(line.split()) >= 6}
        assert any("/.venv-enclave/" in path and "onnxruntime" in path for path in mapped), name
        assert not [path for path in mapped if path.startswith(dev_venv)], name


def _needles(image: bytes) -> list[bytes]:
    """Byte runs (and their base64) from several places of an image: any copy of it would contain one."""
    needles = []
    for start in range(0, max(1, len(image) - 48), max(1, len(image) // 6)):
        run = image[start : start + 48]
        needles.append(run)
        needles.append(base64.b64encode(run)[8:56])  # aligned or not, the middle of the base64 is stable
    return needles


def test_no_plaintext_image_or_result_in_s3_or_logs(stack):
    assert JOURNAL, "the earlier tests submitted nothing"
    s3 = _admin_clients(stack)
    stored: dict[str, bytes] = {}
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                stored[f"s3://{bucket}/{item['Key']}"] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    state = stack.state_dir
    files = [*state.glob("logs/*.log"), *state.glob("*.log"), *state.glob("telemetry/*")]
    logs = {str(p): p.read_bytes() for p in files if p.is_file()}
    assert stored and logs
    haystacks = {**stored, **logs}
    for job_id, image, result in JOURNAL:
        for needle in _needles(image):
            for name, data in haystacks.items():
                assert needle not in data, f"plaintext image bytes of job {job_id} found in {name}"
        if result is not None:
            for name, data in haystacks.items():
                assert result not in data, f"plaintext result of job {job_id} found in {name}"
    # No log line pairs a job id with its count (the result is the tenant's secret too).
    count_pattern = re.compile(rb"\bcats\b\W{0,4}\d")
    for name, data in logs.items():
        for line in data.splitlines():
            if any(job_id.encode() in line for job_id, _, _ in JOURNAL):
                assert not count_pattern.search(line), f"{name} logs a result next to a job id: {line[:200]!r}"
