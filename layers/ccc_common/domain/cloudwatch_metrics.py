"""The CloudWatch metric contract: namespace, dimension names, metric names and who emits each.

Why one module: the dashboard and alarms (``cdk/observability.py``) read metrics that three kinds
of emitters publish — the parent agent (OTel -> EMF via the CloudWatch agent, mapping in
``ccc.telemetry.emf``), and the Lambdas (Powertools EMF on stdout). CloudWatch identifies a metric
by namespace + name + the *exact* set of dimensions, so a renamed metric, a ``stage`` spelled
lower-case or an extra ``service`` dimension silently leaves a graph empty or an alarm blind.
Every emitter and the CDK import the names from here, and ``tests/infra`` checks that everything
the dashboard reads is in ``REGISTRY`` with at least one emitter.

The rule every emitter follows: each metric carries exactly ``{Stage: <stage>}`` (the DP releases
add ``Tenant``). One name means one thing, whoever publishes it, so copies from several emitters
(e.g. ``JobsFailed`` from ``job_events`` and ``dead_letters``) add up in one series.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ccc_common.domain.naming import METRICS_NAMESPACE

NAMESPACE = METRICS_NAMESPACE
STAGE_DIMENSION = "Stage"
TENANT_DIMENSION = "Tenant"  # only on the differentially private releases


class Emitter(StrEnum):
    PARENT = "parent"  # enclave_worker.parent, OTel metrics exported by ccc.telemetry.emf
    SCALER = "scaler"
    JOB_EVENTS = "job_events"
    JOBS_API = "jobs_api"
    DEAD_LETTERS = "dead_letters"


class Unit(StrEnum):
    """CloudWatch units (the spelling EMF and Powertools' MetricUnit use)."""

    COUNT = "Count"
    MILLISECONDS = "Milliseconds"
    BYTES = "Bytes"
    PERCENT = "Percent"
    NONE = "None"


# --- parent agent (per job, enclave health, DP releases) -------------------------------------
JOB_LATENCY_MS = "JobLatencyMs"
INFERENCE_MS = "InferenceMs"
ATTESTATION_FAILURES = "AttestationFailures"
KMS_UNAVAILABLE = "KmsUnavailable"
ENCLAVE_UP = "EnclaveUp"
ENCLAVE_CPU_PERCENT = "EnclaveCpuPercent"
ENCLAVE_MEMORY_BYTES = "EnclaveMemoryBytes"
ENCLAVE_IN_FLIGHT = "EnclaveInFlight"
DP_CATS_PER_DAY = "DpCatsPerDay"
DP_UPLOADS_PER_DAY = "DpUploadsPerDay"
# --- jobs table transitions (job_events, dead_letters) -----------------------------------------
JOBS_QUEUED = "JobsQueued"
JOBS_DONE = "JobsDone"
JOBS_FAILED = "JobsFailed"
STALE_JOB_EVENTS = "StaleJobEvents"
REFUSED_JOB_EVENTS = "RefusedJobEvents"
IGNORED_JOB_EVENTS = "IgnoredJobEvents"
MALFORMED_JOB_EVENTS = "MalformedJobEvents"
SCALER_WAKE_ERRORS = "ScalerWakeErrors"
DEAD_LETTERS = "DeadLetters"
DEAD_LETTERS_UNPARSABLE = "DeadLettersUnparsable"
# --- jobs API -------------------------------------------------------------------------------
JOBS_CREATED = "JobsCreated"
API_FORBIDDEN = "ApiForbidden"
# --- scaler (what it saw and decided, every minute) -------------------------------------------
BACKLOG = "Backlog"
IN_FLIGHT = "InFlight"
BACKLOG_PER_INSTANCE = "BacklogPerInstance"
DESIRED_CAPACITY = "DesiredCapacity"
IN_SERVICE_INSTANCES = "InServiceInstances"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: Unit
    emitters: frozenset[Emitter]
    description: str
    dimensions: tuple[str, ...] = (STAGE_DIMENSION,)


def _spec(
    name: str, unit: Unit, description: str, *emitters: Emitter, dimensions: tuple[str, ...] = (STAGE_DIMENSION,)
) -> MetricSpec:
    return MetricSpec(name, unit, frozenset(emitters), description, dimensions)


_P, _JE, _DL, _API, _S = Emitter.PARENT, Emitter.JOB_EVENTS, Emitter.DEAD_LETTERS, Emitter.JOBS_API, Emitter.SCALER
_C, _MS = Unit.COUNT, Unit.MILLISECONDS

REGISTRY: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        _spec(JOB_LATENCY_MS, _MS, "parent: inbox GET -> result PUT, per job", _P),
        _spec(INFERENCE_MS, _MS, "enclave model time, per job (from the job reply)", _P),
        _spec(ATTESTATION_FAILURES, _C, "jobs failing with attestation_failed (enclave health counter)", _P),
        _spec(
            KMS_UNAVAILABLE,
            _C,
            "jobs that met KMS throttling, a KMS 5xx or an unreachable KMS endpoint (retried later)",
            _P,
        ),
        _spec(ENCLAVE_UP, Unit.NONE, "1 when the enclave answered the last health poll, else 0", _P),
        _spec(ENCLAVE_CPU_PERCENT, Unit.PERCENT, "enclave server CPU over the last health interval", _P),
        _spec(ENCLAVE_MEMORY_BYTES, Unit.BYTES, "resident set of the enclave server", _P),
        _spec(ENCLAVE_IN_FLIGHT, _C, "jobs inside the enclave at the last health poll", _P),
        _spec(
            DP_CATS_PER_DAY,
            _C,
            "differentially private cats per tenant-day (noisy by design)",
            _P,
            dimensions=(STAGE_DIMENSION, TENANT_DIMENSION),
        ),
        _spec(
            DP_UPLOADS_PER_DAY,
            _C,
            "differentially private uploads per tenant-day (noisy by design)",
            _P,
            dimensions=(STAGE_DIMENSION, TENANT_DIMENSION),
        ),
        _spec(JOBS_QUEUED, _C, "jobs table: inbox object seen, job queued", _JE),
        _spec(JOBS_DONE, _C, "jobs table: result seen, job done", _JE),
        _spec(
            JOBS_FAILED,
            _C,
            "jobs table: job moved to failed, by a failure record (job_events) or from the DLQ (dead_letters); "
            "each failed job counted once",
            _JE,
            _DL,
        ),
        _spec(STALE_JOB_EVENTS, _C, "job events older than the job's state (ignored)", _JE),
        _spec(REFUSED_JOB_EVENTS, _C, "job events the table refused (unknown job, tenant mismatch, ...)", _JE, _DL),
        _spec(IGNORED_JOB_EVENTS, _C, "objects that are not job inputs/results", _JE),
        _spec(MALFORMED_JOB_EVENTS, _C, "S3 events that do not parse", _JE),
        _spec(SCALER_WAKE_ERRORS, _C, "job_events could not invoke the scaler", _JE),
        _spec(DEAD_LETTERS, _C, "DLQ messages handled", _DL),
        _spec(DEAD_LETTERS_UNPARSABLE, _C, "DLQ messages naming no job (archived only)", _DL),
        _spec(JOBS_CREATED, _C, "jobs API: job created", _API),
        _spec(API_FORBIDDEN, _C, "jobs API: caller maps to no tenant", _API),
        _spec(BACKLOG, _C, "scaler: visible messages (or the wake-up hint)", _S),
        _spec(IN_FLIGHT, _C, "scaler: messages being processed", _S),
        _spec(BACKLOG_PER_INSTANCE, _C, "scaler: demand per in-service instance", _S),
        _spec(DESIRED_CAPACITY, _C, "scaler: desired capacity it set", _S),
        _spec(IN_SERVICE_INSTANCES, _C, "scaler: in-service instances it saw", _S),
    )
}


def emitted_by(emitter: Emitter) -> frozenset[str]:
    """The metric names an emitter may publish (tests hold every emitter to this list)."""
    return frozenset(name for name, spec in REGISTRY.items() if emitter in spec.emitters)


def spec(name: str) -> MetricSpec:
    """The registered metric ``name``; KeyError names it when a caller uses an unregistered one."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not in ccc_common.domain.cloudwatch_metrics.REGISTRY") from None
