"""`ccc --help` documents the exit statuses, and the commands return exactly those (issue 13 §4).

"No stack" exited 2 from `ccc submit`/`ccc result` and 1 from `ccc local env`/`ccc fleet status`;
every case below is one a script branches on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import ccc.local.stack
from ccc.cli import build_parser, main
from ccc.cli.exit_codes import DOCUMENTED, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED

JOB_ID = "a" * 32
OPEN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}],
}


def documented_codes() -> dict[int, str]:
    """The codes `ccc --help` lists: a line per code, indented, then the meaning."""
    epilog = build_parser().format_help().split("exit status (every command):", 1)[1]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^  (\d+)\s+(\S.*)$", epilog, re.MULTILINE)}


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code or 0)


def test_help_documents_every_code_the_commands_use() -> None:
    assert sorted(documented_codes()) == sorted(DOCUMENTED)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "no-stack"
    empty.mkdir()
    corrupted = tmp_path / "corrupted"
    corrupted.mkdir()
    (corrupted / "stack.json").write_text('{"schema_version": 1, "foo": 1}')
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    open_policy = tmp_path / "open.json"
    open_policy.write_text(json.dumps(OPEN_POLICY))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return {
        "empty": empty,
        "corrupted": corrupted,
        "deep": deep,
        "open": open_policy,
        "file": a_file,
        "no-trust": tmp_path / "missing-trust.json",
    }


CASES: list[tuple[str, list[str], int]] = [
    ("no stack: local env", ["local", "env", "--state-dir", "{empty}"], EXIT_REFUSED),
    ("no stack: fleet status", ["fleet", "status", "--state-dir", "{empty}"], EXIT_REFUSED),
    ("unusable stack.json: local env", ["local", "env", "--state-dir", "{corrupted}"], EXIT_REFUSED),
    ("unusable stack.json: fleet status", ["fleet", "status", "--state-dir", "{corrupted}"], EXIT_REFUSED),
    (
        "no stack, no trust file: submit",
        ["submit", "--state-dir", "{empty}", "--trust", "{no-trust}", "{open}"],
        EXIT_REFUSED,
    ),
    (
        "no stack, no trust file: result",
        ["result", "--state-dir", "{empty}", "--trust", "{no-trust}", JOB_ID],
        EXIT_REFUSED,
    ),
    ("state dir is a file", ["local", "env", "--state-dir", "{file}"], EXIT_REFUSED),
    ("timeout nan", ["result", "--timeout", "nan", JOB_ID], EXIT_REFUSED),
    ("negative timeout", ["submit", "--timeout", "-1", "{open}"], EXIT_REFUSED),
    ("empty tenant", ["result", "--tenant", "", JOB_ID], EXIT_REFUSED),
    ("deep JSON to lint", ["key-policy", "lint", "{deep}"], EXIT_REFUSED),
    ("key-policy findings", ["key-policy", "lint", "{open}"], EXIT_FAILED),
    ("nothing to stop", ["local", "down", "--state-dir", "{empty}"], EXIT_OK),
]


@pytest.mark.parametrize(("what", "argv", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_outcome_returns_its_documented_code(
    what: str, argv: list[str], expected: int, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run([arg.format(**{k: str(v) for k, v in files.items()}) for arg in argv])
    assert code == expected, what
    assert code in documented_codes()
    err = capsys.readouterr().err.strip().splitlines()
    if code == EXIT_REFUSED:  # (findings and failed jobs are reports on stdout, not errors)
        assert err and "Traceback" not in "\n".join(err), what
        assert len([line for line in err if not line.startswith(("usage:", " "))]) == 1, err  # one line


def test_an_interrupted_command_returns_130(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(ccc.local.stack, "stop_stack", interrupted)
    assert run(["local", "down", "--state-dir", str(files["empty"])]) == EXIT_INTERRUPTED
