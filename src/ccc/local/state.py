"""The on-disk state of one local stack: `stack.json`, the supervisor pid file, log and socket dirs.

Why a file and not an API: `ccc local env`, `ccc submit`, the AWS CLI (through `env`) and tests in
other processes all need to find the running stack. `stack.json` is written atomically and only
once everything is ready, so a reader either sees a complete description or none.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ccc.atomic_files import write_json_atomic
from ccc.local.errors import LocalStackError

DEFAULT_STATE_DIR = Path(".ccc/local")
STACK_FILE = "stack.json"
PID_FILE = "supervisor.pid"
SCHEMA_VERSION = 1


class StackStateError(LocalStackError, RuntimeError):
    """stack.json or the pid file is missing, unreadable or from another schema."""


@dataclass(frozen=True)
class IdentityRecord:
    """Credentials of one local identity (moto accepts any; the KMS gateway maps them to a principal)."""

    name: str
    principal_arn: str
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class StackInfo:
    """Everything a client needs to use a running local stack (the content of stack.json)."""

    state_dir: str
    stage: str
    account_id: str
    region: str
    endpoint_url: str
    kms_endpoint_url: str
    inbox_bucket: str
    results_bucket: str
    artifacts_bucket: str
    queue_url: str
    dlq_url: str
    jobs_table: str
    key_arn: str  # the operator-run shared key (demo / fallback); tenants' own keys: tenant_key_arns
    key_alias: str
    identities: dict[str, IdentityRecord]
    attestation_root_pem: str
    expected_pcrs: dict[str, str]
    workers: int
    api_url: str = ""  # the jobs API (SigV4, service execute-api)
    fleet_group: str = ""
    job_events_queue_url: str = ""
    idle_timeout_s: int | None = None  # None: fixed fleet (no scaler); else scale-to-zero after this idle time
    pids: dict[str, int] = field(default_factory=dict)
    # The kernel start time of each pid (``process_start_ticks``), recorded by the supervisor while
    # the process was its child: with the launch mark (``ccc.local.processes.launched_by``) it is what
    # `ccc local down` checks before it signals a leftover, since a pid number alone can be reused.
    pid_start_ticks: dict[str, int] = field(default_factory=dict)
    supervisor_pid: int = 0
    started_at: str = ""
    ready_seconds: float = 0.0
    aws_config_file: str = ""
    aws_credentials_file: str = ""
    # tenant -> the ARN of that tenant's own data key (in the tenant's account; interface C).
    tenant_key_arns: dict[str, str] = field(default_factory=dict)
    web_url: str = ""  # the browser client served by the stack (ccc.local.web_server)
    schema_version: int = SCHEMA_VERSION

    def identity(self, name: str) -> IdentityRecord:
        try:
            return self.identities[name]
        except KeyError:
            known = ", ".join(sorted(self.identities))
            raise StackStateError(f"the local stack has no identity {name!r} (known: {known})") from None

    def expected_pcr_bytes(self) -> dict[int, bytes]:
        return {int(index): bytes.fromhex(value) for index, value in self.expected_pcrs.items()}

    def attestation_root_der(self) -> bytes:
        try:
            pem = Path(self.attestation_root_pem).read_bytes()
            return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        except (OSError, ValueError) as exc:
            raise StackStateError(f"cannot read the local attestation root {self.attestation_root_pem}: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StackInfo:
        """Raises StackStateError naming the first field that is missing, unknown or of the wrong
        type, in words a user can act on (never a Python exception's text)."""
        if not isinstance(data, Mapping):
            raise StackStateError("stack.json is not a JSON object")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise StackStateError(
                f"stack.json has schema {data.get('schema_version')!r}, this ccc understands {SCHEMA_VERSION}"
            )
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(str(name) for name in data if name not in known)
        if unknown:
            raise StackStateError(f"stack.json has an unknown field {unknown[0]!r}")
        missing = [name for name, f in known.items() if name not in data and _required(f)]
        if missing:
            raise StackStateError(f"stack.json lacks the field {missing[0]!r}")
        values = dict(data)
        values["identities"] = {
            str(name): _identity(name, record) for name, record in _mapping(data, "identities").items()
        }
        values["expected_pcrs"] = {str(k): _typed(data, "expected_pcrs", v, str) for k, v in
                                   _mapping(data, "expected_pcrs").items()}
        values["tenant_key_arns"] = {str(k): _typed(data, "tenant_key_arns", v, str) for k, v in
                                     _mapping(data, "tenant_key_arns").items()}
        for name in ("pids", "pid_start_ticks"):
            values[name] = {str(k): _typed(data, name, v, int) for k, v in _mapping(data, name).items()}
        for name, f in known.items():
            if name in values and name not in _NESTED:
                _check_scalar(name, values[name], str(f.type))
        return cls(**values)


_NESTED = frozenset({"identities", "expected_pcrs", "pids", "pid_start_ticks", "tenant_key_arns"})
_SCALARS: Mapping[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "int | None": (int, type(None)),
}


def _required(f: Any) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _mapping(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise StackStateError(f"stack.json field {name!r} is not an object")
    return value


def _typed(data: Mapping[str, Any], name: str, value: Any, kind: type) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise StackStateError(f"stack.json field {name!r} holds a value that is not a {kind.__name__}")
    return value


def _check_scalar(name: str, value: Any, declared: str) -> None:
    allowed = _SCALARS.get(declared)
    if allowed is not None and (not isinstance(value, allowed) or isinstance(value, bool)):
        raise StackStateError(f"stack.json field {name!r} is not a {declared.replace(' | None', ' or null')}")


def _identity(name: Any, record: Any) -> IdentityRecord:
    wanted = {f.name for f in fields(IdentityRecord)}
    if not isinstance(record, Mapping) or set(record) != wanted or not all(isinstance(v, str) for v in record.values()):
        raise StackStateError(f"stack.json identity {str(name)!r} is malformed (expected {', '.join(sorted(wanted))})")
    return IdentityRecord(**record)


@dataclass(frozen=True)
class StatePaths:
    """Where a stack keeps its files under its state directory."""

    root: Path

    @property
    def stack_file(self) -> Path:
        return self.root / STACK_FILE

    @property
    def pid_file(self) -> Path:
        return self.root / PID_FILE

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Sockets and per-process config files (0700: the files carry credentials)."""
        return self.root / "run"

    @property
    def fleet_file(self) -> Path:
        """The fleet's current workers (written by the supervisor on every change)."""
        return self.root / "fleet.json"

    @property
    def ca(self) -> Path:
        return self.root / "ca"

    @property
    def aws(self) -> Path:
        return self.root / "aws"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        for private in (self.run, self.aws):
            private.mkdir(mode=0o700, exist_ok=True)
            private.chmod(0o700)


def read_stack_info(state_dir: Path) -> StackInfo:
    """The running stack's description, or StackStateError saying how to start one."""
    path = StatePaths(Path(state_dir)).stack_file
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise StackStateError(
            f"no local stack in {state_dir} (no {STACK_FILE}); start one with `ccc local up --state-dir {state_dir}`"
        ) from None
    except UnicodeDecodeError:
        raise StackStateError(f"cannot read {path}: not UTF-8 text; {_RESTART}") from None
    except json.JSONDecodeError as exc:
        raise StackStateError(f"cannot read {path}: not JSON (line {exc.lineno}, column {exc.colno}); "
                              f"{_RESTART}") from None
    except RecursionError:
        raise StackStateError(f"cannot read {path}: JSON nested too deeply; {_RESTART}") from None
    except OSError as exc:
        raise StackStateError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        return StackInfo.from_json(data)
    except StackStateError as exc:
        raise StackStateError(f"{exc} ({path}); {_RESTART}") from None


# What to do about a stack.json that cannot be used: the supervisor rewrites it from scratch.
_RESTART = "restart the stack: `ccc local down` then `ccc local up` (with the same --state-dir)"


# ----- supervisor pid file --------------------------------------------------------------------


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of `pid` (Linux /proc), to tell a live pid from a recycled one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True if `pid` runs and (when known) is the same process that was recorded."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    current = process_start_ticks(pid)
    if current is not None and _is_zombie(pid):
        return False
    return start_ticks is None or current is None or current == start_ticks


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].startswith("Z")


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_ticks: int | None
    state_dir: str | None = None  # the resolved state directory of the supervisor that wrote it

    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_ticks)

    def supervises(self, state_dir: Path) -> bool:
        """True only for the live supervisor of `state_dir` that wrote this record: same pid *and*
        kernel start time (a pid number can be reused), written for this directory (a pid file
        copied from another state directory names another stack's supervisor). A record missing
        either is never trusted with a signal."""
        return (
            self.start_ticks is not None
            and self.state_dir == Path(state_dir).resolve().as_posix()
            and self.alive()
        )


def read_pid_file(path: Path) -> PidRecord | None:
    try:
        data = json.loads(path.read_text())
        ticks, state_dir = data.get("start_ticks"), data.get("state_dir")
        return PidRecord(pid=int(data["pid"]), start_ticks=ticks if isinstance(ticks, int) else None,
                         state_dir=state_dir if isinstance(state_dir, str) else None)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        # A torn or foreign pid file describes no process we can trust: treat it as stale.
        return PidRecord(pid=0, start_ticks=None)


def write_pid_file(path: Path, state_dir: Path | None = None) -> PidRecord:
    """The calling process as the supervisor of `state_dir` (default: the pid file's directory)."""
    root = Path(state_dir if state_dir is not None else path.parent).resolve().as_posix()
    record = PidRecord(pid=os.getpid(), start_ticks=process_start_ticks(os.getpid()), state_dir=root)
    write_json_atomic(path, {"pid": record.pid, "start_ticks": record.start_ticks, "state_dir": root}, mode=0o644)
    return record


def signal_process(pid: int, signum: int = signal.SIGTERM) -> bool:
    try:
        os.kill(pid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False
