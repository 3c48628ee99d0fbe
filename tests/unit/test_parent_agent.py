"""The parent agent against moto S3+SQS (real S3->SQS notifications) with a fake enclave client.

What a user relies on: the result (and its attestation) is written before the message is
deleted; redelivery never reruns a finished job; a permanent failure leaves a failure record;
a retryable failure leaves the message for a later try (and eventually the DLQ); test events are
dropped; stop() (SIGTERM) finishes in-flight jobs.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ccc.local.moto_atomic import make_conditional_writes_atomic
from ccc_common.aws.job_leases import DynamoJobLeases
from ccc_common.aws.jobs_dal import DynamoJobStore
from ccc_common.contracts.jobs_table import create_table_request
from ccc_common.contracts.result_objects import attestation_key_for_result
from ccc_common.contracts.work_message import encode_s3_notification, encode_work_message
from ccc_common.domain.job_leases import LeaseHeld
from ccc_common.domain.jobs import JobEvent, JobStatus, new_job
from ccc_common.domain.upload_window import NEVER_UPLOADED, UPLOAD_GRACE_S
from ccc_core.identity import JobRef
from ccc_enclave.protocol.error_replies import ErrorInfo
from ccc_enclave.protocol.health_messages import EnclaveStatus
from ccc_enclave.protocol.job_messages import (
    JobFailure,
    JobMetrics,
    JobReply,
    JobRequest,
    JobSpec,
    JobSuccess,
    KmsTarget,
)
from enclave_worker.parent.agent import AgentSettings, MessageOutcome, ParentAgent
from enclave_worker.parent.enclave_client import EnclaveUnavailable
from enclave_worker.parent.imds import AwsCredentials, StaticCredentialsProvider

REGION = "us-east-1"
INBOX = "ccc-local-inbox-123456789012-us-east-1"
RESULTS = "ccc-local-results-123456789012-us-east-1"
TENANT = "acme"
JOB_A = "a" * 32
JOB_B = "b" * 32
SECRET = "SECRET-ACCESS-KEY-VALUE"
TABLE = "ccc-local-jobs"


def ok_reply(request: JobRequest) -> JobReply:
    return JobSuccess(
        request_id=request.request_id,
        result_ciphertext=b"RESULT-CT:" + request.job.job_id.encode(),
        attestation_document=b"ATTESTATION:" + request.job.job_id.encode(),
        metrics=JobMetrics(decrypt_ms=1.0, infer_ms=2.0, encrypt_ms=3.0, attest_ms=4.0),
        model_sha256="ab" * 32,
        pcr0_hex="cd" * 48,
    )


def fail_reply(code: str, retryable: bool | None = None) -> Callable[[JobRequest], JobReply]:
    def reply(request: JobRequest) -> JobReply:
        return JobFailure(request_id=request.request_id, error=ErrorInfo.of(code, f"{code} happened", retryable))

    return reply


@dataclass
class FakeEnclave:
    behaviour: Callable[[JobRequest], JobReply] = ok_reply
    healthy: bool = True
    requests: list[JobRequest] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    health_calls: int = 0

    def __post_init__(self) -> None:
        self.gate.set()

    def run_job(self, request: JobRequest, *, timeout_s: float) -> JobReply:
        self.requests.append(request)
        self.entered.set()
        assert self.gate.wait(10)
        return self.behaviour(request)

    def health(self, *, timeout_s: float) -> EnclaveStatus:
        self.health_calls += 1
        if not self.healthy:
            raise EnclaveUnavailable("down")
        return EnclaveStatus(uptime_s=1.0, jobs_served=0, jobs_failed=0, in_flight=0, concurrency=2, model_name="m",
                             model_sha256="ab" * 32, pcr0_hex="cd" * 48, cpu_count=2, rss_bytes=1)


class Recording:
    """Proxy that logs (service, operation, key) of every call, in order, into a shared list."""

    def __init__(self, client: Any, service: str, log: list[tuple[str, str, Any]]) -> None:
        self._client, self._service, self._log = client, service, log

    def __getattr__(self, operation: str) -> Any:
        method = getattr(self._client, operation)

        def call(**kwargs: Any) -> Any:
            self._log.append((self._service, operation, kwargs.get("Key", kwargs.get("VisibilityTimeout"))))
            return method(**kwargs)

        return call


@dataclass
class World:
    s3: Any
    sqs: Any
    queue_url: str
    dlq_url: str
    log: list[tuple[str, str, Any]]
    enclave: FakeEnclave
    dynamodb: Any = None

    def leases(self) -> DynamoJobLeases:
        return DynamoJobLeases(self.dynamodb, TABLE, ttl_days=30)

    def jobs(self) -> DynamoJobStore:
        return DynamoJobStore(self.dynamodb, TABLE, ttl_days=30)

    def agent(self, *, leases: bool = False, s3: Any = None, **overrides: Any) -> ParentAgent:
        values: dict[str, Any] = {
            "workers": 2, "wait_time_s": 0, "visibility_timeout_s": 30, "health_interval_s": 0.0,
            "busy_retry_for_s": 1.0, "busy_pause_s": 0.01, "unavailable_pause_s": 0.01, **overrides,
        }
        settings = AgentSettings(queue_url=self.queue_url, inbox_bucket=INBOX, results_bucket=RESULTS,
                                 kms=KmsTarget(region=REGION, endpoint_url="http://127.0.0.1:4599"), **values)
        creds = StaticCredentialsProvider(AwsCredentials("AKIDPARENT", SECRET, None))
        return ParentAgent(sqs=Recording(self.sqs, "sqs", self.log), s3=s3 or Recording(self.s3, "s3", self.log),
                           enclave=self.enclave, credentials=creds, settings=settings,
                           leases=self.leases() if leases else None, jobs=self.jobs() if leases else None)

    def upload(self, job: str, body: bytes = b"ESDK-CIPHERTEXT") -> None:
        self.s3.put_object(Bucket=INBOX, Key=f"jobs/{TENANT}/{job}.ccc", Body=body)

    def run(self, agent: ParentAgent, messages: int) -> None:
        agent.settings = replace(agent.settings, max_jobs=messages)
        with self.running(agent) as thread:
            thread.join(30)
            assert not thread.is_alive(), "agent did not finish"

    @contextmanager
    def running(self, agent: ParentAgent) -> Iterator[threading.Thread]:
        """The agent on a daemon thread that is always stopped, even when an assertion fails.

        Without this a failed wait leaves the agent polling a torn-down moto forever and the test
        process never exits.
        """
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        try:
            yield thread
        finally:
            self.enclave.gate.set()
            agent.stop()
            thread.join(30)

    def queue_counts(self, url: str | None = None) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def result_exists(self, key: str) -> bool:
        return "Contents" in self.s3.list_objects_v2(Bucket=RESULTS, Prefix=key)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    make_conditional_writes_atomic()  # as on AWS; moto alone lets two concurrent conditional writes both win
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        dlq_url = sqs.create_queue(QueueName="ccc-local-work-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="ccc-local-work",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.create_bucket(Bucket=INBOX)
        s3.create_bucket(Bucket=RESULTS)
        # The real S3 -> SQS notification path: moto sends s3:TestEvent first, then URL-encoded keys.
        s3.put_bucket_notification_configuration(
            Bucket=INBOX,
            NotificationConfiguration={"QueueConfigurations": [
                {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "jobs/"}]}}},
            ]},
        )
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**create_table_request(TABLE))
        yield World(s3, sqs, queue_url, dlq_url, [], FakeEnclave(), dynamodb)


def test_job_result_and_attestation_are_written_before_the_message_is_deleted(world: World) -> None:
    world.upload(JOB_A)
    agent = world.agent()
    world.run(agent, messages=2)  # the S3 test event + the job
    assert agent.stats == {"ignored": 1, "done": 1}

    result = world.s3.get_object(Bucket=RESULTS, Key=f"results/{TENANT}/{JOB_A}.ccc")
    assert result["Body"].read() == b"RESULT-CT:" + JOB_A.encode()
    metadata = dict(result["Metadata"])
    # The job's trace context rides along (the job-derived trace when the inbox object has none).
    from ccc_core.telemetry.propagation import job_trace_id

    assert metadata.pop("traceparent").startswith(f"00-{job_trace_id(JOB_A)}-")
    digest = hashlib.sha256(b"RESULT-CT:" + JOB_A.encode()).hexdigest()
    assert metadata == {"ccc-job": JOB_A, "ccc-tenant": TENANT, "ccc-model-sha256": "ab" * 32,
                        "ccc-pcr0": "cd" * 48, "ccc-kind": "result", "ccc-result-sha256": digest}
    # The attestation is addressed by the digest of the result it binds.
    att = world.s3.get_object(Bucket=RESULTS, Key=f"results/{TENANT}/{JOB_A}.{digest}.att")
    assert att["Body"].read() == b"ATTESTATION:" + JOB_A.encode()
    assert world.queue_counts() == (0, 0)

    request = world.enclave.requests[0]
    assert request.job == JobSpec(job_id=JOB_A, tenant=TENANT)
    assert request.ciphertext == b"ESDK-CIPHERTEXT"
    assert request.credentials.secret_access_key == SECRET
    assert request.kms == KmsTarget(region=REGION, endpoint_url="http://127.0.0.1:4599")

    writes = [i for i, (svc, op, key) in enumerate(world.log) if op == "put_object"]
    att_write = next(i for i in writes if world.log[i][2].endswith(".att"))
    result_write = next(i for i in writes if world.log[i][2].endswith(".ccc"))
    deletes = [i for i, (svc, op, _) in enumerate(world.log) if op == "delete_message"]
    assert att_write < result_write < max(deletes)  # attestation, then result, then delete
    assert len(deletes) == 2  # the test event and the job


def test_redelivery_of_a_finished_job_does_not_rerun_it(world: World) -> None:
    world.upload(JOB_A)
    world.run(world.agent(), messages=2)
    assert len(world.enclave.requests) == 1
    # The same event again (e.g. the delete was lost after the write): skipped and deleted.
    body = encode_work_message(encode_s3_notification([(INBOX, f"jobs/{TENANT}/{JOB_A}.ccc")], region="eu-west-1",
                                                      time=datetime.now(UTC)))
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody=body)
    agent = world.agent()
    world.run(agent, messages=1)
    assert agent.stats == {"already_done": 1}
    assert len(world.enclave.requests) == 1
    assert world.queue_counts() == (0, 0)


def test_permanent_error_writes_a_failure_record_then_deletes(world: World) -> None:
    world.enclave.behaviour = fail_reply("context_mismatch")
    world.upload(JOB_A)
    agent = world.agent()
    world.run(agent, messages=2)
    assert agent.stats["failed"] == 1
    record = json.loads(world.s3.get_object(Bucket=RESULTS, Key=f"results/{TENANT}/{JOB_A}.failed.json")["Body"].read())
    assert record == {"job_id": JOB_A, "tenant": TENANT, "status": "failed", "reason": "context_mismatch happened",
                      "code": "context_mismatch", "format": "ccc-failure-record/1"}
    assert not world.result_exists(f"results/{TENANT}/{JOB_A}.ccc")
    assert world.queue_counts() == (0, 0)
    # A redelivery after the failure record does not run the job again either.
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody=encode_work_message(
        encode_s3_notification([(INBOX, f"jobs/{TENANT}/{JOB_A}.ccc")], region="eu-west-1", time=datetime.now(UTC))))
    again = world.agent()
    world.run(again, messages=1)
    assert again.stats == {"already_done": 1} and len(world.enclave.requests) == 1


@pytest.mark.parametrize("behaviour", ["retryable", "unavailable"])
def test_retryable_errors_leave_the_message_with_backoff(world: World, behaviour: str) -> None:
    if behaviour == "retryable":
        world.enclave.behaviour = fail_reply("kms_unavailable")
    else:
        def unreachable(request: JobRequest) -> JobReply:
            raise EnclaveUnavailable("connection reset")

        world.enclave.behaviour = unreachable
    world.upload(JOB_A)
    agent = world.agent(backoff_base_s=7)
    world.run(agent, messages=2)
    assert agent.stats == {"ignored": 1, "retry": 1}
    assert ("sqs", "change_message_visibility", 7) in world.log  # base * 2^(1-1)
    assert not any(op == "put_object" for _, op, _ in world.log)
    assert sum(op == "delete_message" for _, op, _ in world.log) == 1  # only the test event
    assert world.queue_counts() == (0, 1)  # still in the queue, invisible for the backoff


def test_busy_enclave_is_retried_in_place_without_returning_the_message(world: World) -> None:
    calls = {"n": 0}

    def busy_twice(request: JobRequest) -> JobReply:
        calls["n"] += 1
        return fail_reply("busy")(request) if calls["n"] <= 2 else ok_reply(request)

    world.enclave.behaviour = busy_twice
    world.upload(JOB_A)
    agent = world.agent()
    world.run(agent, messages=2)
    assert agent.stats["done"] == 1 and calls["n"] == 3


def test_an_unhealthy_enclave_stops_polling(world: World) -> None:
    world.enclave.healthy = False
    world.upload(JOB_A)
    agent = world.agent()
    with world.running(agent) as thread:
        time.sleep(0.3)
        assert world.enclave.health_calls >= 2
        assert not any(op == "receive_message" for _, op, _ in world.log)
        world.enclave.healthy = True
        deadline = time.time() + 30
        while agent.stats["done"] < 1 and time.time() < deadline:
            time.sleep(0.05)
        agent.stop()
        thread.join(30)
    assert agent.stats["done"] == 1


def test_oversize_inputs_fail_permanently_and_missing_ones_are_not_yet(world: World) -> None:
    world.upload(JOB_A, body=b"x" * 101)
    world.jobs().create(new_job(JobRef(TENANT, JOB_B), datetime.now(UTC), ttl_days=30))  # POST /jobs
    world.upload(JOB_B)
    world.s3.delete_object(Bucket=INBOX, Key=f"jobs/{TENANT}/{JOB_B}.ccc")
    agent = world.agent(max_ciphertext_bytes=100, leases=True)
    world.run(agent, messages=3)
    assert agent.stats == {"ignored": 1, "failed": 1, "waiting": 1}
    too_large = json.loads(world.s3.get_object(Bucket=RESULTS, Key=f"results/{TENANT}/{JOB_A}.failed.json")["Body"]
                           .read())
    assert too_large["code"] == "too_large"
    assert world.enclave.requests == []
    # Issue 13: a missing input wrote a failure record, and the real upload that followed was
    # ignored for ever; then it was retried into the DLQ within seconds. Now it is "not yet" until
    # the upload window closes: no record, the job still submitted, no lease held, and the message
    # back in the queue, invisible until the window closes (not a receive burnt every few seconds).
    assert not world.result_exists(f"results/{TENANT}/{JOB_B}.failed.json")
    item = world.dynamodb.get_item(TableName=TABLE, Key={"job_id": {"S": JOB_B}})["Item"]
    assert item["status"] == {"S": "submitted"} and "lease_owner" not in item
    waiting = [v for service, op, v in world.log if op == "change_message_visibility"]
    assert waiting and waiting[-1] >= 900 + UPLOAD_GRACE_S - 5
    assert world.queue_counts() == (0, 1)
    # ... and the upload that follows completes the job.
    world.upload(JOB_B)
    agent = world.agent(max_ciphertext_bytes=100, leases=True)
    world.run(agent, messages=1)
    assert agent.stats == {"done": 1} and world.result_exists(f"results/{TENANT}/{JOB_B}.ccc")


def test_a_missing_input_after_the_upload_window_fails_the_job_but_a_late_upload_still_completes_it(
    world: World,
) -> None:
    ref = JobRef(TENANT, JOB_B)
    world.jobs().create(new_job(ref, datetime.now(UTC) - timedelta(seconds=900 + UPLOAD_GRACE_S + 1), ttl_days=30))
    world.upload(JOB_B)
    world.s3.delete_object(Bucket=INBOX, Key=ref.inbox_key)
    agent = world.agent(leases=True)
    world.run(agent, messages=2)
    assert agent.stats == {"ignored": 1, "failed": 1}
    assert world.queue_counts() == (0, 0)  # deleted, not left to the DLQ
    job = world.jobs().get(JOB_B)
    assert job is not None and job.status is JobStatus.FAILED and job.error == NEVER_UPLOADED
    assert not world.result_exists(ref.failure_key)  # the table only: nothing that blocks a late upload
    world.upload(JOB_B)  # the tenant role may still PUT directly
    agent = world.agent(leases=True)
    world.run(agent, messages=1)
    assert agent.stats == {"done": 1}
    assert world.result_exists(ref.result_key)
    # The result's event (the job-events function) then moves the job on: done outranks failed.
    assert world.jobs().apply(JobEvent.done(ref, datetime.now(UTC))).job.status is JobStatus.DONE


def test_a_message_naming_no_job_is_dropped_without_creating_one(world: World) -> None:
    world.upload(JOB_B)  # an object with no POST /jobs behind it, gone by the time the worker looks
    world.s3.delete_object(Bucket=INBOX, Key=f"jobs/{TENANT}/{JOB_B}.ccc")
    agent = world.agent(leases=True)
    world.run(agent, messages=2)
    assert agent.stats == {"ignored": 2}
    assert world.queue_counts() == (0, 0)
    assert "Item" not in world.dynamodb.get_item(TableName=TABLE, Key={"job_id": {"S": JOB_B}})


def test_a_retried_kms_denial_leaves_its_code_on_the_job(world: World) -> None:
    world.enclave.behaviour = fail_reply("kms_access_denied", True)
    world.upload(JOB_A)
    agent = world.agent(leases=True)
    world.run(agent, messages=2)
    assert agent.stats == {"ignored": 1, "retry": 1}
    item = world.dynamodb.get_item(TableName=TABLE, Key={"job_id": {"S": JOB_A}})["Item"]
    assert item["last_error"] == {"S": "kms_access_denied"} and item["status"] == {"S": "queued"}


def test_unparseable_messages_are_not_deleted_and_reach_the_dlq(world: World) -> None:
    world.sqs.purge_queue(QueueUrl=world.queue_url)
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody="this is not an S3 event")
    agent = world.agent()
    world.run(agent, messages=3)  # received three times: maxReceiveCount
    assert agent.stats == {"unparseable": 3}
    assert not any(op == "delete_message" for _, op, _ in world.log)
    # The next receive finds it over the limit and SQS redrives it.
    assert world.sqs.receive_message(QueueUrl=world.queue_url, WaitTimeSeconds=0).get("Messages") is None
    dead = world.sqs.receive_message(QueueUrl=world.dlq_url, WaitTimeSeconds=0)["Messages"]
    assert dead[0]["Body"] == "this is not an S3 event"


def test_stop_finishes_the_in_flight_job_before_returning(world: World) -> None:
    world.enclave.gate.clear()
    world.upload(JOB_A)
    agent = world.agent()
    with world.running(agent) as thread:
        assert world.enclave.entered.wait(30)
        agent.stop()
        time.sleep(0.2)
        assert thread.is_alive() and agent.in_flight == 1
        world.enclave.gate.set()
        thread.join(30)
        assert not thread.is_alive()
    assert world.result_exists(f"results/{TENANT}/{JOB_A}.ccc")
    assert world.queue_counts() == (0, 0)


def test_visibility_is_extended_while_a_long_job_runs(world: World) -> None:
    world.enclave.gate.clear()
    world.upload(JOB_A)
    agent = world.agent(visibility_timeout_s=2, heartbeat_interval_s=0.1)
    thread = threading.Thread(target=lambda: world.run(agent, messages=2), daemon=True)
    thread.start()
    try:
        assert world.enclave.entered.wait(30)
        time.sleep(0.5)
    finally:
        world.enclave.gate.set()
        thread.join(60)
    extensions = [entry for entry in world.log if entry == ("sqs", "change_message_visibility", 2)]
    assert len(extensions) >= 2
    assert agent.stats["done"] == 1


def test_logs_carry_no_ciphertext_or_credentials(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from ccc_core.logs import configure_logging

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    configure_logging("parent-test", "DEBUG")
    try:
        world.upload(JOB_A, body=b"ESDK-CIPHERTEXT-BODY")
        world.enclave.behaviour = fail_reply("decrypt_failed")
        world.run(world.agent(), messages=2)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    err = capsys.readouterr().err
    assert JOB_A in err  # metadata is logged
    assert "ESDK-CIPHERTEXT-BODY" not in err and SECRET not in err and "RESULT-CT" not in err


def test_backoff_grows_exponentially_and_is_capped() -> None:
    settings = AgentSettings(queue_url="q", inbox_bucket="i", results_bucket="r", kms=KmsTarget(region=REGION),
                             backoff_base_s=5, backoff_max_s=60)
    assert [settings.backoff_s(n) for n in (0, 1, 2, 3, 4, 5, 100)] == [5, 5, 10, 20, 40, 60, 60]


def test_outcome_values_are_stable() -> None:
    assert {o.value for o in MessageOutcome} == {"done", "already_done", "leased", "failed", "retry", "ignored",
                                                 "unparseable", "waiting"}


# ------------------------------------------------------------------ duplicate delivery (issue 13)


def unique_run_reply(request: JobRequest) -> JobReply:
    """Every enclave pass yields its own ciphertext (ESDK draws a fresh data key) and an attestation
    binding exactly it (user_data = its SHA-256), as the real enclave does."""
    ciphertext = b"RESULT-CT:" + request.job.job_id.encode() + b":" + request.request_id.encode()
    return JobSuccess(
        request_id=request.request_id, result_ciphertext=ciphertext,
        attestation_document=b"ATTESTS:" + hashlib.sha256(ciphertext).digest(),
        metrics=JobMetrics(decrypt_ms=1.0, infer_ms=2.0, encrypt_ms=3.0, attest_ms=4.0),
        model_sha256="ab" * 32, pcr0_hex="cd" * 48,
    )


def pair_verifies(world: World, job: str) -> bool:
    """What the client checks: the attestation found for the stored result binds its bytes."""
    ref = JobRef(tenant=TENANT, job_id=job)
    ciphertext = world.s3.get_object(Bucket=RESULTS, Key=ref.result_key)["Body"].read()
    document = world.s3.get_object(Bucket=RESULTS, Key=attestation_key_for_result(ref, ciphertext))["Body"].read()
    return bool(document == b"ATTESTS:" + hashlib.sha256(ciphertext).digest())


def duplicate(world: World, job: str) -> None:
    body = encode_work_message(encode_s3_notification([(INBOX, f"jobs/{TENANT}/{job}.ccc")], region=REGION,
                                                      time=datetime.now(UTC)))
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody=body)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class CommitOrder:
    """S3 proxy forcing the worst interleaving of two runs' writes: the run whose attestation was
    written first writes its result last. With one fixed key for each (the old layout) that left
    one run's result beside the other run's attestation: a torn pair, NOT VERIFIED for ever."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._attested: list[int] = []
        self._second_result_written = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_object(self, **kwargs: Any) -> Any:
        me = threading.get_ident()
        if kwargs["Key"].endswith(".att"):
            with self._lock:  # the order recorded is the order the writes happened in
                response = self._client.put_object(**kwargs)
                self._attested.append(me)
            return response
        if kwargs["Key"].endswith(".ccc"):
            wait_until(lambda: len(self._attested) == 2, 10, "both runs to write their attestations")
            if me == self._attested[0]:
                assert self._second_result_written.wait(10)
                return self._client.put_object(**kwargs)
            try:
                return self._client.put_object(**kwargs)
            finally:
                self._second_result_written.set()
        return self._client.put_object(**kwargs)


