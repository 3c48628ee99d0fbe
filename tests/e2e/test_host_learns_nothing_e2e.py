"""The host replays a job 100 times and restarts the enclave: it learns nothing about the count.

Issue 12 §1, as the attacker did it, against a real local stack (real enclave process, simulated
NSM, attested KMS through the gateway). The test plays the host: it holds what every host holds
(the tenant's input ciphertext from the inbox, the parent's own credentials, the enclave socket),
replays one 5-cat job 100 times, kills the enclave (the stack restarts it, as a host would), and
asks for what used to be the differential-privacy release. Everything the host received is then
checked: no reply carries a count or anything per tenant; the old release request is refused
before and after the restart; timings are on the protocol's grid; and the host's view of the 100
replays is the same as its view of one run of a 0-cat job (ciphertext is opaque: only sizes
count, and they are the same). So the host's best estimate of the count is what it was before
the replays: nothing. The tenant, with its own key, decrypts the true counts (5 and 0).
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest

from ccc.client.crypto import decrypt_result, encrypt_stream, key_provider
from ccc.local.aws_config import botocore_session
from ccc.local.state import StatePaths
from ccc_core.identity import JobRef, new_job_id
from ccc_enclave.protocol.error_replies import ErrorReply
from ccc_enclave.protocol.framing import FRAME_HEADER
from ccc_enclave.protocol.health_messages import EnclaveStatus, HealthReply
from ccc_enclave.protocol.job_messages import Credentials, JobRequest, JobSpec, JobSuccess, KmsTarget
from ccc_enclave.protocol.messages import Message, encode_message
from ccc_enclave.protocol.resolution import TIMING_GRID_MS
from ccc_enclave.transport import Channel, TransportError, connect
from enclave_worker.parent.enclave_client import EnclaveUnavailable, SocketEnclaveClient

pytestmark = pytest.mark.slow
TENANT = "tenant-a"
REPLAYS = 100
# ESDK's signed suite ends each result with a DER ECDSA signature whose length varies by a few
# bytes at random, whatever the plaintext: sizes may differ by that much, and no more.
SIGNATURE_JITTER_BYTES = 8


class Host:
    """What the untrusted host holds: the parent's config (credentials, KMS target, enclave socket)."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        config = json.loads((StatePaths(stack.state_dir).run / "parent-1.json").read_text())
        self.uri = config["enclave"]["uri"]
        creds = config["aws"]["credentials"]
        self.credentials = Credentials(
            access_key_id=creds["access_key_id"], secret_access_key=creds["secret_access_key"]
        )
        self.kms = KmsTarget(region=config["kms"]["region"], endpoint_url=config["kms"]["endpoint_url"])
        self.enclave = SocketEnclaveClient(self.uri)
        self.received: list[Message] = []  # everything the enclave sent the host, but health
        self.statuses: list[EnclaveStatus] = []  # ... which arrives here

    def run(self, job: JobRef, ciphertext: bytes) -> JobSuccess:
        request = JobRequest(
            request_id=f"replay-{len(self.received)}",
            job=JobSpec(job_id=job.job_id, tenant=job.tenant),
            ciphertext=ciphertext,
            credentials=self.credentials,
            kms=self.kms,
        )
        for _ in range(50):  # the parent agent shares the enclave: back off while it is busy
            reply = self.enclave.run_job(request, timeout_s=120)
            self.received.append(reply)
            if isinstance(reply, JobSuccess):
                return reply
            assert reply.error.code == "busy", reply
            time.sleep(0.2)
        raise AssertionError("the enclave stayed busy")

    def health(self) -> EnclaveStatus:
        status = self.enclave.health(timeout_s=10)
        self.statuses.append(status)
        return status

    def ask_for_release(self) -> Message:
        """The request that used to return per-tenant noisy totals (built by hand: the type is gone)."""
        body = cbor2.dumps({"version": 1, "request_id": "dp-host", "kind": "privacy_release"})
        with connect(self.uri, timeout=5) as sock:
            sock.sendall(FRAME_HEADER.pack(len(body)) + body)
            reply = Channel(sock).receive(timeout=10)
        self.received.append(reply)
        return reply


