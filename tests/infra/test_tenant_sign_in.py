"""Browser sign-in in the tenant's own stack (`CccTenant` with web_url; cdk/tenant_sign_in.py).

What a tenant relies on: nobody gets credentials without signing in to ITS user pool (no
unauthenticated identities, no self sign-up, MFA); the page's client can only do the code grant
(PKCE in the page), no secret, no implicit flow; the web user role can be assumed only through
THIS identity pool by an authenticated identity, may do exactly what the CLI principal may do (the
same builders), and can use the key only under the tenant's own context. The template is cdk-nag
and cfn-lint clean, and the operator can admit the role to the jobs API as one of the tenant's
principals.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ccc.cli import main as ccc_main
from ccc.local.kms.policy_eval import RequestContext, evaluate
from ccc_common.contracts.stack_outputs import OUTPUT_WEB_USER_ROLE_ARN, SIGN_IN_PAGE_CONFIG
from ccc_common.domain.iam_policies import tenant_policy
from ccc_common.domain.jobs_api import TenantDirectory
from ccc_common.domain.key_policy import build_tenant_key_policy
from cdk.nag_acknowledgements import TENANT_SIGN_IN_ACKNOWLEDGEMENTS
from cdk.tenant_sign_in import SignInConfigError
from cdk.tenant_stack import TenantConfigError, build_tenant_app, tenant_inputs_from_context
from cdk.tenants import parse_tenants
from tests.infra.cfn_lint import cfn_lint_errors
from tests.infra.iam_helpers import normalise

REPO = Path(__file__).resolve().parents[2]
TENANT_ACCOUNT = "111111111111"
OPERATOR_ACCOUNT = "222222222222"
PAGE = "https://d111111abcdef8.cloudfront.net/"
API_URL = "https://abcde12345.execute-api.eu-west-1.amazonaws.com/prod/"
WEB_ROLE = f"arn:aws:iam::{TENANT_ACCOUNT}:role/ccc-web-acme"
CLIENT = f"arn:aws:iam::{TENANT_ACCOUNT}:role/acme-client"
KEY_ARN = f"arn:aws:kms:eu-west-1:{TENANT_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CONTEXT = {
    "tenant": "acme",
    "account": TENANT_ACCOUNT,
    "region": "eu-west-1",
    "principals": CLIENT,
    "parent_roles": f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/ccc-parent",
    "pcr0": "a1" * 48,
    "web_url": PAGE,
    "api_url": API_URL,
}


@pytest.fixture(scope="module")
def signed_in(tmp_path_factory: pytest.TempPathFactory) -> Any:
    outdir = tmp_path_factory.mktemp("cdk-tenant-sign-in")
    app, stack = build_tenant_app(CONTEXT, outdir=str(outdir))
    app.synth()  # raises on any unacknowledged cdk-nag finding
    path = outdir / f"{stack.stack_name}.template.json"
    return stack, json.loads(path.read_text()), path, outdir


def _one(template: dict, cfn_type: str) -> tuple[str, dict]:
    ((logical_id, resource),) = [(k, v) for k, v in template["Resources"].items() if v["Type"] == cfn_type]
    return logical_id, resource


def _web_role(template: dict) -> tuple[str, dict]:
    ((logical_id, role),) = [
        (k, v)
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::IAM::Role" and v["Properties"].get("RoleName") == "ccc-web-acme"
    ]
    return logical_id, role


def _data_key(template: dict) -> tuple[str, dict]:
    ((logical_id, key),) = [
        (k, v)
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::KMS::Key"
        and {"Key": "ccc:data-key", "Value": "tenant:acme"} in v["Properties"].get("Tags", [])
    ]
    return logical_id, key


def test_the_identity_pool_has_no_unauthenticated_identities(signed_in: Any) -> None:
    _stack, template, _path, _out = signed_in
    pool_id, pool = _one(template, "AWS::Cognito::IdentityPool")
    props = pool["Properties"]
    assert props["AllowUnauthenticatedIdentities"] is False
    assert props["AllowClassicFlow"] is False  # no basic flow: the role is chosen by the pool, not the caller
    (provider,) = props["CognitoIdentityProviders"]
    assert provider["ServerSideTokenCheck"] is True
    assert "SupportedLoginProviders" not in props and "OpenIdConnectProviderARNs" not in props
    _att, attachment = _one(template, "AWS::Cognito::IdentityPoolRoleAttachment")
    assert attachment["Properties"]["IdentityPoolId"] == {"Ref": pool_id}
    assert set(attachment["Properties"]["Roles"]) == {"authenticated"}  # no unauthenticated role at all


def test_the_page_client_is_public_code_grant_only_to_the_page(signed_in: Any) -> None:
    _stack, template, _path, _out = signed_in
    _id, client = _one(template, "AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    assert props["GenerateSecret"] is False
    assert props["AllowedOAuthFlows"] == ["code"]  # no implicit, no client credentials
    assert props["AllowedOAuthScopes"] == ["openid"]
    assert props["CallbackURLs"] == [PAGE] and props["LogoutURLs"] == [PAGE]
    assert props["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]  # no password sent to InitiateAuth
    assert props["SupportedIdentityProviders"] == ["COGNITO"]
    assert props["EnableTokenRevocation"] is True
    assert props["PreventUserExistenceErrors"] == "ENABLED"


def test_the_user_pool_admits_only_admin_created_users_with_totp_and_strong_passwords(signed_in: Any) -> None:
    _stack, template, _path, _out = signed_in
    _id, pool = _one(template, "AWS::Cognito::UserPool")
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert props["MfaConfiguration"] == "ON" and props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    policy = props["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 14
    assert all(policy[k] for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"))
    assert props["DeletionProtection"] == "ACTIVE"
    assert pool["DeletionPolicy"] == "Retain" and pool["UpdateReplacePolicy"] == "Retain"
    _d, domain = _one(template, "AWS::Cognito::UserPoolDomain")
    assert domain["Properties"]["Domain"] == f"ccc-acme-{TENANT_ACCOUNT}"
    # the classic hosted UI: it signs users in without a password API flow on the client (managed login would not)
    assert domain["Properties"]["ManagedLoginVersion"] == 1


def test_only_authenticated_identities_of_this_identity_pool_can_assume_the_web_role(signed_in: Any) -> None:
    _stack, template, _path, _out = signed_in
    pool_id, _pool = _one(template, "AWS::Cognito::IdentityPool")
    _id, role = _web_role(template)
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow"
    assert trust["Principal"] == {"Federated": "cognito-identity.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"] == {
        "StringEquals": {"cognito-identity.amazonaws.com:aud": {"Ref": pool_id}},
        "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
    }
    assert role["Properties"]["MaxSessionDuration"] == 3600


def test_the_web_role_may_do_what_the_cli_principal_may_do_from_the_shared_builders(signed_in: Any) -> None:
    stack, template, _path, _out = signed_in
    _id, role = _web_role(template)
    (policy,) = role["Properties"]["Policies"]
    settings = stack.inputs.sign_in
    assert normalise(policy["PolicyDocument"]) == normalise(tenant_policy("acme", settings.api.policy_resources("aws")))
    assert "ManagedPolicyArns" not in role["Properties"]
    actions = [a for s in policy["PolicyDocument"]["Statement"] for a in json.dumps(s["Action"]).split('"')]
    assert not [a for a in actions if a.startswith("kms:")]  # the key policy is the only KMS grant
    resources = json.dumps(policy["PolicyDocument"])
    assert "arn:aws:execute-api:eu-west-1:222222222222:abcde12345/prod/POST/jobs" in resources


def test_the_web_role_is_a_tenant_principal_of_the_key_policy_built_by_the_shared_builder(signed_in: Any) -> None:
    stack, template, path, _out = signed_in
    key_id, key = _data_key(template)
    spec = stack.inputs.spec
    assert spec.tenant_principals == (CLIENT, WEB_ROLE)
    assert normalise(key["Properties"]["KeyPolicy"]) == normalise(build_tenant_key_policy(spec))
    role_id, _role = _web_role(template)
    assert role_id in key["DependsOn"]  # KMS refuses a policy naming a role that does not exist yet
    assert ccc_main(["key-policy", "lint", str(path)]) == 0


@pytest.mark.parametrize(
    ("action", "context", "allowed"),
    [
        ("kms:Encrypt", {"ccc:tenant": "acme", "ccc:job": "j1"}, True),
        ("kms:GenerateDataKey", {"ccc:tenant": "acme", "ccc:job": "j1"}, True),
        ("kms:Decrypt", {"ccc:tenant": "acme", "ccc:job": "j1", "ccc:kind": "result"}, True),
        ("kms:Encrypt", {"ccc:tenant": "globex", "ccc:job": "j1"}, False),  # another tenant's context
        ("kms:Encrypt", {"ccc:tenant": "acme", "ccc:job": "j1", "ccc:kind": "result"}, False),  # forge a result
        ("kms:Decrypt", {"ccc:tenant": "acme", "ccc:job": "j1"}, False),  # decrypt an input
        ("kms:Decrypt", {"ccc:tenant": "globex", "ccc:job": "j1", "ccc:kind": "result"}, False),
        ("kms:Encrypt", {}, False),
        ("kms:CreateGrant", {"ccc:tenant": "acme", "ccc:job": "j1"}, False),
        ("kms:PutKeyPolicy", {}, False),
    ],
)
def test_the_web_role_uses_the_key_only_under_the_tenants_context(
    signed_in: Any, action: str, context: dict[str, str], allowed: bool
) -> None:
    _stack, template, _path, _out = signed_in
    _id, key = _data_key(template)
    request = RequestContext(
        principal_arn=WEB_ROLE,
        caller_account=TENANT_ACCOUNT,
        action=action,
        resource_arn=KEY_ARN,
        encryption_context=context,
    )
    assert evaluate(key["Properties"]["KeyPolicy"], request).allowed is allowed


def test_the_page_config_outputs_are_named_once_and_read_by_the_page(signed_in: Any) -> None:
    _stack, template, _path, _out = signed_in
    assert set(SIGN_IN_PAGE_CONFIG) | {OUTPUT_WEB_USER_ROLE_ARN} <= set(template["Outputs"])
    assert template["Outputs"]["SignInDomain"]["Value"] == f"ccc-acme-{TENANT_ACCOUNT}.auth.eu-west-1.amazoncognito.com"
    page_config = (REPO / "web" / "src" / "app" / "config.ts").read_text()
    for field in SIGN_IN_PAGE_CONFIG.values():
        assert re.search(rf"\b{field}\b", page_config), f"web/src/app/config.ts does not read {field}"


def test_cdk_nag_is_clean_and_every_sign_in_acknowledgement_applies(signed_in: Any) -> None:
    stack, template, _path, outdir = signed_in
    assert json.loads((outdir / "validation-report.json").read_text())["pluginReports"] == []
    assert stack.sign_in is not None
    applied = stack.sign_in.acknowledge_findings(tenant="acme", settings=stack.inputs.sign_in, partition="aws")
    assert len(applied) == len(TENANT_SIGN_IN_ACKNOWLEDGEMENTS)
    for ack in TENANT_SIGN_IN_ACKNOWLEDGEMENTS:
        assert len(ack.reason.split()) >= 8


def test_cfn_lint_finds_no_errors(signed_in: Any, tmp_path: Path) -> None:
    _stack, _template, path, _out = signed_in
    errors = cfn_lint_errors(path, tmp_path)
    assert not errors, "\n".join(errors)


def test_without_a_web_url_or_with_sign_in_off_there_is_no_sign_in() -> None:
    assert tenant_inputs_from_context({k: v for k, v in CONTEXT.items() if k != "web_url"}).sign_in is None
    off = tenant_inputs_from_context({**CONTEXT, "sign_in": "false"})
    assert off.sign_in is None and off.spec.tenant_principals == (CLIENT,)
    web_only = tenant_inputs_from_context({k: v for k, v in CONTEXT.items() if k != "principals"})
    assert web_only.spec.tenant_principals == (WEB_ROLE,)  # a tenant may use the page only


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"web_url": "http://d111111abcdef8.cloudfront.net/"}, "https"),
        ({"web_url": "https://page.example/?next=evil"}, "no query"),
        ({"api_url": ""}, "needs api_url"),
        ({"api_url": "https://example.com/prod/"}, "ApiUrl"),
        ({"api_url": "https://abcde12345.execute-api.us-east-1.amazonaws.com/prod/"}, "deploy it there"),
        ({"sign_in_domain": "my-aws-login"}, "domain prefix"),
        ({"sign_in_domain": "Upper"}, "domain prefix"),
        ({"sign_in": "maybe"}, "true or false"),
        ({"tenant": "a" * 60}, "too long"),
        (
            {"parent_roles": f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/p,arn:aws:iam::333333333333:role/p"},
            "2 accounts",
        ),
    ],
)
def test_unusable_sign_in_context_is_one_line_error(overrides: dict, says: str) -> None:
    with pytest.raises((SignInConfigError, TenantConfigError), match=says):
        tenant_inputs_from_context({**CONTEXT, **overrides})


def test_the_operator_admits_the_web_role_as_a_tenant_principal_and_its_sessions_map_to_the_tenant() -> None:
    """The service side: `tenants` accepts the role's ARN as a principal, and the jobs API maps the
    Cognito session (assumed-role/ccc-web-acme/CognitoIdentityCredentials) to the tenant."""
    (tenant,) = parse_tenants(
        json.dumps([{"name": "acme", "account": TENANT_ACCOUNT, "key_arn": KEY_ARN, "principals": [CLIENT, WEB_ROLE]}])
    )
    directory = TenantDirectory({arn: tenant.name for arn in tenant.principals})
    session = f"arn:aws:sts::{TENANT_ACCOUNT}:assumed-role/ccc-web-acme/CognitoIdentityCredentials"
    assert directory.tenant_for(session) == "acme"
    other = f"arn:aws:sts::{TENANT_ACCOUNT}:assumed-role/ccc-web-globex/CognitoIdentityCredentials"
    with pytest.raises(Exception, match="not mapped"):
        directory.tenant_for(other)
