"""Both processes as the local stack starts them: `python -m ccc_enclave` and
`python -m enclave_worker.parent`, against moto in server mode (S3 -> SQS notifications) and the
attested-KMS gateway. A tenant uploads an encrypted image and gets back a verified, decryptable
count; a wrong-context upload ends as a failure record; SIGTERM stops both cleanly; the logs hold
metadata only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from ccc.attestation import AttestationPolicy, verify_document
from ccc.local.components import enclave_command
from ccc_common.contracts.result_objects import attestation_key_for_result
from ccc_core.identity import JobRef
from ccc_core.result_binding import result_user_data
from enclave_worker.parent.enclave_client import EnclaveUnavailable, SocketEnclaveClient
from tests.integration.test_enclave_attested import (  # noqa: F401 - module fixture reused
    REGION,
    TENANT,
    AttestedStack,
    attested_stack,
    png_image,
)

INBOX = "ccc-local-inbox-111122223333-eu-west-1"
RESULTS = "ccc-local-results-111122223333-eu-west-1"


@dataclass
class Workers:
    enclave: subprocess.Popen[bytes]
    parent: subprocess.Popen[bytes]
    enclave_log: Path
    parent_log: Path
    work: Path
    s3: Any
    sqs: Any
    queue_url: str


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def workers(attested_stack: AttestedStack) -> Iterator[Workers]:  # noqa: F811
    parent_identity = attested_stack.identities["parent"]
    aws = {"endpoint_url": attested_stack.moto_url, "region_name": REGION,
           "aws_access_key_id": parent_identity.access_key_id,
           "aws_secret_access_key": parent_identity.secret_access_key}
    s3, sqs = boto3.client("s3", **aws), boto3.client("sqs", **aws)
    queue_url = sqs.create_queue(QueueName="ccc-local-work")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for bucket in (INBOX, RESULTS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_notification_configuration(Bucket=INBOX, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]})

    work = Path(tempfile.mkdtemp(prefix="ccc-w-", dir="/tmp"))
    socket_uri = f"unix://{work}/enclave.sock"
    enclave_log, parent_log = work / "enclave.log", work / "parent.log"
    enclave = subprocess.Popen(
        enclave_command("ccc_enclave", "--listen", socket_uri,
         "--spec", str(attested_stack.spec_path), "--nsm", f"simulated:{attested_stack.ca_dir}",
         "--kms-endpoint", attested_stack.gateway.url,
         "--concurrency", "2", "--state-dir", str(work)),
        stdout=subprocess.DEVNULL, stderr=enclave_log.open("wb"), env=_clean_env(),
    )

    def enclave_healthy() -> bool:
        assert enclave.poll() is None, enclave_log.read_text()
        try:
            SocketEnclaveClient(socket_uri).health(timeout_s=2)
        except EnclaveUnavailable:
            return False
        return True

    _wait_for(enclave_healthy, 60, "the enclave to answer health checks")
    config = {
        "stage": "local", "region": REGION, "queue_url": queue_url, "inbox_bucket": INBOX, "results_bucket": RESULTS,
        "enclave": {"uri": socket_uri},
        "aws": {"endpoint_url": attested_stack.moto_url,
                "credentials": {"access_key_id": parent_identity.access_key_id,
                                "secret_access_key": parent_identity.secret_access_key}},
        "kms": {"region": REGION, "endpoint_url": attested_stack.gateway.url},
        "workers": 2, "wait_time_s": 1, "state_dir": str(work),
    }
    config_path = work / "parent.json"
    config_path.write_text(json.dumps(config))
    ready = work / "parent.ready"
    parent = subprocess.Popen(
        [sys.executable, "-m", "enclave_worker.parent", "--config", str(config_path), "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL, stderr=parent_log.open("wb"), env=_clean_env(),
    )
    _wait_for(lambda: ready.exists() or parent.poll() is not None, 60, "the parent to start polling")
    assert parent.poll() is None, parent_log.read_text()
    yield Workers(enclave, parent, enclave_log, parent_log, work, s3, sqs, queue_url)
    for process in (parent, enclave):
        if process.poll() is None:
            process.kill()
            process.wait(10)
    shutil.rmtree(work, ignore_errors=True)


def _upload(stack: AttestedStack, workers: Workers, ref: JobRef, context: dict[str, str]) -> bytes:
    ciphertext = stack.encrypt(png_image(), context)
    workers.s3.put_object(Bucket=INBOX, Key=ref.inbox_key, Body=ciphertext)
    return ciphertext


def _object(workers: Workers, key: str) -> bytes | None:
    try:
        return bytes(workers.s3.get_object(Bucket=RESULTS, Key=key)["Body"].read())
    except workers.s3.exceptions.NoSuchKey:
        return None


def test_uploaded_image_comes_back_counted_verified_and_decryptable(
    attested_stack: AttestedStack, workers: Workers  # noqa: F811
) -> None:
    ref = JobRef(tenant=TENANT, job_id=os.urandom(16).hex())
    uploaded = _upload(attested_stack, workers, ref, ref.input_context())
    _wait_for(lambda: _object(workers, ref.result_key) is not None, 120, "the result object")
    result_ciphertext = _object(workers, ref.result_key)
    document = _object(workers, attestation_key_for_result(ref, result_ciphertext or b""))
    assert result_ciphertext is not None and document is not None
    verify_document(document, root_der=attested_stack.ca.root_der, at=datetime.now(UTC),
                    policy=AttestationPolicy(expected_pcrs=attested_stack.pcrs,
                                             user_data=result_user_data(uploaded, result_ciphertext)))
    result, context = attested_stack.decrypt_result(result_ciphertext)
    assert result["cats"] == 2 and context["ccc:kind"] == "result"
    head = workers.s3.head_object(Bucket=RESULTS, Key=ref.result_key)
    assert head["Metadata"]["ccc-pcr0"] == attested_stack.pcrs[0].hex()


def test_wrong_context_upload_ends_as_a_failure_record(
    attested_stack: AttestedStack, workers: Workers  # noqa: F811
) -> None:
    ref = JobRef(tenant=TENANT, job_id=os.urandom(16).hex())
    other = JobRef(tenant=TENANT, job_id=os.urandom(16).hex())
    _upload(attested_stack, workers, ref, other.input_context())
    _wait_for(lambda: _object(workers, ref.failure_key) is not None, 120, "the failure record")
    record = json.loads(_object(workers, ref.failure_key) or b"{}")
    assert record["status"] == "failed" and record["code"] == "context_mismatch" and record["job_id"] == ref.job_id
    assert _object(workers, ref.result_key) is None


def test_sigterm_stops_both_cleanly_and_logs_hold_metadata_only(
    attested_stack: AttestedStack, workers: Workers  # noqa: F811
) -> None:
    workers.parent.send_signal(signal.SIGTERM)
    assert workers.parent.wait(30) == 0
    workers.enclave.send_signal(signal.SIGTERM)
    assert workers.enclave.wait(30) == 0
    secret = attested_stack.identities["parent"].secret_access_key
    for log in (workers.parent_log, workers.enclave_log):
        text = log.read_text()
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        assert lines and all("event" in line for line in lines)
        assert secret not in text
        assert '"cats"' not in text and "detections" not in text
    parent_events = [json.loads(line)["event"] for line in workers.parent_log.read_text().splitlines()]
    assert "result written" in parent_events and "parent agent stopped" in parent_events
    enclave_events = [json.loads(line)["event"] for line in workers.enclave_log.read_text().splitlines()]
    assert "enclave booted" in enclave_events and "enclave server stopped" in enclave_events

    # One trace per job: the enclave's job span is a child of the parent's job span.
    def spans(service: str) -> list[dict[str, Any]]:
        path = workers.work / "telemetry" / f"{service}.spans.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    parent_jobs = {s["span_id"]: s for s in spans("parent") if s["name"] == "ccc.parent.job"}
    enclave_spans = spans("enclave")
    enclave_jobs = [s for s in enclave_spans if s["name"] == "ccc.enclave.job"]
    assert len(parent_jobs) == 2 and len(enclave_jobs) == 2
    for span in enclave_jobs:
        parent = parent_jobs[span["parent_span_id"]]
        assert parent["trace_id"] == span["trace_id"]
    stages = {s["name"] for s in enclave_spans}
    assert {"ccc.enclave.decrypt", "ccc.enclave.infer", "ccc.enclave.encrypt", "ccc.enclave.attest"} <= stages
    assert {s["attributes"].get("ccc.outcome") for s in parent_jobs.values()} == {"done", "failed"}
    # A failed job is an error on the parent's span too (issue 15), a finished one is not.
    assert {s["attributes"]["ccc.outcome"]: s["status"] for s in parent_jobs.values()} == {
        "done": "UNSET",
        "failed": "ERROR",
    }
