"""`ccc key-policy lint` on policies and CloudFormation templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccc.cli import main
from ccc_common.domain.key_policy import KeyPolicySpec, build_key_policy

PCR0 = "5a" * 48
POLICY = build_key_policy(
    KeyPolicySpec(
        account_id="111122223333",
        parent_role_arns=("arn:aws:iam::111122223333:role/parent",),
        pcrs={0: PCR0},
    )
)


def _template(policy: dict) -> dict:
    return {
        "Resources": {
            "DataKey": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy}},
            "Bucket": {"Type": "AWS::S3::Bucket"},
        }
    }


def test_clean_policy_and_template_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(POLICY))
    assert main(["key-policy", "lint", str(policy_file), "--pcr", f"0={PCR0}"]) == 0
    template = tmp_path / "template.json"
    template.write_text(json.dumps(_template(POLICY)))
    assert main(["key-policy", "lint", str(template)]) == 0
    assert "DataKey: clean" in capsys.readouterr().out


def test_findings_exit_one_and_name_the_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "template.json"
    template.write_text(json.dumps(_template(POLICY)))
    assert main(["key-policy", "lint", str(template), "--pcr", f"0={'6b' * 48}", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [f["rule"] for f in report["DataKey"]] == ["pcr_mismatch"]


def test_unreadable_input_exits_two(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    assert main(["key-policy", "lint", str(missing)]) == 2
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"Resources": {}}))
    assert main(["key-policy", "lint", str(empty)]) == 2
