"""One job's story from its spans: status, failure code, latencies, stages and its waterfall.

Why from span timestamps: the client's end-to-end latency and the parent's job latency differ by
everything between them (creating the job, encrypting, uploading, the S3 event and the queue, the
client noticing the result). Every process writes epoch-nanosecond start/end times for the spans
of one trace (the job's deterministic trace id), so the gaps between them *are* those waits.
Nothing here reads content: ids, outcomes, codes and durations only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ccc.report.svg import Segment
from ccc_core.telemetry import names

ATTR_OUTCOME = "ccc.outcome"
ATTR_CODE = "ccc.code"
ATTR_CLIENT_STATUS = "ccc.status"
ATTR_VERIFIED = "ccc.verified"
ATTR_CREATE_MS = "ccc.create_ms"
ATTR_OBJECT_KIND = "ccc.object.kind"
STAGE_LABELS = {
    names.SPAN_ENCLAVE_DECRYPT: "decrypt",
    names.SPAN_ENCLAVE_INFER: "infer",
    names.SPAN_ENCLAVE_ENCRYPT: "encrypt",
    names.SPAN_ENCLAVE_ATTEST: "attest",
}
# Parent outcomes that end a job (the others mean "another attempt follows").
FINAL_OUTCOMES = ("done", "failed", "already_done")

Span = Mapping[str, Any]


def _attrs(span: Span) -> Mapping[str, Any]:
    attributes = span.get("attributes")
    return attributes if isinstance(attributes, Mapping) else {}


def _timed(span: Span) -> bool:
    start, end = span.get("start_ns"), span.get("end_ns")
    return isinstance(start, int) and isinstance(end, int) and end >= start


def _ms(start_ns: int, end_ns: int) -> float:
    return (end_ns - start_ns) / 1e6


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class JobView:
    """What the report shows per job."""

    job_id: str
    trace_id: str
    status: str = "unknown"  # done | failed | pending | unknown (no final record in this run)
    code: str = ""  # the failure code (or the last retry's code)
    attempts: int = 0  # parent attempts (spans); > 1 means retries
    verified: bool | None = None
    started_ns: int | None = None
    end_to_end_ms: float | None = None  # client: job creation (or submit) to the result's end
    parent_ms: float | None = None  # the final parent attempt: inbox GET to result PUT
    stages_ms: dict[str, float] = field(default_factory=dict)  # enclave decrypt/infer/encrypt/attest
    segments: list[Segment] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def status_text(self) -> str:
        return f"{self.status} ({self.code})" if self.code and self.status != "done" else self.status


def group_by_trace(spans: Iterable[Span]) -> dict[str, list[Span]]:
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        trace_id = span.get("trace_id")
        if isinstance(trace_id, str) and _timed(span):
            by_trace[trace_id].append(span)
    return by_trace


def build_jobs(spans: Iterable[Span]) -> list[JobView]:
    """One JobView per trace that names a job, in order of the job's start."""
    jobs = []
    for trace_id, trace in group_by_trace(spans).items():
        job_id = next(
            (str(_attrs(s)[names.ATTR_JOB_ID]) for s in trace if isinstance(_attrs(s).get(names.ATTR_JOB_ID), str)),
            None,
        )
        if job_id is not None:
            jobs.append(job_view(job_id, trace_id, trace))
    return sorted(jobs, key=lambda j: (j.started_ns or 0, j.job_id))


def _named(trace: Sequence[Span], name: str) -> list[Span]:
    return sorted((s for s in trace if s.get("name") == name), key=lambda s: (s["start_ns"], s["end_ns"]))


def job_view(job_id: str, trace_id: str, trace: Sequence[Span]) -> JobView:
    view = JobView(job_id=job_id, trace_id=trace_id)
    roots = _named(trace, names.SPAN_JOB_ROOT)
    submits = _named(trace, names.SPAN_CLIENT_SUBMIT)
    results = _named(trace, names.SPAN_CLIENT_RESULT)
    parents = _named(trace, names.SPAN_PARENT_JOB)
    view.attempts = len(parents)
    _status(view, roots, parents, results)
    starts = [s["start_ns"] for s in trace]
    view.started_ns = min(starts)
    final = _final_parent(parents)
    if final is not None:
        view.parent_ms = _ms(final["start_ns"], final["end_ns"])
        enclave = _enclave_job(trace, final)
        if enclave is not None:
            for stage in _stages(trace, enclave):
                view.stages_ms[STAGE_LABELS[stage["name"]]] = _ms(stage["start_ns"], stage["end_ns"])
    begin = _job_begin(roots, submits)
    if begin is not None and results:
        view.end_to_end_ms = _ms(begin, results[-1]["end_ns"])
    view.segments = _segments(trace, roots, submits, results, parents, final)
    return view


