"""Shared fixtures for every test tier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
