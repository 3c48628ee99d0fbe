"""The local stack supervisor: start, provision, watch and stop every process of the local tier.

`Supervisor` runs in the `ccc local up` process: it starts moto, provisions the resources
(`provision.py`), creates the per-stack attestation CA, measures the enclave, starts the
attested-KMS gateway and N workers (enclave server + parent agent pairs), writes stack.json,
then watches: a worker process that dies is started again (an enclave crash must not lose a job),
a dead moto ends the stack (its state is gone). SIGINT/SIGTERM stop everything in order.

`LocalStack.start(...)` is the Python API for tests and the demo: it runs `ccc local up` as a
child process and hands back a handle (context manager) once stack.json is ready.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from ccc.atomic_files import write_json_atomic
from ccc.local import components, iam_stack
from ccc.local.errors import LocalStackError
from ccc.local.fleet_supervisor import LocalFleet
from ccc.local.processes import (
    ManagedProcess,
    ProcessStartError,
    clean_environment,
    launched_by,
    python_command,
    stop_all,
    wait_until,
)
from ccc.local.state import (
    DEFAULT_STATE_DIR,
    IdentityRecord,
    StackInfo,
    StackStateError,
    StatePaths,
    pid_alive,
    process_start_ticks,
    read_pid_file,
    read_stack_info,
    signal_process,
    write_pid_file,
)
from ccc.local.ttl_sweeper import TtlSweeper
from ccc.local.web_server import WebServer, apply_bucket_cors
from ccc.telemetry.runs import archive_current_run
from ccc_common.domain.cors import WEB_ORIGINS_ENV
from ccc_common.domain.naming import resource_names

LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account: ARNs moto returns carry it
LOCAL_REGION = "us-east-1"
DEFAULT_READY_TIMEOUT_S = 90.0
MONITOR_INTERVAL_S = 0.25
# A process that dies within this many seconds of its start is restarted only after a pause, which
# doubles each time up to the maximum: a crash loop must not spin the CPU.
QUICK_DEATH_S = 5.0
MAX_RESTART_DELAY_S = 10.0
# How long parents may take to finish in-flight jobs on stop before they are killed.
PARENT_DRAIN_S = 30.0
DESIRED_POLL_S = 1.0
# The scheduled scaler runs every minute on AWS; locally every few seconds (it is also woken by arrivals).
SCALER_TICK_S = 5.0
START_ATTEMPTS = 2

log = logging.getLogger("ccc.local")


class StackAlreadyRunning(LocalStackError, RuntimeError):
    """`up` on a state directory whose supervisor is alive."""


class StackError(LocalStackError, RuntimeError):
    """The stack could not start, or broke while running."""


@dataclass
class StackOptions:
    state_dir: Path = DEFAULT_STATE_DIR
    workers: int = 1
    idle_timeout_s: int | None = None
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT_ID
    model_path: Path | None = None
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        if not 0 <= self.workers <= 16:
            raise ValueError("workers must be 0..16")
        if self.idle_timeout_s is not None and self.idle_timeout_s < 1:
            raise ValueError("idle timeout must be at least 1 second")


@dataclass
class _Watch:
    """Restart bookkeeping for one stack-level process (gateway, lambdas)."""

    process: ManagedProcess
    delay_s: float = 0.5
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Owns every child process of one stack (see the module docstring)."""

    options: StackOptions
    paths: StatePaths = field(init=False)
    info: StackInfo | None = field(default=None, init=False)
    fleet: LocalFleet | None = field(default=None, init=False)
    _moto: ManagedProcess | None = field(default=None, init=False)
    _watches: list[_Watch] = field(default_factory=list, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _owns_pid_file: bool = field(default=False, init=False)
    _autoscaling: Any = field(default=None, init=False)
    _desired: int = field(default=0, init=False)
    _next_desired_poll: float = field(default=0.0, init=False)
    _web: WebServer | None = field(default=None, init=False)  # the browser client (web/)
    _ttl: TtlSweeper | None = field(default=None, init=False)  # DynamoDB TTL (ccc.local.ttl_sweeper)

    def __post_init__(self) -> None:
        self.paths = StatePaths(self.options.state_dir.resolve())

    # ----- lifecycle ----------------------------------------------------------------------
    def start(self) -> StackInfo:
        """Bring the whole stack up; on any failure stop what was started and raise."""
        began = time.monotonic()
        self._claim_state_dir()
        try:
            info = self._start_components(began)
        except BaseException:
            self.stop()
            raise
        self.info = info
        return info

    def run(self) -> int:
        """Watch the processes and follow the fleet's desired capacity until stop() is requested."""
        status = 0
        try:
            while not self._stopping.wait(MONITOR_INTERVAL_S):
                if self._moto is not None and not self._moto.running:
                    log.error("moto exited (status %s): the stack's state is gone, stopping", self._moto.exit_code)
                    status = 1
                    break
                self.step()
        finally:
            self.stop()
        return status

    def step(self) -> None:
        """One monitoring round: restarts, desired capacity, fleet progress, expired items, state files."""
        changed = self._restart_dead()
        if self._ttl is not None:
            self._ttl.tick()
        if self.fleet is not None:
            now = time.monotonic()
            if now >= self._next_desired_poll:
                self._next_desired_poll = now + DESIRED_POLL_S
                desired = self._read_desired()
                if desired is not None and desired != self._desired:
                    log.info("fleet desired capacity %d -> %d", self._desired, desired)
                    self._desired = desired
                changed |= self.fleet.reconcile(self._desired)
            changed |= self.fleet.tick()
        if changed:
            self._publish()

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self) -> None:
        """Stop workers (parents first: they drain), then lambdas and gateway, then moto; clean up files."""
        self._stopping.set()
        if self.fleet is not None:
            self.fleet.stop(timeout=PARENT_DRAIN_S)
        running = [w.process for w in self._watches if w.process.running]
        if running:
            log.info("stopping %s", ", ".join(f"{p.name} (pid {p.pid})" for p in running))
        stop_all([w.process for w in self._watches])
        self._watches.clear()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._web is not None:
            self._web.stop()
            self._web = None
        if self._owns_pid_file:
            for owned in (self.paths.stack_file, self.paths.fleet_file, self.paths.pid_file):
                with contextlib.suppress(FileNotFoundError):
                    owned.unlink()
            self._owns_pid_file = False

    # ----- start-up steps -----------------------------------------------------------------
    def _claim_state_dir(self) -> None:
        self.paths.prepare()
        record = read_pid_file(self.paths.pid_file)
        if record is not None and record.pid != os.getpid() and record.supervises(self.paths.root):
            raise StackAlreadyRunning(
                f"a local stack is already running in {self.paths.root} (supervisor pid {record.pid}); "
                f"stop it with `ccc local down --state-dir {self.options.state_dir}`"
            )
        if record is not None:
            log.info("removing stale state of a stack that is no longer running (pid %s)", record.pid)
        for stale in (self.paths.stack_file, self.paths.fleet_file, self.paths.pid_file):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        write_pid_file(self.paths.pid_file, self.paths.root)
        self._owns_pid_file = True
        # A fresh stack gets fresh state: a new CA (documents of an old stack must not verify),
        # fresh logs, telemetry and sockets. The old telemetry is kept as a run (`ccc report --run`).
        archive_current_run(self.paths.root)
        for directory in (self.paths.ca, self.paths.run, self.paths.logs):
            shutil.rmtree(directory, ignore_errors=True)
        self.paths.prepare()
        # Every child (enclaves, parents, Lambdas) inherits this: spans and metrics as JSON Lines
        # under <state-dir>/telemetry, which `ccc report` renders.
        os.environ["CCC_STATE_DIR"] = str(self.paths.root)

    def _start_components(self, began: float) -> StackInfo:
        opts = self.options
        deadline = time.monotonic() + opts.ready_timeout_s

        def remaining() -> float:
            return max(1.0, deadline - time.monotonic())

        # The page's origin first: the jobs API and the buckets allow exactly it (ccc_common.domain.cors),
        # and every child inherits CCC_WEB_ORIGINS from here.
        self._web = WebServer(lambda: self.info).start()
        os.environ[WEB_ORIGINS_ENV] = self._web.origin
        moto_ready = self.paths.run / "moto.json"
        self._moto = ManagedProcess(
            name="moto",
            command=python_command("ccc.local.moto_service", "--ready-file", str(moto_ready)),
            log_path=self.paths.log("moto"),
            env=clean_environment(),
            restartable=False,
        )
        self._moto.start()
        wait_until(moto_ready.exists, timeout=remaining(), process=self._moto, what="moto to listen")
        moto_info = json.loads(moto_ready.read_text())
        log.info("moto listening on %s (IAM access control on)", moto_info["endpoint_url"])
        identities = components.local_identities(opts.account_id)
        # Every AWS call of the stack (provisioning too) goes through the IAM gateway, which enforces
        # each identity's IAM policies; moto itself knows only the gateway's upstream credential.
        iam_config = iam_stack.gateway_config(
            upstream_url=moto_info["endpoint_url"],
            upstream=moto_info["upstream"],
            identities=identities,
            names=resource_names(components.STAGE, opts.account_id, opts.region),
        )
        iam_process, iam_ready = iam_stack.iam_gateway_process(self.paths, iam_config)
        self._watch(iam_process)
        iam_process.start()
        wait_until(iam_ready.exists, timeout=remaining(), process=iam_process, what="the IAM gateway to listen")
        endpoint_url = iam_stack.pin_iam_gateway_port(self.paths)
        log.info("IAM gateway on %s", endpoint_url)

        layout = components.StackLayout(
            paths=self.paths,
            region=opts.region,
            account_id=opts.account_id,
            endpoint_url=endpoint_url,
            model_path=components.resolve_model_path(opts.model_path),
        )
        root_pem = components.create_ca(layout)
        image = components.build_enclave_image(layout)
        pcrs = components.measure(image)
        resources = components.provision_stack(layout, identities, pcrs, opts.workers)
        log.info("provisioned key %s, queue %s", resources.key_arn, resources.queue_url)
        apply_bucket_cors(
            components.admin_client(layout, identities, "s3"),
            layout.names.inbox_bucket,
            layout.names.results_bucket,
            (self._web.origin,),
        )

        gateway = components.gateway_process(layout, identities)
        self._watch(gateway.process)
        gateway.process.start()
        lambdas = components.lambdas_process(
            layout, identities, resources, idle_timeout_s=opts.idle_timeout_s, scaler_tick_s=SCALER_TICK_S
        )
        self._watch(lambdas.process)
        lambdas.process.start()
        wait_until(gateway.ready, timeout=remaining(), process=gateway.process, what="the KMS gateway to listen")
        gateway.url = components.pin_gateway_port(layout)
        log.info("attested-KMS gateway on %s", gateway.url)

        self._autoscaling = components.admin_client(layout, identities, "autoscaling")
        # moto never applies the jobs table's TTL; the supervisor deletes expired items as AWS would.
        self._ttl = TtlSweeper(components.admin_client(layout, identities, "dynamodb"), resources.jobs_table)
        self.fleet = LocalFleet(
            lambda slot: components.worker_processes(layout, identities, resources, gateway.url, slot, image),
            drain_timeout_s=PARENT_DRAIN_S,
        )
        self._desired = opts.workers
        self.fleet.reconcile(self._desired)
        fleet = self.fleet

        def workers_serving() -> bool:
            fleet.tick()
            return len(fleet.serving()) >= opts.workers

        wait_until(workers_serving, timeout=remaining(), what=f"{opts.workers} worker(s) to serve")
        expected_pcr0 = pcrs[0].hex()
        for worker in fleet.serving():
            components.check_measurement(worker.endpoint, expected_pcr0)
        wait_until(lambdas.ready, timeout=remaining(), process=lambdas.process, what="the local Lambdas to start")
        api_url = components.pin_api_port(layout)
        log.info("jobs API on %s", api_url)

        records = {
            identity.name: IdentityRecord(
                name=identity.name,
                principal_arn=identity.principal_arn,
                access_key_id=identity.access_key_id,
                secret_access_key=identity.secret_access_key,
            )
            for identity in identities
        }
        config_file, credentials_file = components.write_client_config(layout, gateway.url, records.values())
        info = StackInfo(
            state_dir=str(self.paths.root),
            stage="local",
            account_id=opts.account_id,
            region=opts.region,
            endpoint_url=endpoint_url,
            kms_endpoint_url=gateway.url,
            api_url=api_url,
            inbox_bucket=layout.names.inbox_bucket,
            results_bucket=layout.names.results_bucket,
            artifacts_bucket=layout.names.artifacts_bucket,
            queue_url=resources.queue_url,
            dlq_url=resources.dlq_url,
            jobs_table=resources.jobs_table,
            key_arn=resources.key_arn,
            key_alias=resources.key_alias,
            tenant_key_arns=dict(resources.tenant_key_arns),
            identities=records,
            attestation_root_pem=str(root_pem),
            expected_pcrs={str(i): v.hex() for i, v in sorted(pcrs.items())},
            workers=opts.workers,
            fleet_group=resources.fleet_group,
            job_events_queue_url=resources.job_events_queue_url,
            idle_timeout_s=opts.idle_timeout_s,
            pids=self.pids(),
            pid_start_ticks=_start_ticks(self.pids()),
            supervisor_pid=os.getpid(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            ready_seconds=round(time.monotonic() - began, 2),
            aws_config_file=str(config_file),
            aws_credentials_file=str(credentials_file),
            web_url=self._web.url,
        )
        self.info = info
        self._publish()
        return info

    def _read_desired(self) -> int | None:
        if self._autoscaling is None or self.info is None:
            return None
        try:
            groups = self._autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.info.fleet_group])
            return int(groups["AutoScalingGroups"][0]["DesiredCapacity"])
        except Exception as exc:  # moto busy or stopping: keep the last known value
            log.debug("cannot read the fleet group: %s", type(exc).__name__)
            return None

    def pids(self) -> dict[str, int]:
        found = {} if self._moto is None or self._moto.pid is None else {"moto": self._moto.pid}
        for watch in self._watches:
            if watch.process.pid is not None:
                found[watch.process.name] = watch.process.pid
        if self.fleet is not None:
            found.update(self.fleet.pids())
        return found

    def _publish(self) -> None:
        """Rewrite stack.json (pids) and fleet.json (workers) after a change."""
        if self.info is None:
            return
        pids = self.pids()
        self.info = replace(self.info, pids=pids, pid_start_ticks=_start_ticks(pids))
        write_json_atomic(self.paths.stack_file, self.info.to_json())
        if self.fleet is not None:
            write_json_atomic(
                self.paths.fleet_file,
                {"desired": self._desired, "counts": self.fleet.counts(), "workers": self.fleet.describe()},
                mode=0o644,
            )

    def _watch(self, process: ManagedProcess) -> None:
        self._watches.append(_Watch(process))

    # ----- monitoring ---------------------------------------------------------------------
    def _restart_dead(self) -> bool:
        now = time.monotonic()
        changed = False
        for watch in self._watches:
            process = watch.process
            if process.running or not process.restartable:
                continue
            if watch.restart_at is None:
                quick = process.uptime < QUICK_DEATH_S
                delay = watch.delay_s if quick else 0.0
                watch.delay_s = min(MAX_RESTART_DELAY_S, watch.delay_s * 2) if quick else 0.5
                watch.restart_at = now + delay
                log.warning(
                    "%s exited with status %s; restarting in %.1fs", process.name, process.exit_code, delay
                )
            if now >= watch.restart_at:
                watch.restart_at = None
                process.restart()
                changed = True
                log.info("%s restarted (pid %s, restart #%d)", process.name, process.pid, process.restarts)
        return changed