def _status(view: JobView, roots: list[Span], parents: list[Span], results: list[Span]) -> None:
    outcomes = [(str(_attrs(p).get(ATTR_OUTCOME, "")), str(_attrs(p).get(ATTR_CODE, "") or "")) for p in parents]
    final = [(o, c) for o, c in outcomes if o in FINAL_OUTCOMES]
    if final:
        outcome, code = final[-1]
        view.status = "failed" if outcome == "failed" else "done"
        view.code = code
    elif outcomes:
        view.status, view.code = "pending", next((c for _, c in reversed(outcomes) if c), "")
    client = _attrs(results[-1]) if results else {}
    client_status = client.get(ATTR_CLIENT_STATUS)
    if client_status in ("done", "failed", "pending"):
        view.status = str(client_status)
    if isinstance(client.get(ATTR_VERIFIED), bool):
        view.verified = bool(client[ATTR_VERIFIED])
        if view.verified is False and view.status == "done":
            view.status, view.code = "failed", view.code or "not verified"
    if roots and roots[-1].get("status") == "ERROR" and view.status == "done":
        view.status = "failed"


def _final_parent(parents: list[Span]) -> Span | None:
    """The attempt that ended the job (else the last attempt)."""
    ending = [p for p in parents if _attrs(p).get(ATTR_OUTCOME) in FINAL_OUTCOMES]
    chosen = ending or parents
    return chosen[-1] if chosen else None


def _enclave_job(trace: Sequence[Span], parent: Span) -> Span | None:
    """The enclave job span under this parent attempt (by parent span id, else inside its time)."""
    enclaves = _named(trace, names.SPAN_ENCLAVE_JOB)
    children = [e for e in enclaves if e.get("parent_span_id") == parent.get("span_id")]
    inside = [e for e in enclaves if parent["start_ns"] <= e["start_ns"] <= parent["end_ns"]]
    chosen = children or inside
    return chosen[-1] if chosen else None


def _stages(trace: Sequence[Span], enclave: Span) -> list[Span]:
    stages = [s for s in trace if s.get("name") in STAGE_LABELS and s.get("parent_span_id") == enclave.get("span_id")]
    return sorted(stages, key=lambda s: s["start_ns"])


def _job_begin(roots: list[Span], submits: list[Span]) -> int | None:
    """When the user's wait began: the submit span minus the job creation it records, or the root if earlier."""
    begins = [int(r["start_ns"]) for r in roots[:1]]
    if submits:
        create_ms = _number(_attrs(submits[0]).get(ATTR_CREATE_MS)) or 0.0
        begins.append(int(submits[0]["start_ns"] - create_ms * 1e6))
    return min(begins) if begins else None