def test_two_concurrent_runs_of_one_job_never_leave_a_torn_result(world: World) -> None:
    """Without leases both duplicates run; the attestation is addressed by the result's digest and the
    result is written only if none exists, so the first committed pair stands and verifies."""
    both_running = threading.Barrier(2, timeout=10)

    def meet_then_reply(request: JobRequest) -> JobReply:
        both_running.wait()
        return unique_run_reply(request)

    world.enclave.behaviour = meet_then_reply
    world.upload(JOB_A)
    duplicate(world, JOB_A)
    agent = world.agent(s3=CommitOrder(world.s3))
    world.run(agent, messages=3)  # the S3 test event + the job twice
    assert len(world.enclave.requests) == 2
    assert agent.stats == {"ignored": 1, "done": 1, "already_done": 1}
    assert pair_verifies(world, JOB_A)
    assert world.queue_counts() == (0, 0)


@pytest.mark.parametrize("leases", [True, False], ids=["leases", "no-leases"])
def test_a_storm_of_duplicates_across_two_workers_ends_done_once_and_verified(world: World, leases: bool) -> None:
    jobs = [f"{i:032x}" for i in range(1, 7)]
    copies = 4

    def slow_reply(request: JobRequest) -> JobReply:
        time.sleep(0.05)  # long enough for duplicates to arrive while the job runs
        return unique_run_reply(request)

    world.enclave.behaviour = slow_reply
    for job in jobs:
        world.upload(job)
        for _ in range(copies - 1):
            duplicate(world, job)
    workers = [world.agent(leases=leases, lease_s=2.0), world.agent(leases=leases, lease_s=2.0)]
    with world.running(workers[0]), world.running(workers[1]):
        wait_until(lambda: world.queue_counts() == (0, 0) and all(world.result_exists(f"results/{TENANT}/{j}.ccc")
                                                                 for j in jobs), 30, "every job and duplicate")
    runs = Counter(request.job.job_id for request in world.enclave.requests)
    stats: Counter[str] = Counter()
    for agent in workers:
        stats.update(agent.stats)
    assert stats["done"] == len(jobs), stats  # every job done exactly once
    assert set(stats) <= {"ignored", "done", "already_done", "leased"}, stats  # no retry, failure or DLQ
    assert all(pair_verifies(world, job) for job in jobs)
    assert world.queue_counts(world.dlq_url) == (0, 0)
    if leases:
        assert runs == {job: 1 for job in jobs}  # claimed before it runs: one enclave pass per job
        assert all("lease_owner" not in (world.dynamodb.get_item(TableName=TABLE, Key={"job_id": {"S": job}})
                                         .get("Item") or {}) for job in jobs)  # released
    else:
        assert set(runs) == set(jobs) and all(n >= 1 for n in runs.values())


