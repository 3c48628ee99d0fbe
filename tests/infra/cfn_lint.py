"""cfn-lint on a synthesised template, as the service and tenant stacks' tests run it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("cfn-lint")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("cfn-lint")
    if not found:
        pytest.fail("cfn-lint is not installed (requirements-dev.txt pins it)")
    return [found]


def cfn_lint_errors(template: Path, workdir: Path) -> list[str]:
    """Lint a copy of `template` (cfn-lint reads the folder around it); fail unless it exits 0 (clean)
    or 4 (warnings only); return the error-rule (E…) lines of its parseable output."""
    copy = workdir / template.name
    shutil.copy(template, copy)
    result = subprocess.run([*_command(), "--format", "parseable", str(copy)], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode in (0, 4), result.stdout + result.stderr
    # parseable format: file:line:col:end_line:end_col:RULE:message
    rules = [(line, line.split(":", 6)[5:6]) for line in result.stdout.splitlines()]
    return [line for line, rule in rules if rule and rule[0].startswith("E")]
