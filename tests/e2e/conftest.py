"""Fixtures for end-to-end tests: a real local stack (separate processes) per test module."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, model_present: None):
    """One local stack (moto, KMS gateway, 1 worker) per test module; stopped afterwards."""
    state_dir = tmp_path_factory.mktemp("stack")
    with LocalStack.start(state_dir, workers=1) as running:
        yield running


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from ccc.evaluation.samples import write_samples

    return write_samples(tmp_path_factory.mktemp("samples"))