def test_a_dead_workers_lease_expires_and_the_job_then_runs_once(world: World) -> None:
    """A worker killed after claiming never releases: the next delivery waits for the lease to end."""
    ref = JobRef(tenant=TENANT, job_id=JOB_A)
    now = datetime.now(UTC)
    dead = world.leases().claim(ref, "killed-worker", now=now, until=now + timedelta(seconds=1))
    assert not isinstance(dead, LeaseHeld)
    world.enclave.behaviour = unique_run_reply
    world.upload(JOB_A)
    agent = world.agent(leases=True)
    world.run(agent, messages=3)  # test event, the job (leased: returned), the job again (runs)
    assert agent.stats == {"ignored": 1, "leased": 1, "done": 1}
    assert len(world.enclave.requests) == 1 and pair_verifies(world, JOB_A)


def test_a_stalled_worker_whose_lease_expired_cannot_replace_the_result(world: World) -> None:
    """The first run stalls past its lease mid-job; a duplicate claims the expired lease and commits;
    the stalled run then finishes and is refused by the conditional result write."""
    stalled = threading.Event()
    first: list[str] = []

    def stall_first(request: JobRequest) -> JobReply:
        if not first:
            first.append(request.request_id)
            assert stalled.wait(20)
        return unique_run_reply(request)

    world.enclave.behaviour = stall_first
    world.upload(JOB_A)
    agent = world.agent(leases=True, lease_s=1.0)
    with world.running(agent):
        wait_until(lambda: bool(first), 10, "the first run to start")
        duplicate(world, JOB_A)
        wait_until(lambda: world.result_exists(f"results/{TENANT}/{JOB_A}.ccc"), 15, "the duplicate's result")
        committed = world.s3.get_object(Bucket=RESULTS, Key=f"results/{TENANT}/{JOB_A}.ccc")["Body"].read()
        stalled.set()
        wait_until(lambda: world.queue_counts() == (0, 0) and agent.stats["already_done"] == 1, 15, "the stalled run")
    assert agent.stats == {"ignored": 1, "leased": 1, "done": 1, "already_done": 1}
    assert len(world.enclave.requests) == 2  # a lease that expires mid-job costs a second pass, never a torn pair
    assert world.s3.get_object(Bucket=RESULTS, Key=f"results/{TENANT}/{JOB_A}.ccc")["Body"].read() == committed
    assert pair_verifies(world, JOB_A)


