"""`make chaos` / `python -m ccc.evaluation.chaos`: faults against a real local stack, and what
happened to every job (issue 13 §5).

Why a suite that stays: exactly-once results and "nothing lost" are properties of the whole
pipeline (leases, conditional writes, visibility heartbeats, the supervisor's restarts), and each
fix was proven once by a test of its own part. This runs them together, against real processes:

1. duplicate-delivery storm: every job's work message is sent again several times, at once and
   while the first copies run, to a stack of two workers;
2. a load run of `--jobs` images (default 1,000), `--bad-fraction` (10 %) of them not images at
   all, and while it runs, one fault after another on whatever job is in flight (its input was
   just fetched by a worker):
   * kills: one process of each kind is SIGKILLed (the supervisor restarts it). moto is not
     killed: it keeps all state in memory, so its death ends the stack by design
     (docs/local-stack.md; the client then says the stack stopped);
   * a slow enclave: one enclave is stopped (SIGSTOP) mid-job for longer than most jobs take,
     then resumed.
   A quick run (small `--jobs`) that has drained before a fault submits a few jobs of the
   fault's own to have something in flight.

Every job is followed as its tenant follows it (the client verifies and decrypts each result with
the tenant's trust file), and counted by `ccc.evaluation.chaos_tally`: submitted / done / failed /
lost / run-twice / torn / double-visible / unexpected. Exit status 1 on any lost, torn,
double-visible or unexpected job, 2 if the stack could not be started; the run is bounded by
`--budget` (jobs still pending then are lost).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import boto3

from ccc.client import CccClient, InputRecord, check_image, local_target
from ccc.evaluation.chaos_tally import Tally, TrackedJob, enclave_passes, tally
from ccc.evaluation.samples import write_samples
from ccc.local.stack import LocalStack
from ccc.trust.proposal import propose_from_local_stack
from ccc_common.contracts.result_objects import RESULT_SHA256_METADATA
from ccc_common.contracts.work_message import encode_eventbridge_object_created, encode_work_message
from ccc_core.identity import JobRef

TENANT = "tenant-a"
NOT_KILLED = frozenset({"moto"})  # in-memory state: its death ends the stack by design
SUBMITTERS = 4
VERIFIERS = 4
POLL_S = 1.0


@dataclass(frozen=True)
class ChaosOptions:
    jobs: int = 1000  # the load run
    bad_fraction: float = 0.10
    storm_jobs: int = 12
    storm_copies: int = 4
    jobs_per_kill: int = 3
    stall_s: float = 20.0  # how long the slow enclave is stopped
    fault_spacing_s: float = 35.0  # > the local lease + visibility: a hit job is redelivered before the next fault
    workers: int = 2
    budget_s: float = 560.0  # the whole run, stack start included
    seed: int = 13
    state_dir: Path | None = None  # default: a temporary directory
    json_out: Path | None = None


@dataclass
class ScenarioResult:
    name: str
    jobs: list[TrackedJob]
    seconds: float
    note: str = ""


@dataclass
class _Inputs:
    good: list[Path]
    bad: list[Path]


class LogWatch:
    """New text of a growing log file since the last look (the stack's moto log is large)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = path.stat().st_size if path.exists() else 0

    def wait_for(self, needles: Sequence[str], timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read().decode(errors="replace")
                cut = chunk.rfind("\n") + 1  # only whole lines; the rest is read next time
                self._offset += len(chunk[:cut].encode(errors="replace"))
                for needle in needles:
                    if needle in chunk[:cut]:
                        return needle
            time.sleep(0.05)
        return None


class ChaosRun:
    """One stack, the tenant's client, and the scenarios run against them in order."""

    def __init__(self, stack: LocalStack, client: CccClient, inputs: _Inputs, options: ChaosOptions) -> None:
        self.stack = stack
        self.client = client
        self.inputs = inputs
        self.options = options
        self.deadline = time.monotonic() + options.budget_s
        self.rng = random.Random(options.seed)
        admin = stack.info.identity("admin")
        session = boto3.session.Session(
            aws_access_key_id=admin.access_key_id,
            aws_secret_access_key=admin.secret_access_key,
            region_name=stack.info.region,
        )
        self._s3 = session.client("s3", endpoint_url=stack.info.endpoint_url)
        self._sqs = session.client("sqs", endpoint_url=stack.info.endpoint_url)
        self.results: list[ScenarioResult] = []

    # ----- scenarios ---------------------------------------------------------------------------
    def storm(self) -> None:
        def duplicate(jobs: list[TrackedJob]) -> str:
            for _round in range(2):  # at once, then again while the first copies run
                for job in jobs:
                    for _copy in range(self.options.storm_copies - 1):
                        self._send_work_message(job.ref)
                time.sleep(2.0)
            return f"{self.options.storm_copies} copies of each work message, plus another round 2 s later"

        self._scenario("storm", self._good(self.options.storm_jobs), duplicate)

    def load_under_faults(self) -> None:
        """The load run, and while it runs, one fault after another on whatever is in flight: a
        SIGKILL of each process kind, then a stalled enclave. Faults are spaced so that the jobs a
        fault hit have been redelivered before the next one (a job is meant to survive a fault, not
        three in a row: the queue's third receive sends it to the dead-letter queue by design)."""
        count = self.options.jobs
        bad = round(count * self.options.bad_fraction)
        images = self._good(count - bad)
        images += [(self.rng.choice(self.inputs.bad), True) for _ in range(bad)]
        self.rng.shuffle(images)
        name = f"load {count}"
        began = time.monotonic()
        faults: list[Callable[[], str]] = [self._kill(process) for process in killable(self.stack.refresh().pids)]
        faults.append(self._stall)
        notes: list[str] = []
        with ThreadPoolExecutor(1) as background:
            submitting = background.submit(self._submit, name, images)
            for index, fault in enumerate(faults):
                if index:
                    time.sleep(self.options.fault_spacing_s)
                if time.monotonic() >= self.deadline:  # bounded: the faults left are not run
                    notes.append(f"budget spent: {len(faults) - index} faults not run")
                    break
                notes.append(fault())
                print(f"  {name}: {notes[-1]} [{time.monotonic() - began:.0f} s]", flush=True)
            jobs = submitting.result()
        self._settle(jobs + [job for extra in self.results if extra.name != "storm" for job in extra.jobs])
        settled = sum(job.status != "pending" for job in jobs)
        result = ScenarioResult(name=name, jobs=jobs, seconds=round(time.monotonic() - began, 1), note="; ".join(notes))
        self.results.append(result)
        print(f"  {name}: {settled}/{len(jobs)} jobs settled in {result.seconds} s", flush=True)

    def _kill(self, process: str) -> Callable[[], str]:
        def kill() -> str:
            if not self._mid_job(f"kill {process}"):
                return f"nothing in flight: {process} not killed"
            pid = self.stack.refresh().pids.get(process)
            if pid is None:
                return f"{process} not running: not killed"
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return f"{process} (pid {pid}) SIGKILLed mid-job"

        return kill

    def _stall(self) -> str:
        if not self._mid_job("slow enclave"):
            return "nothing in flight: no enclave stalled"
        pid = self.stack.refresh().pids["enclave-1"]
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(self.options.stall_s)
        finally:
            os.kill(pid, signal.SIGCONT)
        return f"enclave-1 (pid {pid}) stopped for {self.options.stall_s:.0f} s mid-job"

    def _mid_job(self, scenario: str) -> bool:
        """Wait until a worker fetches some job's input (it is then mid-job). When the load has
        drained (a quick run), submit a few jobs of the fault's own to have something in flight."""
        watch = LogWatch(self.stack.state_dir / "logs" / "moto.log")
        any_input = [f"GET /{self.stack.info.inbox_bucket}/jobs/{TENANT}/"]
        if watch.wait_for(any_input, timeout_s=10.0):
            return True
        jobs = self._submit(scenario, self._good(self.options.jobs_per_kill))
        self.results.append(ScenarioResult(name=scenario, jobs=jobs, seconds=0.0, note="its own jobs, in flight"))
        return watch.wait_for(any_input, timeout_s=60.0) is not None

    # ----- machinery ---------------------------------------------------------------------------
    def _good(self, count: int) -> list[tuple[Path, bool]]:
        return [(self.inputs.good[i % len(self.inputs.good)], False) for i in range(count)]

    def _scenario(
        self, name: str, images: list[tuple[Path, bool]], fault: Callable[[list[TrackedJob]], str] | None
    ) -> None:
        began = time.monotonic()
        jobs = self._submit(name, images)
        note = fault(jobs) if fault is not None else ""
        self._settle(jobs)
        result = ScenarioResult(name=name, jobs=jobs, seconds=round(time.monotonic() - began, 1), note=note)
        self.results.append(result)
        settled = sum(job.status != "pending" for job in jobs)
        print(
            f"  {name}: {settled}/{len(jobs)} jobs settled in {result.seconds} s{'; ' + note if note else ''}",
            flush=True,
        )

    def _submit(self, name: str, images: list[tuple[Path, bool]]) -> list[TrackedJob]:
        limit = self.client.target.limits.max_image_bytes

        def one(image: tuple[Path, bool]) -> TrackedJob:
            # A bad image must reach the enclave (that is the fault under test): skip the client's header check.
            checked = check_image(image[0], limit, header=not image[1])
            try:
                submitted = self.client.submit(checked)
            except Exception:  # once more: a submission the stack refused is the tenant's to retry
                time.sleep(2.0)
                submitted = self.client.submit(checked)
            return TrackedJob(ref=submitted.job, scenario=name, bad_image=image[1])

        with ThreadPoolExecutor(SUBMITTERS) as pool:
            return list(pool.map(one, images))

    def _send_work_message(self, ref: JobRef) -> None:
        """A copy of the job's "Object Created" event, as EventBridge would deliver it again."""
        info = self.stack.info
        head = self._s3.head_object(Bucket=info.inbox_bucket, Key=ref.inbox_key)
        event = encode_eventbridge_object_created(
            info.inbox_bucket,
            ref.inbox_key,
            size=int(head["ContentLength"]),
            account=info.account_id,
            region=info.region,
            time=datetime.now(UTC),
        )
        self._sqs.send_message(QueueUrl=info.queue_url, MessageBody=encode_work_message(event))

    def _settle(self, jobs: list[TrackedJob]) -> None:
        """Follow `jobs` until each is done or failed for its tenant, or the run's deadline."""
        results_bucket = self.stack.info.results_bucket
        with ThreadPoolExecutor(VERIFIERS) as pool:
            while time.monotonic() < self.deadline:
                pending = [job for job in jobs if job.status == "pending"]
                if not pending:
                    return
                stored = self._stored_outcomes(results_bucket)
                ready = [job for job in pending if job.ref.job_id in stored]
                list(pool.map(self._observe, ready))
                time.sleep(POLL_S)

    def _stored_outcomes(self, bucket: str) -> set[str]:
        """Job ids with a result or a failure record (the parent's output; the tenant then reads it)."""
        found: set[str] = set()
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=f"results/{TENANT}/"):
                for item in page.get("Contents", []):
                    name = str(item["Key"]).rsplit("/", 1)[-1]
                    if name.endswith((".failed.json", ".ccc")):
                        found.add(name.split(".", 1)[0])
        except Exception:  # a gateway restarting after a kill: nothing new this round
            return set()
        return found

    def _observe(self, job: TrackedJob) -> None:
        try:
            report = self.client.fetch(job.ref)
        except Exception as exc:  # the API restarting after a kill, say: look again next round
            job.error = f"{type(exc).__name__}: {exc}"[:200]
            return
        if report.status == "pending":  # the jobs table lags the results bucket: next round
            return
        job.status, job.verified, job.error = report.status, report.verified, report.error
        if report.status == "done":
            job.first_digest = self._result_digest(job.ref)

    def _result_digest(self, ref: JobRef) -> str | None:
        try:
            head = self._s3.head_object(Bucket=self.stack.info.results_bucket, Key=ref.result_key)
        except Exception:  # gone: the final check reports it as double-visible
            return None
        return str((head.get("Metadata") or {}).get(RESULT_SHA256_METADATA, head.get("ETag", "")))

    def finish(self) -> Tally:
        """The end-of-run checks: stored results unchanged since first seen, enclave passes per job."""
        passes = enclave_passes(sorted((self.stack.state_dir / "logs").glob("enclave-*.log")))
        every = [job for result in self.results for job in result.jobs]
        # One last look, past the deadline, at jobs whose outcome is stored but was not yet read:
        # "lost" must mean nothing came, not that the budget ended between the store and the read.
        stored = self._stored_outcomes(self.stack.info.results_bucket)
        with ThreadPoolExecutor(VERIFIERS) as pool:
            list(pool.map(self._observe, [job for job in every if job.lost and job.ref.job_id in stored]))
        for job in every:
            job.enclave_passes = passes.get(job.ref.job_id, 0)
            if job.status == "done":
                job.final_digest = self._result_digest(job.ref)
        return tally(every, backlog_at_end=self._backlog() if any(job.lost for job in every) else 0)

    def _backlog(self) -> int:
        """Messages still in the work queue (visible or being worked on)."""
        try:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.stack.info.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except Exception:  # unknown: say nothing rather than guess
            return 0
        return sum(int(value) for value in attributes.values())


def killable(pids: dict[str, int]) -> list[str]:
    """One process of each kind (enclave-1 stands for every enclave, parent-1 for every parent),
    moto excepted."""
    kinds: dict[str, str] = {}
    for name in sorted(pids):
        kind = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
        if name not in NOT_KILLED:
            kinds.setdefault(kind, name)
    return sorted(kinds.values())


def _bad_inputs(directory: Path, rng: random.Random) -> list[Path]:
    """Files the client accepts (regular, non-empty, small) that no decoder takes for an image."""
    directory.mkdir(parents=True, exist_ok=True)
    shapes = {
        "random.bin": bytes(rng.getrandbits(8) for _ in range(4096)),
        "jpeg-header-only.jpg": b"\xff\xd8\xff\xe0" + bytes(rng.getrandbits(8) for _ in range(2048)),
        "png-truncated.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        "text.txt": b"this is not an image\n" * 50,
    }
    paths = []
    for name, data in shapes.items():
        path = directory / name
        path.write_bytes(data)
        paths.append(path)
    return paths


@contextlib.contextmanager
def _workspace(state_dir: Path | None) -> Iterator[Path]:
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        yield state_dir
        return
    with tempfile.TemporaryDirectory(prefix="ccc-chaos-") as tmp:
        yield Path(tmp)


def run_chaos(options: ChaosOptions) -> tuple[Tally, list[ScenarioResult]]:
    began = time.monotonic()
    with _workspace(options.state_dir) as root:
        bad = _bad_inputs(root / "bad", random.Random(options.seed))
        inputs = _Inputs(good=write_samples(root / "samples"), bad=bad)
        with LocalStack.start(root / "stack", workers=options.workers) as stack:
            print(f"chaos: local stack up in {time.monotonic() - began:.0f} s ({options.workers} workers)", flush=True)
            trust = propose_from_local_stack(stack.state_dir, TENANT).trust_file()
            client = CccClient(
                local_target(stack.state_dir),
                TENANT,
                trust=trust,
                inputs=InputRecord(root / "client"),
                show_progress=False,
            )
            run = ChaosRun(stack, client, inputs, replace_budget(options, began))
            run.storm()
            run.load_under_faults()
            summary = run.finish()
            return summary, run.results


def replace_budget(options: ChaosOptions, began: float) -> ChaosOptions:
    """The scenarios' share of the budget: what the stack's start-up left of it."""
    return replace(options, budget_s=max(1.0, options.budget_s - (time.monotonic() - began)))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be a number of seconds above 0 and at most 3600")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ccc.evaluation.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=_positive_int, default=1000, help="jobs of the load run (default 1000)")
    parser.add_argument("--bad-fraction", type=_fraction, default=0.10, help="share of bad images in the load run")
    parser.add_argument("--budget", type=_seconds, default=560.0, help="seconds for the whole run (default 560)")
    parser.add_argument("--state-dir", type=Path, default=None, help="keep the stack and its logs here")
    parser.add_argument("--json-out", type=Path, default=None, help="write the summary and scenarios as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = ChaosOptions(
        jobs=args.jobs,
        bad_fraction=args.bad_fraction,
        budget_s=args.budget,
        state_dir=args.state_dir,
        json_out=args.json_out,
    )
    began = time.monotonic()
    try:
        summary, scenarios = run_chaos(options)
    except Exception as exc:  # the stack could not start, or the client could not be set up
        print(f"chaos: could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - began
    verdict = "OK" if summary.ok else "FAILED"
    for scenario in scenarios:
        print(f"  {tally(scenario.jobs).line(scenario.name)}")
    print(f"{summary.line()}; {elapsed:.0f} s — {verdict}", flush=True)
    for example in summary.examples:
        print(f"  {example}")
    if options.json_out is not None:
        options.json_out.parent.mkdir(parents=True, exist_ok=True)
        options.json_out.write_text(
            json.dumps(
                {
                    "summary": summary.to_json(),
                    "seconds": round(elapsed, 1),
                    "scenarios": [
                        {"name": s.name, "seconds": s.seconds, "note": s.note, **tally(s.jobs).to_json()}
                        for s in scenarios
                    ],
                },
                indent=2,
            )
        )
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
