"""The health channel: `health` (parent -> enclave) and `health_reply` (counters, identities, metrics).

Why a channel of its own: the parent polls only while the enclave answers, and exports what the
reply carries as metrics. It is metadata only (counters, timings, model and PCR0 identities),
never job content, and every measurement is on the protocol's coarse grid (`resolution`), so
health traffic cannot leak what the enclave counted, however often the host replays a job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, Field

from ccc_enclave.protocol.codec import Wire, WireMessage, WireModel
from ccc_enclave.protocol.errors import ProtocolError
from ccc_enclave.protocol.fields import (
    CoarseBytes,
    CoarseMs,
    CoarseSeconds,
    Count,
    Number,
    Pcr0Hex,
    RequestId,
    Sha256Hex,
    matching,
)

# Enclave pipeline stages whose timing aggregates the health reply carries (job_reply.metrics order).
# The enclave pipeline's steps, in order (not the deployment stages of ccc_common.domain.naming.STAGES).
PIPELINE_STEPS = ("decrypt", "infer", "encrypt", "attest")
MAX_CONCURRENCY = 4096
_MODEL_NAME_RE = re.compile(r"^[\x20-\x7e]{0,128}$")


class HealthRequest(WireMessage):
    """Is the enclave up, and how is it doing? (Takes no job slot: answered even when busy.)"""

    KIND = "health"

    request_id: RequestId


class StageTiming(WireModel):
    """Cumulative timing of one pipeline stage since boot (count, total and maximum milliseconds).

    The enclave sums the jobs' already coarse timings, so the total is a sum of grid values."""

    count: Count
    total_ms: Number
    max_ms: CoarseMs


def _every_stage(stages: Mapping[str, StageTiming]) -> Mapping[str, StageTiming]:
    """Exactly the pipeline stages, in pipeline order (so the encoding does not depend on the caller)."""
    if set(stages) != set(PIPELINE_STEPS):
        raise ProtocolError(f"must have exactly the stages {list(PIPELINE_STEPS)}")
    return {name: stages[name] for name in PIPELINE_STEPS}


class EnclaveMetrics(WireModel):
    """Resource use and pipeline counters of the enclave: metadata only, never job content.

    `cpu_s` is the server process's CPU time (user + system) since boot: the parent turns two
    readings into a utilisation. Memory comes from the enclave VM's /proc/meminfo (0 if unknown).
    """

    cpu_s: CoarseSeconds
    memory_total_bytes: CoarseBytes
    memory_available_bytes: CoarseBytes
    busy_refusals: Count
    attestations_ok: Annotated[Count, Wire(path=("attestation", "ok"))]
    attestations_failed: Annotated[Count, Wire(path=("attestation", "failed"))]
    stages: Annotated[Mapping[str, StageTiming], Field(max_length=len(PIPELINE_STEPS)), AfterValidator(_every_stage)]


class EnclaveStatus(WireModel):
    """Health metadata: counters and identities only, never job content."""

    uptime_s: CoarseSeconds
    jobs_served: Count
    jobs_failed: Count
    in_flight: Count
    concurrency: Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)]
    model_name: Annotated[str, matching(_MODEL_NAME_RE), Wire(path=("model", "name"))]
    model_sha256: Annotated[Sha256Hex, Wire(path=("model", "sha256"))]
    pcr0_hex: Annotated[Pcr0Hex, Wire(path=("pcr0",))]
    cpu_count: Count
    rss_bytes: CoarseBytes
    # Optional so that a parent can talk to an enclave of the release before (which omits it).
    metrics: Annotated[EnclaveMetrics | None, Wire(optional=True)] = None


class HealthReply(WireMessage):
    """The enclave's status, echoing the request id."""

    KIND = "health_reply"

    request_id: RequestId
    status: EnclaveStatus