def _s3_ops(world: World, key: str) -> list[str]:
    return [op for service, op, logged in world.log if service == "s3" and logged == key]


def test_a_job_reads_its_input_with_one_head_and_one_get(world: World) -> None:
    """The input is HEADed once, before the claim, then read once under the lease: no second HEAD."""
    ref = JobRef(TENANT, JOB_A)
    world.jobs().create(new_job(ref, datetime.now(UTC), ttl_days=30))
    world.upload(JOB_A)
    agent = world.agent(leases=True)
    world.run(agent, messages=2)  # the S3 test event, then the job
    assert agent.stats["done"] == 1
    assert _s3_ops(world, ref.inbox_key) == ["head_object", "get_object"]
    assert [r.ciphertext for r in world.enclave.requests] == [b"ESDK-CIPHERTEXT"]


class _ChangeInputAfterHead:
    """The S3 client of a worker, but the input is replaced (or deleted) right after its HEAD."""

    def __init__(self, world: World, replacement: bytes | None) -> None:
        self._world, self._replacement = world, replacement
        self._client = Recording(world.s3, "s3", world.log)

    def __getattr__(self, operation: str) -> Any:
        return getattr(self._client, operation)

    def head_object(self, **kwargs: Any) -> Any:
        answer = self._client.head_object(**kwargs)
        if kwargs["Bucket"] == INBOX:
            if self._replacement is None:
                self._world.s3.delete_object(Bucket=INBOX, Key=kwargs["Key"])
            else:
                self._world.s3.put_object(Bucket=INBOX, Key=kwargs["Key"], Body=self._replacement)
        return answer


