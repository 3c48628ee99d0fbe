"""Span and metric records as the processes write them (JSON Lines), for the report's unit tests.

A job's trace, in epoch nanoseconds from T0 (12:00:00 UTC): the client creates the job (20 ms),
encrypts and uploads (80 ms), the Lambdas handle the inbox event (100-130 ms), the job waits in
SQS until the parent's first attempt (400 ms) which is retried; the second attempt (1000-1300 ms)
runs the enclave (1050-1250: decrypt 20, infer 150, encrypt 20, attest 10) and the client's
result span ends at 1500 ms.
"""

from __future__ import annotations

from typing import Any

from ccc_core.telemetry import metric_registry as registry
from ccc_core.telemetry import names

T0 = 1_767_268_800 * 10**9  # 2026-01-01 12:00:00 UTC
MS = 10**6


def span(
    name: str,
    trace: str,
    start_ms: float,
    end_ms: float,
    *,
    service: str = "x",
    span_id: str = "",
    parent: str | None = None,
    status: str = "UNSET",
    **attributes: Any,
) -> dict[str, Any]:
    return {
        "kind": "span",
        "name": name,
        "trace_id": trace,
        "span_id": span_id or f"{name}-{start_ms}",
        "parent_span_id": parent,
        "start_ns": T0 + int(start_ms * MS),
        "end_ns": T0 + int(end_ms * MS),
        "duration_ms": end_ms - start_ms,
        "status": status,
        "service.name": service,
        "attributes": attributes,
    }


def job_trace(
    job: str,
    trace: str,
    *,
    shift_ms: float = 0.0,
    outcome: str = "done",
    code: str = "",
    retried: bool = True,
    client_status: str = "done",
    verified: bool | None = True,
    client_steps: bool = False,
) -> list[dict[str, Any]]:
    """One job's spans; shift_ms moves the whole job later, outcome/code set the final parent attempt."""
    s = shift_ms
    jid: dict[str, Any] = {names.ATTR_JOB_ID: job}
    submit_attrs: dict[str, Any] = {**jid, "ccc.create_ms": 20.0}
    spans = [
        span(names.SPAN_JOB_ROOT, trace, s + 20, s + 100, service="client", span_id=f"root-{job}", **jid),
        span(names.SPAN_CLIENT_SUBMIT, trace, s + 20, s + 100, service="client", parent=f"root-{job}", **submit_attrs),
        span(
            names.SPAN_FN_JOB_EVENTS, trace, s + 100, s + 130, service="lambdas", **jid, **{"ccc.object.kind": "inbox"}
        ),
    ]
    if retried:
        spans.append(
            span(
                names.SPAN_PARENT_JOB,
                trace,
                s + 400,
                s + 450,
                service="parent",
                status="ERROR",
                span_id=f"p1-{job}",
                **jid,
                **{"ccc.outcome": "retry", "ccc.code": "kms_unavailable"},
            )
        )
    final_status = "ERROR" if outcome == "failed" else "UNSET"
    spans.append(
        span(
            names.SPAN_PARENT_JOB,
            trace,
            s + 1000,
            s + 1300,
            service="parent",
            status=final_status,
            span_id=f"p2-{job}",
            **jid,
            **{"ccc.outcome": outcome, "ccc.code": code},
        )
    )
    spans.append(
        span(
            names.SPAN_ENCLAVE_JOB, trace, s + 1050, s + 1250, service="enclave", span_id=f"e-{job}", parent=f"p2-{job}"
        )
    )
    cursor = s + 1050
    for stage, ms in zip(names.ENCLAVE_STEP_SPANS, (20, 150, 20, 10), strict=True):
        spans.append(span(stage, trace, cursor, cursor + ms, service="enclave", parent=f"e-{job}"))
        cursor += ms
    result_attrs: dict[str, Any] = {"ccc.status": client_status}
    if verified is not None:
        result_attrs["ccc.verified"] = verified
    spans.append(span(names.SPAN_CLIENT_RESULT, trace, s + 100, s + 1500, service="client", **jid, **result_attrs))
    if client_steps:  # the client's child spans: encrypt 20-60, upload 60-100, fetch 1380-1420, verify 1420-1490
        for name, start, end in (
            (names.SPAN_CLIENT_ENCRYPT, 20, 60),
            (names.SPAN_CLIENT_UPLOAD, 60, 100),
            (names.SPAN_CLIENT_FETCH, 1380, 1420),
            (names.SPAN_CLIENT_VERIFY, 1420, 1490),
        ):
            spans.append(span(name, trace, s + start, s + end, service="client"))
    return spans


def gauge(name: str, second: float, value: float, service: str = "lambdas") -> dict[str, Any]:
    return {
        "kind": "metric",
        "name": name,
        "time_ns": T0 + int(second * 10**9),
        "value": value,
        "service.name": service,
        "attributes": {},
    }


def run_metrics() -> list[dict[str, Any]]:
    """Ten seconds of stack gauges: a queue that drains, a DLQ that gets one message, enclave health."""
    records = []
    for second in range(11):
        records.append(gauge(registry.METRIC_QUEUE_VISIBLE, second, max(0, 5 - second)))
        records.append(gauge(registry.METRIC_QUEUE_IN_FLIGHT, second, 1 if second < 6 else 0))
        records.append(gauge(registry.METRIC_DLQ_VISIBLE, second, 1 if second >= 7 else 0))
        records.append(gauge(registry.METRIC_FLEET_DESIRED, second, 1))
        records.append(gauge(registry.METRIC_FLEET_RUNNING, second, 1))
        records.append(gauge(registry.METRIC_ENCLAVE_CPU, second, 40.0 if second < 5 else 2.5, "parent"))
        records.append(gauge(registry.METRIC_ENCLAVE_IN_FLIGHT, second, 1 if second < 5 else 0, "parent"))
        records.append(gauge(registry.METRIC_ENCLAVE_MEMORY, second, 300 * 2**20, "parent"))
    return records