def _segments(
    trace: Sequence[Span],
    roots: list[Span],
    submits: list[Span],
    results: list[Span],
    parents: list[Span],
    final: Span | None,
) -> list[Segment]:
    """The waterfall: consecutive intervals from the job's start to the client's verified result."""
    begin = _job_begin(roots, submits)
    if begin is None:
        begin = min(s["start_ns"] for s in trace)
    rows: list[Segment] = []

    def add(label: str, start_ns: int, end_ns: int, component: str) -> None:
        if end_ns >= start_ns:
            rows.append(Segment(label, _ms(begin, start_ns), _ms(start_ns, end_ns), component))

    submit = submits[0] if submits else None
    if submit is not None:
        add("client: create job", begin, submit["start_ns"], "client")
        encrypts = [e for e in _named(trace, names.SPAN_CLIENT_ENCRYPT) if submit["start_ns"] <= e["start_ns"]]
        if encrypts and encrypts[0]["end_ns"] <= submit["end_ns"]:
            add("client: encrypt", submit["start_ns"], encrypts[0]["end_ns"], "client")
            add("client: upload", encrypts[0]["end_ns"], submit["end_ns"], "client")
        else:
            add("client: encrypt + upload", submit["start_ns"], submit["end_ns"], "client")
    if final is not None:
        first = parents[0]
        queued_from = submit["end_ns"] if submit is not None else None
        inbox = _inbox_event(trace, first)
        if inbox is not None:
            if queued_from is not None:
                add("S3 event delivery", queued_from, inbox["start_ns"], "queue")
            add("Lambda job_events (inbox)", inbox["start_ns"], inbox["end_ns"], "queue")
            queued_from = inbox["end_ns"]
        if queued_from is not None:
            add("SQS queue wait", queued_from, first["start_ns"], "queue")
        if first is not final:
            add(f"earlier attempts ({len(parents) - 1})", first["start_ns"], final["start_ns"], "retry")
        enclave = _enclave_job(trace, final)
        if enclave is not None:
            add("parent: fetch input, lease", final["start_ns"], enclave["start_ns"], "parent")
            for stage in _stages(trace, enclave):
                add(f"enclave: {STAGE_LABELS[stage['name']]}", stage["start_ns"], stage["end_ns"], "enclave")
            add("parent: store result or failure", enclave["end_ns"], final["end_ns"], "parent")
        else:
            add("parent job", final["start_ns"], final["end_ns"], "parent")
        if results:
            _result_rows(add, trace, final["end_ns"], results[-1])
    return rows


def _inbox_event(trace: Sequence[Span], first_parent: Span) -> Span | None:
    """The Lambdas' handling of the inbox object's S3 event (it queues the job), if traced before the parent."""
    events = [
        s
        for s in _named(trace, names.SPAN_FN_JOB_EVENTS)
        if _attrs(s).get(ATTR_OBJECT_KIND) == "inbox" and s["end_ns"] <= first_parent["start_ns"]
    ]
    return events[0] if events else None


def _result_rows(add: Any, trace: Sequence[Span], parent_end_ns: int, result: Span) -> None:
    """After the parent wrote the result: the client notices it (polling), fetches and verifies it."""
    end = int(result["end_ns"])
    inside = [s for s in trace if result["start_ns"] <= s["start_ns"] and s["end_ns"] <= end]
    fetches = [s for s in inside if s.get("name") == names.SPAN_CLIENT_FETCH and s["start_ns"] >= parent_end_ns]
    verifies = [s for s in inside if s.get("name") == names.SPAN_CLIENT_VERIFY and s["start_ns"] >= parent_end_ns]
    if not fetches or not verifies:
        add("client: notice, fetch + verify", parent_end_ns, end, "client")
        return
    fetch, verify = min(fetches, key=lambda s: s["start_ns"]), max(verifies, key=lambda s: s["start_ns"])
    add("client: notice (polling)", parent_end_ns, fetch["start_ns"], "client")
    add("client: fetch result", fetch["start_ns"], verify["start_ns"], "client")
    add("client: verify + decrypt", verify["start_ns"], end, "client")


def median_job(jobs: Sequence[JobView]) -> JobView | None:
    """The done job with the median end-to-end latency (else the median parent latency)."""
    timed = sorted(
        (j for j in jobs if j.status == "done" and j.end_to_end_ms is not None), key=lambda j: j.end_to_end_ms or 0.0
    )
    if not timed:
        timed = sorted(
            (j for j in jobs if j.status == "done" and j.parent_ms is not None), key=lambda j: j.parent_ms or 0.0
        )
    return timed[_p50_index(len(timed))] if timed else None


def median_breakdown(jobs: Sequence[JobView]) -> list[tuple[str, float, int]]:
    """Per waterfall row label (in first-seen order): the median duration over jobs, and how many jobs had it."""
    durations: dict[str, list[float]] = defaultdict(list)
    for job in jobs:
        if job.status != "done":
            continue
        for segment in job.segments:
            durations[segment.label].append(segment.duration_ms)
    return [(label, percentile(values, 0.5), len(values)) for label, values in durations.items()]


def _rank(count: int, q: float) -> int:
    return min(count - 1, max(0, round(q * (count - 1))))


def _p50_index(count: int) -> int:
    return _rank(count, 0.5)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]) of a non-empty sequence: one definition for the whole report,
    so "the median job" is the job whose latency is the p50 the summary prints."""
    return sorted(values)[_rank(len(values), q)]
