"""Shared fixtures for every test tier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Property tests: `make test` (and so CI) runs the "ci" profile -- derandomised, no example
# database -- so a landing's verdict depends on the code, not on the seed of the day (a new
# counterexample once surfaced in an unrelated landing). Searching for new counterexamples is
# `make fuzz`'s job ("fuzz": random seeds, 20x the examples, the local example database, so a
# counterexample found is replayed until fixed, then written down as an @example).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", max_examples=2000, print_blob=True)

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"
EVENTS = REPO_ROOT / "tests" / "events"


def load_event(name: str) -> dict[str, Any]:
    """Load a JSON sample event from tests/events/ (Powertools examples style)."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