# ----- `ccc local down` ---------------------------------------------------------------------


def stop_stack(state_dir: Path, *, timeout: float = 30.0) -> bool:
    """Stop the stack whose supervisor runs in `state_dir`. Returns False if none was running."""
    paths = StatePaths(Path(state_dir).resolve())
    record = read_pid_file(paths.pid_file)
    if record is None or not record.supervises(paths.root):
        _kill_leftovers(paths)
        for stale in (paths.stack_file, paths.pid_file):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        return False
    signal_process(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while record.supervises(paths.root) and time.monotonic() < deadline:
        time.sleep(0.1)
    if record.supervises(paths.root):
        log.warning("supervisor %s did not stop within %.0fs; killing it", record.pid, timeout)
        signal_process(record.pid, signal.SIGKILL)
        _kill_leftovers(paths)
        for stale in (paths.stack_file, paths.pid_file):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    return True


def _kill_leftovers(paths: StatePaths) -> None:
    """Children of a supervisor that was SIGKILLed get SIGTERM from the kernel; this is the backstop."""
    try:
        recorded = json.loads(paths.stack_file.read_text())
        pids, ticks = dict(recorded.get("pids", {})), dict(recorded.get("pid_start_ticks", {}))
    except (OSError, ValueError, AttributeError, TypeError):
        return
    for name, pid in pids.items():
        # Only a process group this stack created: the very process recorded (pid *and* kernel start
        # time: a stale stack.json names pids that may since belong to anything else) carrying the
        # launch mark of this state directory (a copied stack.json names another stack's processes).
        started = ticks.get(name)
        if not (isinstance(pid, int) and pid > 1 and isinstance(started, int)):
            continue
        if pid_alive(pid, started) and launched_by(pid, paths.root):
            log.info("stopping leftover %s (pid %s)", name, pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def _start_ticks(pids: dict[str, int]) -> dict[str, int]:
    """Start times of the supervisor's children, read while they are its children (a child that
    died but was not yet reaped keeps its pid, so the number cannot have been reused yet)."""
    found = {name: process_start_ticks(pid) for name, pid in pids.items()}
    return {name: ticks for name, ticks in found.items() if ticks is not None}


# ----- Python API: the stack in a child process ---------------------------------------------


class LocalStack:
    """A running local stack started by `LocalStack.start`; a context manager that stops it."""

    def __init__(self, process: subprocess.Popen[bytes], info: StackInfo, log_path: Path) -> None:
        self.process = process
        self.info = info
        self.log_path = log_path

    @classmethod
    def start(
        cls,
        state_dir: Path,
        *,
        workers: int = 1,
        idle_timeout_s: int | None = None,
        model_path: Path | None = None,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
        otlp_endpoint: str | None = None,
    ) -> LocalStack:
        """Run `ccc local up` in a child process; return once its stack.json is written."""
        state_dir = Path(state_dir).resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        command = python_command(
            "ccc", "local", "up", "--state-dir", str(state_dir), "--workers", str(workers),
            "--ready-timeout", str(ready_timeout_s),
        )
        if idle_timeout_s is not None:
            command += ["--idle-timeout", str(idle_timeout_s)]
        if model_path is not None:
            command += ["--model", str(model_path)]
        if otlp_endpoint is not None:
            command += ["--otlp-endpoint", otlp_endpoint]
        log_path = state_dir / "supervisor.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                env=clean_environment(), start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout_s + 15
        while True:
            with contextlib.suppress(StackStateError):
                info = read_stack_info(state_dir)
                if info.supervisor_pid == process.pid:
                    return cls(process, info, log_path)
            if process.poll() is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                raise StackError(f"`ccc local up` exited with status {process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise StackError(f"the local stack did not become ready in {ready_timeout_s:.0f}s; see {log_path}")
            time.sleep(0.1)

    @property
    def state_dir(self) -> Path:
        return Path(self.info.state_dir)

    def refresh(self) -> StackInfo:
        """Re-read stack.json (pids change when the supervisor restarts a worker)."""
        self.info = read_stack_info(self.state_dir)
        return self.info

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running_stack(state_dir: Path, **kwargs: object) -> Iterator[LocalStack]:
    stack = LocalStack.start(state_dir, **kwargs)  # type: ignore[arg-type]
    try:
        yield stack
    finally:
        stack.stop()


def run_foreground(options: StackOptions) -> int:
    """`ccc local up`: start, print where the stack is, supervise until SIGINT/SIGTERM."""
    supervisor = Supervisor(options)

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping the stack", signal.Signals(signum).name)
        supervisor.request_stop()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                info = supervisor.start()
                break
            except components.MeasurementMismatch as exc:
                # Source files changed between measuring and the enclave's boot (an editor saving):
                # measure again from scratch rather than fail.
                if attempt == START_ATTEMPTS or supervisor._stopping.is_set():
                    log.error("the local stack failed to start: %s", exc)
                    return 1
                log.warning("%s; starting again", exc)
                supervisor = Supervisor(options)
            except (ProcessStartError, StackError, components.ComponentError) as exc:
                log.error("the local stack failed to start: %s", exc)
                return 1
        print(
            f"local stack ready in {info.ready_seconds:.1f}s: AWS (IAM gateway) {info.endpoint_url}, "
            f"KMS gateway {info.kms_endpoint_url}, {info.workers} worker(s); state in {info.state_dir}\n"
            f"  web client (tenant-a): {info.web_url}\n"
            f"  eval $(ccc local env --state-dir {options.state_dir})   # point the AWS CLI at it (as tenant-a)\n"
            f"  Ctrl-C or `ccc local down --state-dir {options.state_dir}` stops it",
            file=sys.stderr,
            flush=True,
        )
        return supervisor.run()
    finally:
        supervisor.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


__all__ = [
    "LOCAL_ACCOUNT_ID",
    "LOCAL_REGION",
    "LocalStack",
    "StackAlreadyRunning",
    "StackError",
    "StackOptions",
    "Supervisor",
    "process_start_ticks",
    "run_foreground",
    "running_stack",
    "stop_stack",
]
