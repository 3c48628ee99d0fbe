"""Imports sit at the top of library modules, so the dependency graph is what `lint-imports` sees.

Function-level imports are allowed only where they buy something a user feels: in `cli/` (so
`ccc --help` does not load onnxruntime or boto3) and in process entry points, listed here with
the reason each one imports late.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENTRY_POINTS = {
    "src/ccc/local/lambdas.py": "the handlers read their environment at import: loaded after the runner sets it",
    "src/ccc/demo.py": "`python -m ccc.demo`: client and stack load only once the arguments are valid",
    "src/ccc/local/moto_service.py": "`python -m ccc.local.moto_service`: moto loads only in that process",
    "src/ccc/model/build.py": "`python -m ccc.model.build`: onnxruntime only for the smoke test of the built model",
    "src/ccc/model/precision_report.py": "`python -m ccc.model.precision_report`: a measurement tool",
}


def _function_level_imports(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines += [sub.lineno for sub in ast.walk(node) if isinstance(sub, ast.Import | ast.ImportFrom)]
    return lines


def test_no_function_level_imports_outside_cli_and_entry_points():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=True)
    offenders = {}
    for name in tracked.stdout.split():
        if name.startswith("tests/") or "/cli/" in name or name.endswith("__main__.py") or name in ENTRY_POINTS:
            continue
        if lines := _function_level_imports(REPO / name):
            offenders[name] = lines
    assert offenders == {}


def test_every_listed_entry_point_still_imports_late():
    """An entry that no longer needs its exception is removed from the list, not left to rot."""
    assert {name for name in ENTRY_POINTS if _function_level_imports(REPO / name)} == set(ENTRY_POINTS)
