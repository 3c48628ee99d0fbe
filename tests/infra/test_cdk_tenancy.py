"""Who holds the keys in the service stack: tenant-owned keys in prod, demo roles only in dev (issue 11 §2, §7, §8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ccc.cli import main as ccc_main
from cdk.application import build_app
from cdk.ccc_stack import DEMO_ROLES_WARNING_ID, TENANT_OWNED_KEYS_OUTPUT
from cdk.identities import DEMO_ROLE_TAG_VALUE, TAG_DEMO_ROLE
from cdk.key_change_alarm import KEY_MANAGEMENT_EVENTS
from cdk.stage_config import StageConfigError
from cdk.tenants import parse_tenants
from tests.infra.conftest import MEASUREMENTS_FIXTURE, PLACEHOLDER, PROD_TENANTS

ACCOUNT_ROOT = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}


def _trusts_account_root(role: dict[str, Any]) -> bool:
    for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
        principal = statement.get("Principal", {})
        trusted = principal.get("AWS") if isinstance(principal, dict) else principal
        if trusted == "*" or ACCOUNT_ROOT in (trusted if isinstance(trusted, list) else [trusted]):
            return True
    return False


def test_no_role_in_prod_trusts_the_account_root(prod: Any, prod_public: Any) -> None:
    for synth in (prod, prod_public):
        roles = synth.of_type("AWS::IAM::Role")
        assert roles
        assert not [name for name, role in roles.items() if _trusts_account_root(role)]
        assert synth.stack.identities.tenant_roles == {}
        assert synth.stack.keys.data_key is None  # no operator-run key by default in prod


def test_dev_demo_roles_trust_the_root_and_are_tagged_and_warned_about(dev: Any) -> None:
    demo = [r for r in dev.of_type("AWS::IAM::Role").values() if _trusts_account_root(r)]
    assert demo
    for role in demo:
        tags = {t["Key"]: t["Value"] for t in role["Properties"]["Tags"]}
        assert tags[TAG_DEMO_ROLE] == DEMO_ROLE_TAG_VALUE
    metadata = json.loads((dev.outdir / f"{dev.stack.stack_name}.metadata.json").read_text())
    warnings = [e["data"] for entries in metadata.values() for e in entries if e["type"] == "aws:cdk:warning"]
    assert any(DEMO_ROLES_WARNING_ID in w and "trust this account's root" in w for w in warnings), warnings


@pytest.mark.parametrize(
    ("context", "says"),
    [
        ({"stage": "prod", "demo_tenants": "demo"}, "never in prod"),
        ({"stage": "dev", "operator_key": "false"}, "demo_tenants use the operator-run key"),
        ({"stage": "dev", "operator_key": "maybe"}, "true or false"),
        ({"stage": "dev", "tenants": "acme,globex"}, "JSON list"),
        ({"stage": "dev", "tenants": json.dumps([{**PROD_TENANTS[0], "name": "demo"}])}, "own key"),
    ],
)
def test_unsafe_tenancy_is_refused_at_synth(context: dict[str, Any], says: str, tmp_path: Path) -> None:
    measurements = str(PLACEHOLDER if context["stage"] == "dev" else MEASUREMENTS_FIXTURE)
    with pytest.raises(StageConfigError, match=says):
        build_app({"measurements": measurements, **context}, outdir=str(tmp_path))


@pytest.mark.parametrize(
    ("tenant", "says"),
    [
        ({**PROD_TENANTS[0], "key_arn": PROD_TENANTS[1]["key_arn"]}, "not in the tenant's account"),
        ({**PROD_TENANTS[0], "key_arn": "arn:aws:kms:us-east-1:111111111111:alias/acme"}, "not a KMS key ARN"),
        ({**PROD_TENANTS[0], "principals": []}, "no principals"),
        ({**PROD_TENANTS[0], "principals": ["arn:aws:iam::111111111111:group/g"]}, "not an IAM role"),
        ({**PROD_TENANTS[0], "account": "1111"}, "12 digits"),
        ({**PROD_TENANTS[0], "name": "Acme"}, "tenant"),
        ({**PROD_TENANTS[0], "extra": 1}, "exactly name, account, key_arn, principals"),
    ],
)
def test_malformed_tenants_are_refused(tenant: dict[str, Any], says: str) -> None:
    with pytest.raises(StageConfigError, match=says):
        parse_tenants(json.dumps([tenant]))


def test_one_principal_cannot_act_for_two_tenants() -> None:
    shared = {**PROD_TENANTS[1], "principals": PROD_TENANTS[0]["principals"]}
    with pytest.raises(StageConfigError, match="listed for tenants"):
        parse_tenants([PROD_TENANTS[0], shared])


def test_prod_jobs_api_maps_each_tenants_own_principals(prod: Any) -> None:
    function = prod.stack.orchestration.functions["jobs_api"]
    variables = prod.resources[prod.logical_id(function)]["Properties"]["Environment"]["Variables"]
    mapping = json.loads(variables["CCC_TENANT_PRINCIPALS"])
    assert mapping == {t["name"]: t["principals"] for t in PROD_TENANTS}


def test_prod_outputs_name_no_operator_key(prod: Any) -> None:
    outputs = prod.template["Outputs"]
    assert outputs["DataKeyArn"]["Value"] == TENANT_OWNED_KEYS_OUTPUT
    assert outputs["TenantRoles"]["Value"] == "{}"


def test_the_service_keys_raise_an_alarm_on_management_calls(synth: Any) -> None:
    rules = synth.of_type("AWS::Events::Rule").values()
    (rule,) = [r for r in rules if r["Properties"].get("EventPattern", {}).get("source") == ["aws.kms"]]
    pattern = rule["Properties"]["EventPattern"]
    assert set(pattern["detail"]["eventName"]) == set(KEY_MANAGEMENT_EVENTS)
    watched = pattern["detail"]["resources"]["ARN"]
    keys = [synth.stack.keys.storage_key] + ([synth.stack.keys.data_key] if synth.stack.keys.data_key else [])
    assert sorted(json.dumps(w) for w in watched) == sorted(
        json.dumps({"Fn::GetAtt": [synth.logical_id(k), "Arn"]}) for k in keys
    )
    assert synth.logical_id(synth.stack.observability.key_change.alarm) in synth.of_type("AWS::CloudWatch::Alarm")
    if synth.stage == "prod":
        (topic_id,) = synth.of_type("AWS::SNS::Topic")
        assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Ref": topic_id}]


def test_the_projects_own_service_templates_lint_clean(any_mode: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Only data keys are linted (the storage key is tagged ccc:data-key=none): dev's operator-run
    key lints clean with the expected PCRs; prod has no data key of its own."""
    synth = any_mode
    pcrs = [f"--pcr={i}={v}" for i, v in synth.stack.inputs.measurements.pcrs.items()]
    assert ccc_main(["key-policy", "lint", str(synth.template_path), *pcrs]) == 0
    out = capsys.readouterr().out
    assert "StorageKey" not in out
    if synth.stack.keys.data_key is not None:
        assert f"{synth.logical_id(synth.stack.keys.data_key)}: clean" in out
    else:
        assert "no data key" in out


def test_prod_api_admits_exactly_the_tenants_principals_to_the_job_methods(prod: Any) -> None:
    (api,) = prod.of_type("AWS::ApiGateway::RestApi").values()
    (statement,) = api["Properties"]["Policy"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    assert statement["Principal"]["AWS"] == sorted(p for t in PROD_TENANTS for p in t["principals"])
    assert statement["Resource"] == [
        "execute-api:/prod/POST/jobs",
        "execute-api:/prod/GET/jobs",
        "execute-api:/prod/GET/jobs/*",
    ]


def test_dev_api_without_tenant_owned_keys_has_no_resource_policy(dev: Any) -> None:
    (api,) = dev.of_type("AWS::ApiGateway::RestApi").values()
    assert "Policy" not in api["Properties"]
