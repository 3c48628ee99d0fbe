"""The tenant app (`tenant_app.py`, `CccTenant`): the tenant's own key, alarmed, cdk-nag/cfn-lint/lint clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ccc.cli import main as ccc_main
from ccc_common.domain.key_policy import ApprovedRelease, build_tenant_key_policy, releases_from_key_policy
from cdk.key_change_alarm import KEY_MANAGEMENT_EVENTS
from cdk.tenant_stack import TenantConfigError, build_tenant_app, tenant_inputs_from_context
from tests.infra.cfn_lint import cfn_lint_errors
from tests.infra.iam_helpers import normalise

TENANT_ACCOUNT = "111111111111"
OPERATOR_ACCOUNT = "222222222222"
PARENT = f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/ccc-parent"
CLIENT = f"arn:aws:iam::{TENANT_ACCOUNT}:role/acme-client"
RELEASES: list[dict[str, Any]] = [
    {"id": "2026-12-01", "pcrs": {"0": "a1" * 48, "1": "a2" * 48, "2": "a3" * 48}},
    {"id": "2026-12-04", "pcrs": {"0": "b1" * 48, "1": "a2" * 48, "2": "a3" * 48}},
]
CONTEXT = {
    "tenant": "acme",
    "account": TENANT_ACCOUNT,
    "region": "eu-west-1",
    "principals": CLIENT,
    "key_admins": f"arn:aws:iam::{TENANT_ACCOUNT}:role/acme-key-admin",
    "parent_roles": PARENT,
    "releases": json.dumps(RELEASES),
    "notify": "security@acme.example",
}


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Any:
    outdir = tmp_path_factory.mktemp("cdk-tenant")
    app, stack = build_tenant_app(CONTEXT, outdir=str(outdir))
    app.synth()  # raises on any cdk-nag finding: the tenant app acknowledges none
    path = outdir / f"{stack.stack_name}.template.json"
    return stack, json.loads(path.read_text()), path, outdir


def _of_type(template: dict, cfn_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == cfn_type}


def _data_key(template: dict) -> tuple[str, dict]:
    keys = {
        k: v
        for k, v in _of_type(template, "AWS::KMS::Key").items()
        if {"Key": "ccc:data-key", "Value": "tenant:acme"} in v["Properties"].get("Tags", [])
    }
    ((logical_id, key),) = keys.items()
    return logical_id, key["Properties"]


def test_the_key_policy_is_the_shared_builders_verbatim(tenant: Any) -> None:
    stack, template, _path, _out = tenant
    _id, key = _data_key(template)
    assert normalise(key["KeyPolicy"]) == normalise(build_tenant_key_policy(stack.inputs.spec))
    assert key["EnableKeyRotation"] is True
    expected = tuple(
        ApprovedRelease(str(r["id"]), {int(i): str(v) for i, v in dict(r["pcrs"]).items()}) for r in RELEASES
    )
    assert releases_from_key_policy(key["KeyPolicy"]) == expected


def test_the_stack_lives_in_the_tenants_account_and_keeps_the_key(tenant: Any) -> None:
    stack, template, _path, _out = tenant
    assert stack.account == TENANT_ACCOUNT
    key_id, _key = _data_key(template)
    assert template["Resources"][key_id]["DeletionPolicy"] == "Retain"


def test_key_management_calls_on_the_key_raise_an_alarm_and_notify(tenant: Any) -> None:
    _stack, template, _path, _out = tenant
    key_id, _key = _data_key(template)
    ((rule_id, rule),) = _of_type(template, "AWS::Events::Rule").items()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.kms"] and pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    for event in ("PutKeyPolicy", "CreateGrant", "ScheduleKeyDeletion", "DisableKey"):
        assert event in pattern["detail"]["eventName"]
    assert set(pattern["detail"]["eventName"]) == set(KEY_MANAGEMENT_EVENTS)
    assert pattern["detail"]["resources"]["ARN"] == [{"Fn::GetAtt": [key_id, "Arn"]}]
    (topic_id,) = _of_type(template, "AWS::SNS::Topic")
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Ref": topic_id}]
    (alarm,) = _of_type(template, "AWS::CloudWatch::Alarm").values()
    (metric,) = alarm["Properties"]["Metrics"]
    assert metric["MetricStat"]["Metric"]["MetricName"] == "TriggeredRules"
    assert metric["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule_id}}]
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    (subscription,) = _of_type(template, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == "security@acme.example"


def test_the_synthesised_tenant_template_lints_clean(tenant: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The notification key is not tagged as a data key, so only the data key gets the data-key rules."""
    _stack, template, path, _out = tenant
    key_id, _key = _data_key(template)
    assert ccc_main(["key-policy", "lint", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{key_id}: clean" in out and "NotificationKey" not in out


def test_cdk_nag_ran_and_found_nothing(tenant: Any) -> None:
    _stack, _template, _path, outdir = tenant
    assert json.loads((outdir / "validation-report.json").read_text())["pluginReports"] == []


def test_cfn_lint_finds_no_errors(tenant: Any, tmp_path: Path) -> None:
    _stack, _template, path, _out = tenant
    errors = cfn_lint_errors(path, tmp_path)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"account": OPERATOR_ACCOUNT}, "operator's"),
        ({"principals": f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/TenantRole-acme"}, "operator's account"),
        ({"parent_roles": ""}, "missing context"),
        ({"releases": ""}, "no approved release"),
        ({"releases": "not json"}, "not JSON"),
        ({"releases": json.dumps([{"id": "x", "pcrs": {"zero": "a1" * 48}}])}, "integers"),
        ({"pcr0": "a1" * 48}, "not both"),
        ({"notify": "not-an-address"}, "e-mail"),
    ],
)
def test_unsafe_tenant_context_is_one_line_error(overrides: dict, says: str) -> None:
    with pytest.raises(TenantConfigError, match=says):
        tenant_inputs_from_context({**CONTEXT, **overrides})


def test_tenant_app_prints_one_line_on_bad_context(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    context = json.dumps({**CONTEXT, "account": OPERATOR_ACCOUNT})
    result = subprocess.run(
        [sys.executable, "tenant_app.py"],
        cwd=repo,
        env={"PATH": "/usr/bin:/bin", "CDK_CONTEXT_JSON": context, "CDK_OUTDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
