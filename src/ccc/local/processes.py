"""Child processes of the local stack: start with a log file, check, stop politely, restart.

Why a wrapper around Popen: every component (moto, the KMS gateway, each parent agent and
enclave) is a real process, like on AWS. The supervisor must be able to stop them all (SIGTERM,
then SIGKILL after a grace period), notice when one dies and start it again, and never leave
orphans behind when the supervisor itself is killed (Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ccc.local.errors import LocalStackError

DEFAULT_STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1


class ProcessStartError(LocalStackError, RuntimeError):
    """A child process exited or did not become ready; the message points at its log."""


def _die_with_parent() -> None:
    """preexec hook: the kernel sends SIGTERM to the child when the supervisor dies."""
    if not sys.platform.startswith("linux"):
        return
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent environment without AWS_* variables (no profile or endpoint leaks in), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# Set in every process the stack starts: the process's log path, which lies under the stack's state
# directory. A pid read back from a (stale, copied or forged) stack.json is only ever signalled if
# the process carries this mark for that state directory (`launched_by`).
PROCESS_MARK_ENV = "CCC_LOCAL_PROCESS"


def launched_by(pid: int, state_dir: Path) -> bool:
    """True if `pid` is a process group this stack created: its environment carries the mark of a
    log under `state_dir`, and it leads its own group (every managed child is started in a new
    session). Anything unreadable counts as not ours: another user's process, or gone."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if os.getpgid(pid) != pid:
            return False
    except (OSError, ProcessLookupError):
        return False
    prefix = f"{PROCESS_MARK_ENV}=".encode()
    marks = [entry[len(prefix):].decode(errors="replace") for entry in environ if entry.startswith(prefix)]
    logs = (Path(state_dir).resolve() / "logs").as_posix() + "/"
    return len(marks) == 1 and marks[0].startswith(logs) and ".." not in marks[0]


def python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@dataclass
class ManagedProcess:
    """One named child process of the stack, restartable with the same command and environment."""

    name: str
    command: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None  # None: inherit the supervisor's environment
    cwd: Path | None = None
    restartable: bool = True
    restarts: int = 0
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)
    _started_at: float = field(default=0.0, init=False, repr=False)

    def start(self) -> None:
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.name}\n".encode())
        self._log.flush()
        env = dict(self.env) if self.env is not None else dict(os.environ)
        env[PROCESS_MARK_ENV] = str(self.log_path.resolve())
        self._popen = subprocess.Popen(
            list(self.command),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.cwd,
            start_new_session=True,  # a terminal Ctrl-C reaches the supervisor only: it stops us in order
            preexec_fn=_die_with_parent,  # only prctl, no locks: safe between fork and exec
        )
        self._started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    @property
    def uptime(self) -> float:
        return time.monotonic() - self._started_at if self.running else 0.0

    def restart(self) -> None:
        self.stop(timeout=2.0)
        self.restarts += 1
        self.start()

    def signal(self, signum: int) -> None:
        if self.running and self._popen is not None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(signum)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL the process group. Returns the exit code."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(timeout=5)
        # Reap anything the child left in its own process group (start_new_session made it leader).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        self._close_log()
        return popen.returncode

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all(processes: Sequence[ManagedProcess], timeout: float = DEFAULT_STOP_TIMEOUT_S) -> None:
    """SIGTERM all at once, then give each the rest of one shared grace period before SIGKILL."""
    for process in processes:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        process.stop(timeout=max(0.1, deadline - time.monotonic()))


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    process: ManagedProcess | None = None,
    what: str = "condition",
) -> None:
    """Poll `check` until true; fail fast (with its log tail) if `process` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if process is not None and not process.running:
            raise ProcessStartError(
                f"{process.name} exited with status {process.exit_code} before {what}; "
                f"log {process.log_path}:\n{process.log_tail()}"
            )
        if time.monotonic() >= deadline:
            tail = f"; log {process.log_path}:\n{process.log_tail()}" if process else ""
            raise ProcessStartError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(interval)