def _seal(stack: Any, image: Path) -> tuple[JobRef, bytes]:
    """What the tenant uploads: the image under its key, bound to a fresh job of its own."""
    info = stack.info
    key_arn = getattr(info, "tenant_key_arns", {}).get(TENANT, info.key_arn)
    provider = key_provider(key_arn, botocore_session(info, TENANT))
    job = JobRef(tenant=TENANT, job_id=new_job_id())
    sealed = io.BytesIO()
    with image.open("rb") as source:
        encrypt_stream(source, sealed, provider=provider, context=job.input_context())
    return job, sealed.getvalue()


def _true_count(stack: Any, job: JobRef, reply: JobSuccess) -> int:
    """Only the tenant can do this: decrypt the result with its own key."""
    info = stack.info
    key_arn = getattr(info, "tenant_key_arns", {}).get(TENANT, info.key_arn)
    document = decrypt_result(
        reply.result_ciphertext, job, provider=key_provider(key_arn, botocore_session(info, TENANT))
    )
    return document.cats


def _restart_enclave(stack: Any, host: Host) -> None:
    """Kill the enclave process (the stack's supervisor starts it again) and wait until it answers."""
    pid = stack.refresh().pids["enclave-1"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = stack.refresh().pids.get("enclave-1")
        if current and current != pid:
            try:
                status = host.enclave.health(timeout_s=5)
            except (EnclaveUnavailable, TransportError):
                status = None
            if status is not None and status.jobs_served == 0:
                return
        time.sleep(0.5)
    raise AssertionError("the enclave did not come back")


def _host_view(reply: JobSuccess) -> tuple[Any, ...]:
    """What a reply tells a host that cannot decrypt: sizes, identities, and the (grid) timings."""
    timings = (reply.metrics.decrypt_ms, reply.metrics.infer_ms, reply.metrics.encrypt_ms, reply.metrics.attest_ms)
    assert all(t in TIMING_GRID_MS for t in timings), timings
    return (reply.model_sha256, reply.pcr0_hex)


def _no_count_or_tenant(message: Message) -> None:
    wire = cbor2.loads(encode_message(message))

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                assert "cat" not in k and "tenant" not in k and "release" not in k, (k, wire.get("kind"))
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str):
            assert TENANT not in value, (key, value)

    walk(wire)


def test_replays_and_a_restart_teach_the_host_nothing_about_the_count(stack, samples):
    five = next(p for p in samples if p.name.startswith("composite-5cats"))
    zero = next(p for p in samples if p.name.startswith("coffee-0cats"))
    host = Host(stack)
    job, ciphertext = _seal(stack, five)
    other_job, other_ciphertext = _seal(stack, zero)

    host.health()
    replies = [host.run(job, ciphertext) for _ in range(REPLAYS)]
    before_restart = host.ask_for_release()
    assert host.health().jobs_served >= REPLAYS
    _restart_enclave(stack, host)
    after_restart = host.ask_for_release()
    replies.append(host.run(job, ciphertext))
    baseline = host.run(other_job, other_ciphertext)  # one run of a 0-cat job: the host's prior
    host.health()

    # The tenant's truth (the host cannot compute this: it has no key to the results).
    assert _true_count(stack, job, replies[0]) == 5 and _true_count(stack, other_job, baseline) == 0

    # The old leak is closed: no release exists, before or after the restart.
    for refused in (before_restart, after_restart):
        assert isinstance(refused, ErrorReply) and refused.error.code == "bad_request", refused

    # Everything the host received: no count, no per-tenant field, nothing naming the tenant.
    for message in host.received:
        _no_count_or_tenant(message)
    for status in host.statuses:
        _no_count_or_tenant(HealthReply(request_id="h", status=status))
        assert status.metrics is not None and status.uptime_s.is_integer()
        assert all(t.max_ms == 0 or t.max_ms in TIMING_GRID_MS for t in status.metrics.stages.values())

    # 101 replays of the 5-cat job look exactly like one run of the 0-cat job: the same identities,
    # result and attestation sizes within the signatures' random jitter of each other.
    views = {_host_view(reply) for reply in [*replies, baseline]}
    assert len(views) == 1, views
    for size_of in (lambda r: len(r.result_ciphertext), lambda r: len(r.attestation_document)):
        sizes = [size_of(reply) for reply in [*replies, baseline]]
        assert max(sizes) - min(sizes) <= SIGNATURE_JITTER_BYTES, sorted(set(sizes))
