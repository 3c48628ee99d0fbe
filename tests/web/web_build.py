"""Build web/ for the tests once, under a lock, and run its node tests.

Why: the tests of this folder run in two pytest workers; each used to rebuild web/dist or
web/dist-test itself, so one worker could read a bundle while another rewrote it. A build now
happens under an exclusive lock, and only when a source is newer than the last build's stamp
(`make setup` has usually built it already), so readers see finished files.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
_SOURCES = ("src", "test", "build.mjs", "package-lock.json", "tsconfig.json")


def node() -> str:
    found = shutil.which("node")
    if found is None or not (WEB / "node_modules").is_dir():
        pytest.fail("node and web/node_modules are needed (make setup runs `npm ci` in web/)")
    return found


def _newest_source_mtime() -> float:
    newest = 0.0
    for name in _SOURCES:
        path = WEB / name
        paths = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        newest = max([newest, *(p.stat().st_mtime for p in paths)])
    return newest


def build(*, tests: bool) -> None:
    """`node build.mjs [--tests]` unless its output is newer than every source (one at a time)."""
    stamp = WEB / f".build-stamp-{'tests' if tests else 'page'}"  # not in dist/: that is what gets hosted
    with open(WEB / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.stat().st_mtime > _newest_source_mtime():
            return
        command = [node(), "build.mjs", *(["--tests"] if tests else [])]
        done = subprocess.run(command, cwd=WEB, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        stamp.touch()


def run_node_tests(target: str, env: dict[str, str]) -> str:
    """Run `node --test <target>` (under web/dist-test) with `env`; fail on any failed test; its output."""
    build(tests=True)
    executable = node()
    run = subprocess.run(
        [executable, "--test", target], cwd=WEB, capture_output=True, text=True, timeout=600, check=False,
        env={"PATH": str(Path(executable).parent), **env},
    )  # fmt: skip
    failures = [line for line in run.stdout.splitlines() if line.startswith("not ok")]
    assert run.returncode == 0 and not failures, "\n".join(failures) + run.stdout[-4000:] + run.stderr[-2000:]
    return run.stdout
