"""Fixtures for end-to-end tests: a real local stack (separate processes) per test module."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccc.local.stack import LocalStack

ESDK_CLI = Path(__file__).resolve().parents[2] / ".venv-esdk-cli" / "bin" / "aws-encryption-cli"


@pytest.fixture(scope="session")
def model_present() -> None:
    """Skip (not fail) the e2e tests that start a stack when the counting model was never built."""
    from ccc.local.components import ComponentError, resolve_model_path

    try:
        resolve_model_path(None)
    except ComponentError as exc:
        pytest.skip(f"e2e needs the model: {exc}")


def make_trust_file(state_dir: Path, out: Path, tenant: str = "tenant-a") -> Path:
    """The tenant's trust file, made the way a tenant makes one: `ccc trust init --local-stack ... --yes`."""
    made = subprocess.run(
        [sys.executable, "-m", "ccc", "trust", "init", "--out", str(out), "--local-stack", str(state_dir),
         "--tenant", tenant, "--yes", "--force"], capture_output=True, text=True, timeout=120, check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return out


@contextlib.contextmanager
def trusting(trust_file: Path, client_state: Path) -> Iterator[None]:
    """`ccc submit`/`ccc result` and CccClient (in this process and in subprocesses) use `trust_file`,
    and record uploads under `client_state`, until the block ends."""
    saved = {name: os.environ.get(name) for name in ("CCC_TRUST_FILE", "XDG_STATE_HOME")}
    os.environ.update({"CCC_TRUST_FILE": str(trust_file), "XDG_STATE_HOME": str(client_state)})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, model_present: None):
    """One local stack (moto, KMS gateway, 1 worker) per test module; stopped afterwards. Clients
    use tenant-a's trust file made from it (CCC_TRUST_FILE) while it runs."""
    state_dir = tmp_path_factory.mktemp("stack")
    client_dir = tmp_path_factory.mktemp("client")
    with LocalStack.start(state_dir, workers=1) as running:
        trust = make_trust_file(running.state_dir, client_dir / "trust-tenant-a.json")
        with trusting(trust, client_dir / "state"):
            yield running


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from ccc.evaluation.samples import write_samples

    return write_samples(tmp_path_factory.mktemp("samples"))
