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


# Issue 13 §4: each of these printed a traceback (or read a huge file whole).
@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"AWSTemplateFormatVersion: '2010-09-09'\nResources: {}\n", "YAML template"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
    ],
    ids=["deep", "yaml", "broken", "not-utf8"],
)
def test_unreadable_inputs_end_in_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, says: str
) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)
    assert main(["key-policy", "lint", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err


def test_a_huge_file_is_refused_without_reading_it_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as sparse:  # 200 MB, sparse: costs no disk
        sparse.truncate(200 * 1024 * 1024)
    assert main(["key-policy", "lint", str(path)]) == 2
    assert "larger than" in capsys.readouterr().err


@pytest.mark.parametrize("properties", [None, "a string", 5])
def test_a_key_whose_properties_are_not_an_object_is_a_finding_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], properties: object
) -> None:
    path = tmp_path / "template.json"
    path.write_text(json.dumps({"Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": properties}}}))
    assert main(["key-policy", "lint", str(path)]) == 1
    assert "Key: 1 finding(s)" in capsys.readouterr().out


# Issue 11 §8: only data keys are linted; a tenant key gets the tenant rules.
STORAGE_KEY_POLICY = {  # an ordinary SSE key: IAM delegation, which the data-key rules rightly flag
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}
    ]
}


def _key(policy: dict, tag: str | None = None) -> dict:
    properties: dict = {"KeyPolicy": policy}
    if tag is not None:
        properties["Tags"] = [{"Key": "ccc:project", "Value": "ccc"}, {"Key": "ccc:data-key", "Value": tag}]
    return {"Type": "AWS::KMS::Key", "Properties": properties}


def test_only_keys_tagged_as_data_keys_are_linted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "template.json"
    template.write_text(
        json.dumps({"Resources": {"DataKey": _key(POLICY, "operator-demo"), "StorageKey": _key(STORAGE_KEY_POLICY)}})
    )
    assert main(["key-policy", "lint", str(template)]) == 0
    out = capsys.readouterr().out
    assert "DataKey: clean" in out and "StorageKey" not in out
    assert main(["key-policy", "lint", str(template), "--key", "StorageKey"]) == 1


def test_several_untagged_keys_need_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"Resources": {"A": _key(POLICY), "B": _key(STORAGE_KEY_POLICY)}}))
    assert main(["key-policy", "lint", str(template)]) == 2
    err = capsys.readouterr().err
    assert "--key" in err and len(err.strip().splitlines()) == 1
    assert main(["key-policy", "lint", str(template), "--key", "A"]) == 0
    assert main(["key-policy", "lint", str(template), "--key", "C"]) == 2
    assert "no AWS::KMS::Key C" in capsys.readouterr().err


def test_a_key_tagged_as_a_tenant_key_gets_the_tenant_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The operator-run policy names the operator account's root: fine for the demo key, not for a tenant's.
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"Resources": {"TenantKey": _key(POLICY, "tenant:acme")}}))
    assert main(["key-policy", "lint", str(template), "--json"]) == 1
    rules = {f["rule"] for f in json.loads(capsys.readouterr().out)["TenantKey"]}
    assert "operator_principal" in rules


def test_a_template_whose_keys_are_all_tagged_none_has_nothing_to_lint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The service stack with tenant-owned keys holds only its storage key (tagged ccc:data-key=none)."""
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"Resources": {"StorageKey": _key(STORAGE_KEY_POLICY, "none")}}))
    assert main(["key-policy", "lint", str(template)]) == 0
    assert "no data key" in capsys.readouterr().out