def test_an_input_replaced_by_an_oversize_one_after_the_head_fails_as_too_large(world: World) -> None:
    world.upload(JOB_A)
    agent = world.agent(leases=True, s3=_ChangeInputAfterHead(world, b"x" * 101), max_ciphertext_bytes=100)
    world.run(agent, messages=2)
    assert agent.stats == {"ignored": 1, "failed": 1}
    record = json.loads(world.s3.get_object(Bucket=RESULTS, Key=JobRef(TENANT, JOB_A).failure_key)["Body"].read())
    assert record["code"] == "too_large"
    assert world.enclave.requests == []


def test_an_input_deleted_after_the_head_is_missing_not_an_error(world: World) -> None:
    """Gone between the HEAD and the GET: judged by the upload window like a HEAD that missed it."""
    ref = JobRef(TENANT, JOB_B)
    world.jobs().create(new_job(ref, datetime.now(UTC), ttl_days=30))
    world.upload(JOB_B)
    agent = world.agent(leases=True, s3=_ChangeInputAfterHead(world, None))
    world.run(agent, messages=2)
    assert agent.stats == {"ignored": 1, "waiting": 1}
    assert world.enclave.requests == [] and not world.result_exists(ref.failure_key)
    item = world.dynamodb.get_item(TableName=TABLE, Key={"job_id": {"S": JOB_B}})["Item"]
    assert "lease_owner" not in item  # released: the job waits for its upload, holding nothing


