"""Fixtures for end-to-end tests: a real local stack (separate processes) per test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccc.local.stack import LocalStack

ESDK_CLI = Path(__file__).resolve().parents[2] / ".venv-esdk-cli" / "bin" / "aws-encryption-cli"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """One local stack (moto, KMS gateway, 1 worker) for the whole module; stopped afterwards."""
    from ccc.local.components import ComponentError, resolve_model_path

    try:
        resolve_model_path(None)
    except ComponentError as exc:
        pytest.skip(f"e2e needs the model: {exc}")
    state_dir = tmp_path_factory.mktemp("stack")
    with LocalStack.start(state_dir, workers=1) as running:
        yield running


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from ccc.counting.samples import write_samples

    return write_samples(tmp_path_factory.mktemp("samples"))
