"""Every metric of the project, defined once: its OpenTelemetry name, its CloudWatch name, unit,
emitters and dimensions.

Why one registry: a metric crosses three vocabularies. The processes (parent agent, local stack)
emit OpenTelemetry instruments with dotted names (``ccc.job.latency_ms``) that `ccc report` reads;
on AWS the parent's EMF exporter (``ccc.telemetry.emf``) publishes some of them to CloudWatch under
CamelCase names (``JobLatencyMs``); the Lambdas publish CloudWatch names directly (Powertools EMF);
and the CDK dashboard and alarms read CloudWatch names. CloudWatch identifies a metric by namespace
+ name + the *exact* set of dimensions, so a renamed metric, a ``stage`` spelled lower-case or an
extra dimension silently leaves a graph empty or an alarm blind. Each metric is therefore one row
of ``METRICS``; the EMF mapping (``otel_to_cloudwatch``), the dashboard's names, the Lambdas'
allowed names (``emitted_by``) and the parent's instruments (``otel``) are all derived from it.

It lives in ccc_core because both the enclave distribution's side (the parent agent) and the Lambda
layer (which ships ccc_core) need it, and ccc_core imports nothing else from the repository.

The rule every CloudWatch emitter follows: each metric carries exactly ``{Stage: <stage>}``: no
metric is per tenant, and none is derived from image content (docs/threat-model.md). One name
means one thing, whoever publishes it, so copies from several emitters (e.g. ``JobsFailed`` from
``job_events`` and ``dead_letters``) add up in one series.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

NAMESPACE = "CCC"
STAGE_DIMENSION = "Stage"
# The OTel attribute each CloudWatch dimension beyond Stage is read from (Stage is the exporter's own).
# Empty: the per-tenant dimension went with the differentially private releases (docs/threat-model.md).
DIMENSION_ATTRIBUTES: dict[str, str] = {}


class Emitter(StrEnum):
    """Who publishes a metric to CloudWatch (the Lambdas by their ``functions/<name>`` package)."""

    PARENT = "parent"  # enclave_worker.parent, OTel metrics exported by ccc.telemetry.emf
    SCALER = "scaler"
    JOB_EVENTS = "job_events"
    JOBS_API = "jobs_api"
    DEAD_LETTERS = "dead_letters"


class Unit(StrEnum):
    """CloudWatch units (the spelling EMF and Powertools' MetricUnit use); ``otel`` is the UCUM code."""

    COUNT = "Count"
    MILLISECONDS = "Milliseconds"
    SECONDS = "Seconds"
    BYTES = "Bytes"
    PERCENT = "Percent"
    NONE = "None"

    @property
    def otel(self) -> str:
        return _UCUM[self]


_UCUM = {
    Unit.COUNT: "1",
    Unit.MILLISECONDS: "ms",
    Unit.SECONDS: "s",
    Unit.BYTES: "By",
    Unit.PERCENT: "%",
    Unit.NONE: "1",
}


# --- OpenTelemetry names (what the processes emit and `ccc report` reads) ----------------------------
# Queue and fleet (local stack sampler; on AWS the SQS / Auto Scaling metrics).
METRIC_QUEUE_VISIBLE = "ccc.queue.visible"
METRIC_QUEUE_IN_FLIGHT = "ccc.queue.in_flight"
METRIC_DLQ_VISIBLE = "ccc.dlq.visible"
METRIC_FLEET_DESIRED = "ccc.fleet.desired"
METRIC_FLEET_RUNNING = "ccc.fleet.running"
# Parent agent, per job.
METRIC_JOB_LATENCY_MS = "ccc.job.latency_ms"
METRIC_JOBS = "ccc.jobs"  # attribute ccc.outcome (done, failed, retry, ...)
METRIC_JOBS_FAILED = "ccc.jobs.failed"  # permanent failures (failure record written)
METRIC_KMS_UNAVAILABLE = "ccc.local.kms.unavailable"  # jobs that met KMS throttling / 5xx / unreachable
METRIC_ENCLAVE_INFER_MS = "ccc.enclave.infer_ms"
METRIC_ENCLAVE_CRYPTO_MS = "ccc.enclave.crypto_ms"  # attribute ccc.stage = decrypt | encrypt | attest
# Enclave health (polled by the parent over the health channel; metadata only).
METRIC_ENCLAVE_UP = "ccc.enclave.up"
METRIC_ENCLAVE_CPU = "ccc.enclave.cpu_percent"
METRIC_ENCLAVE_MEMORY = "ccc.enclave.memory_bytes"  # resident set of the enclave server
METRIC_ENCLAVE_MEMORY_AVAILABLE = "ccc.enclave.memory_available_bytes"  # of the enclave VM
METRIC_ENCLAVE_IN_FLIGHT = "ccc.enclave.in_flight"
METRIC_ENCLAVE_BUSY = "ccc.enclave.busy_refusals"
METRIC_ENCLAVE_STAGE_MEAN_MS = "ccc.enclave.stage_mean_ms"  # attribute ccc.stage; mean since enclave boot
METRIC_ATTESTATIONS = "ccc.attestation.ok"
METRIC_ATTESTATION_FAILURES = "ccc.attestation.failures"

# --- CloudWatch names (namespace CCC; the dashboard, the alarms and the Lambdas use these) -----------
# parent agent (per job, enclave health)
JOB_LATENCY_MS = "JobLatencyMs"
INFERENCE_MS = "InferenceMs"
ATTESTATION_FAILURES = "AttestationFailures"
KMS_UNAVAILABLE = "KmsUnavailable"
ENCLAVE_UP = "EnclaveUp"
ENCLAVE_CPU_PERCENT = "EnclaveCpuPercent"
ENCLAVE_MEMORY_BYTES = "EnclaveMemoryBytes"
ENCLAVE_IN_FLIGHT = "EnclaveInFlight"
# jobs table transitions (job_events, dead_letters)
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
# jobs API
JOBS_CREATED = "JobsCreated"
API_FORBIDDEN = "ApiForbidden"
# scaler (what it saw and decided, every minute)
BACKLOG = "Backlog"
IN_FLIGHT = "InFlight"
BACKLOG_PER_INSTANCE = "BacklogPerInstance"
DESIRED_CAPACITY = "DesiredCapacity"
IN_SERVICE_INSTANCES = "InServiceInstances"


@dataclass(frozen=True)
class MetricSpec:
    """One metric. ``otel`` is None for a metric only a Lambda publishes (straight to CloudWatch);
    ``cloudwatch`` is None for one that stays in OpenTelemetry (local report, JSON Lines), and then
    it has no emitters: ``emitters`` are who publishes it *to CloudWatch*."""

    otel: str | None
    cloudwatch: str | None
    unit: Unit
    description: str
    emitters: frozenset[Emitter] = frozenset()
    dimensions: tuple[str, ...] = (STAGE_DIMENSION,)

    def __post_init__(self) -> None:
        if self.otel is None and self.cloudwatch is None:
            raise ValueError("a metric needs an OpenTelemetry or a CloudWatch name")
        if (self.cloudwatch is None) != (not self.emitters):
            raise ValueError(f"{self.name}: a CloudWatch metric needs emitters, and only a CloudWatch metric has them")

    @property
    def name(self) -> str:
        """The CloudWatch name when it has one (the registry's key), else the OpenTelemetry name."""
        return self.cloudwatch or str(self.otel)


def _metric(
    description: str,
    unit: Unit,
    *,
    otel: str | None = None,
    cloudwatch: str | None = None,
    emitters: Iterable[Emitter] = (),
    dimensions: tuple[str, ...] = (STAGE_DIMENSION,),
) -> MetricSpec:
    return MetricSpec(otel, cloudwatch, unit, description, frozenset(emitters), dimensions)


_P, _JE, _DL, _API, _S = Emitter.PARENT, Emitter.JOB_EVENTS, Emitter.DEAD_LETTERS, Emitter.JOBS_API, Emitter.SCALER
_C, _MS, _BY = Unit.COUNT, Unit.MILLISECONDS, Unit.BYTES

METRICS: tuple[MetricSpec, ...] = (
    # --- local stack sampler (on AWS: SQS's and Auto Scaling's own metrics) ---
    _metric("local: visible messages in the work queue", _C, otel=METRIC_QUEUE_VISIBLE),
    _metric("local: messages being processed", _C, otel=METRIC_QUEUE_IN_FLIGHT),
    _metric("local: visible messages in the dead-letter queue", _C, otel=METRIC_DLQ_VISIBLE),
    _metric("local: desired capacity the fleet supervisor follows", _C, otel=METRIC_FLEET_DESIRED),
    _metric("local: workers serving", _C, otel=METRIC_FLEET_RUNNING),
    # --- parent agent, per job ---
    _metric("parent: inbox GET -> result PUT, per job", _MS,
            otel=METRIC_JOB_LATENCY_MS, cloudwatch=JOB_LATENCY_MS, emitters=[_P]),
    _metric("parent: jobs handled, by outcome", _C, otel=METRIC_JOBS),
    _metric("parent: jobs that failed for good (failure record); not published: JobsFailed comes from "
            "the jobs table, where each failed job appears once", _C, otel=METRIC_JOBS_FAILED),
    _metric("parent: jobs that met KMS throttling, a KMS 5xx or an unreachable KMS endpoint (retried later)", _C,
            otel=METRIC_KMS_UNAVAILABLE, cloudwatch=KMS_UNAVAILABLE, emitters=[_P]),
    _metric("enclave model time, per job (from the job reply)", _MS,
            otel=METRIC_ENCLAVE_INFER_MS, cloudwatch=INFERENCE_MS, emitters=[_P]),
    _metric("enclave decrypt / encrypt / attest time, per job (attribute ccc.stage)", _MS,
            otel=METRIC_ENCLAVE_CRYPTO_MS),
    # --- enclave health (the parent polls the health channel) ---
    _metric("1 when the enclave answered the last health poll, else 0", Unit.NONE,
            otel=METRIC_ENCLAVE_UP, cloudwatch=ENCLAVE_UP, emitters=[_P]),
    _metric("enclave server CPU over the last health interval", Unit.PERCENT,
            otel=METRIC_ENCLAVE_CPU, cloudwatch=ENCLAVE_CPU_PERCENT, emitters=[_P]),
    _metric("resident set of the enclave server", _BY,
            otel=METRIC_ENCLAVE_MEMORY, cloudwatch=ENCLAVE_MEMORY_BYTES, emitters=[_P]),
    _metric("memory available in the enclave VM", _BY, otel=METRIC_ENCLAVE_MEMORY_AVAILABLE),
    _metric("jobs inside the enclave at the last health poll", _C,
            otel=METRIC_ENCLAVE_IN_FLIGHT, cloudwatch=ENCLAVE_IN_FLIGHT, emitters=[_P]),
    _metric("jobs the enclave refused because it was busy", _C, otel=METRIC_ENCLAVE_BUSY),
    _metric("mean time per enclave stage since boot (attribute ccc.stage)", _MS, otel=METRIC_ENCLAVE_STAGE_MEAN_MS),
    _metric("results the enclave attested", _C, otel=METRIC_ATTESTATIONS),
    _metric("jobs failing with attestation_failed (enclave health counter)", _C,
            otel=METRIC_ATTESTATION_FAILURES, cloudwatch=ATTESTATION_FAILURES, emitters=[_P]),
    # --- Lambdas: jobs table transitions ---
    _metric("jobs table: inbox object seen, job queued", _C, cloudwatch=JOBS_QUEUED, emitters=[_JE]),
    _metric("jobs table: result seen, job done", _C, cloudwatch=JOBS_DONE, emitters=[_JE]),
    _metric("jobs table: job moved to failed, by a failure record (job_events) or from the DLQ (dead_letters); "
            "each failed job counted once", _C, cloudwatch=JOBS_FAILED, emitters=[_JE, _DL]),
    _metric("job events older than the job's state (ignored)", _C, cloudwatch=STALE_JOB_EVENTS, emitters=[_JE]),
    _metric("job events the table refused (unknown job, tenant mismatch, ...)", _C,
            cloudwatch=REFUSED_JOB_EVENTS, emitters=[_JE, _DL]),
    _metric("objects that are not job inputs/results", _C, cloudwatch=IGNORED_JOB_EVENTS, emitters=[_JE]),
    _metric("S3 events that do not parse", _C, cloudwatch=MALFORMED_JOB_EVENTS, emitters=[_JE]),
    _metric("job_events could not invoke the scaler", _C, cloudwatch=SCALER_WAKE_ERRORS, emitters=[_JE]),
    _metric("DLQ messages handled", _C, cloudwatch=DEAD_LETTERS, emitters=[_DL]),
    _metric("DLQ messages naming no job (archived only)", _C, cloudwatch=DEAD_LETTERS_UNPARSABLE, emitters=[_DL]),
    # --- Lambdas: jobs API ---
    _metric("jobs API: job created", _C, cloudwatch=JOBS_CREATED, emitters=[_API]),
    _metric("jobs API: caller maps to no tenant", _C, cloudwatch=API_FORBIDDEN, emitters=[_API]),
    # --- Lambdas: scaler ---
    _metric("scaler: visible messages (or the wake-up hint)", _C, cloudwatch=BACKLOG, emitters=[_S]),
    _metric("scaler: messages being processed", _C, cloudwatch=IN_FLIGHT, emitters=[_S]),
    _metric("scaler: demand per in-service instance", _C, cloudwatch=BACKLOG_PER_INSTANCE, emitters=[_S]),
    _metric("scaler: desired capacity it set", _C, cloudwatch=DESIRED_CAPACITY, emitters=[_S]),
    _metric("scaler: in-service instances it saw", _C, cloudwatch=IN_SERVICE_INSTANCES, emitters=[_S]),
)

# CloudWatch name -> metric: what the dashboard, the alarms and the Lambdas may use.
REGISTRY: dict[str, MetricSpec] = {m.cloudwatch: m for m in METRICS if m.cloudwatch is not None}
# OpenTelemetry name -> metric: what the processes may emit.
OTEL: dict[str, MetricSpec] = {m.otel: m for m in METRICS if m.otel is not None}


def spec(name: str) -> MetricSpec:
    """The CloudWatch metric ``name``; KeyError names it when a caller uses an unregistered one."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not in ccc_core.telemetry.metric_registry.REGISTRY") from None


def otel(name: str) -> MetricSpec:
    """The OpenTelemetry metric ``name`` (its unit and description for the instrument)."""
    try:
        return OTEL[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not in ccc_core.telemetry.metric_registry.OTEL") from None


def emitted_by(emitter: Emitter) -> frozenset[str]:
    """The CloudWatch names an emitter may publish (tests hold every emitter to this list)."""
    return frozenset(name for name, metric in REGISTRY.items() if emitter in metric.emitters)


def otel_to_cloudwatch(emitter: Emitter) -> dict[str, str]:
    """OTel name -> CloudWatch name of what ``emitter`` exports from OpenTelemetry (the EMF mapping)."""
    return {
        m.otel: m.cloudwatch
        for m in METRICS
        if m.otel is not None and m.cloudwatch is not None and emitter in m.emitters
    }