def test_a_message_redelivered_after_the_input_expired_ends_as_the_one_finished_job(world: World) -> None:
    """The inbox's lifecycle rule (or anything else) may delete a finished job's input: a late copy
    of its work message is then a no-op, never a failure and never a second run."""
    ref = JobRef(TENANT, JOB_A)
    world.jobs().create(new_job(ref, datetime.now(UTC) - timedelta(days=20), ttl_days=30))
    world.upload(JOB_A)
    agent = world.agent(leases=True)
    world.run(agent, messages=2)
    assert agent.stats["done"] == 1
    committed = world.s3.get_object(Bucket=RESULTS, Key=ref.result_key)["Body"].read()
    world.jobs().apply(JobEvent.done(ref, datetime.now(UTC)))
    world.s3.delete_object(Bucket=INBOX, Key=ref.inbox_key)  # expired
    late = encode_work_message(encode_s3_notification([(INBOX, ref.inbox_key)], region=REGION, time=datetime.now(UTC)))
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody=late)
    world.log.clear()
    agent = world.agent(leases=True)
    world.run(agent, messages=1)
    assert agent.stats == {"already_done": 1}
    assert world.queue_counts() == (0, 0)
    assert len(world.enclave.requests) == 1 and not world.result_exists(ref.failure_key)
    assert world.s3.get_object(Bucket=RESULTS, Key=ref.result_key)["Body"].read() == committed
    assert world.jobs().get(JOB_A).status is JobStatus.DONE
    assert _s3_ops(world, ref.inbox_key) == []  # the finished check comes first: the input is never looked at
