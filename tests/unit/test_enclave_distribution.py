"""The enclave distribution is self-contained, and `.venv-enclave` holds it and its pins alone.

Why these tests: PCR0 pins what a tenant audits. If the enclave imported anything outside its
own distribution, or needed a package its requirements file does not pin, the EIF built from
that file would fail at boot (or run unmeasured code) while the dev venv hid it.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from ccc.local.components import enclave_python
from ccc.release.wheelhouse import canonical_name, read_pins
from ccc_enclave.attester import DISTRIBUTION_PACKAGES, PINS_FILE, distribution_root

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "enclave_worker" / "enclave"
OTHER_FIRST_PARTY = ("ccc", "ccc_common", "enclave_worker", "functions", "cdk")


def _modules() -> list[str]:
    names = []
    for package in DISTRIBUTION_PACKAGES:
        for path in sorted((DIST / package).rglob("*.py")):
            parts = path.relative_to(DIST).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _enclave_pins() -> dict[str, str]:
    """The enclave's pins, read as the bundle build reads them (exact pins only, no duplicates)."""
    return {pin.name: pin.version for pin in read_pins(DIST / PINS_FILE)}


def _root_pins() -> dict[str, str]:
    """The dev pins (requirements.txt may carry extras, e.g. moto[server])."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[canonical_name(name.split("[")[0])] = version
    return pins


def test_the_distribution_root_is_the_checkout_folder():
    assert distribution_root() == DIST
    assert (DIST / PINS_FILE).is_file() and (DIST / "pyproject.toml").is_file()


def test_no_enclave_module_imports_the_rest_of_the_repository():
    offenders = []
    for package in DISTRIBUTION_PACKAGES:
        for path in (DIST / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                offenders += [f"{path.relative_to(DIST)}: {n}" for n in names if n.split(".")[0] in OTHER_FIRST_PARTY]
    assert offenders == []


def test_every_pin_is_exact_and_agrees_with_the_root_requirements():
    """The enclave runs the versions the tests ran: each enclave pin equals the dev pin of that package."""
    enclave, root = _enclave_pins(), _root_pins()
    dev = _pins_from_freeze()
    assert enclave and all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in enclave.values()), enclave
    assert {n: v for n, v in enclave.items() if n in root and root[n] != v} == {}
    assert {n: v for n, v in enclave.items() if n in dev and dev[n] != v} == {}


def _pins_from_freeze() -> dict[str, str]:
    import importlib.metadata

    return {canonical_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}


@pytest.fixture(scope="module")
def enclave_env() -> Path:
    return enclave_python()


def test_enclave_venv_holds_exactly_the_pinned_set(enclave_env: Path):
    listed = subprocess.run([str(enclave_env), "-m", "pip", "list", "--format=freeze", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout
    installed = {canonical_name(line.split("==")[0]): line.split("==")[1]
                 for line in listed.splitlines() if "==" in line}
    installed = {n: v for n, v in installed.items() if n not in ("pip", "setuptools", "wheel")}
    assert installed == _enclave_pins()


def test_every_enclave_module_imports_in_the_enclave_venv_and_nothing_else_does(enclave_env: Path, tmp_path: Path):
    """An import the pins do not cover (OpenTelemetry was once missing from the EIF) fails here."""
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "for other in " + repr(OTHER_FIRST_PARTY) + ":\n"
        "    try:\n"
        "        importlib.import_module(other)\n"
        "    except ImportError:\n"
        "        continue\n"
        "    raise SystemExit(f'{other} is importable in the enclave environment')\n"
    )
    run = subprocess.run([str(enclave_env), "-s", "-P", "-c", script, *_modules()],
                         capture_output=True, text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-1000:]


def test_a_module_needing_an_unpinned_package_fails_in_the_enclave_venv(enclave_env: Path, tmp_path: Path):
    """The check above can fail: the dev venv has onnx and moto, the enclave venv must not."""
    run = subprocess.run([str(enclave_env), "-s", "-P", "-c", "import onnx"], capture_output=True, text=True,
                         cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode != 0 and "No module named 'onnx'" in run.stderr
