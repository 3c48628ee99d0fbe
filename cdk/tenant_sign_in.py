"""Sign-in for the browser client on AWS, in the TENANT's own stack: a Cognito user pool, a public
app client (authorization code + PKCE only), a hosted-UI domain, and an identity pool whose only
role, the *web user role*, may do what the tenant's CLI principal may do.

Why in `CccTenant` and not in the operator's service stack: whoever owns the user pool decides who
signs in, and whoever owns the identity pool's role decides what a signed-in user may do with the
tenant's key. Both live in the tenant's account, next to the key, so the operator can mint neither
users nor credentials. The operator only learns the web role's ARN (a tenant principal, like the
CLI's role) and admits it to the jobs API (`tenants` context of the service app, cdk/tenants.py).

What the web user role may do is built by the SAME functions that build the CLI principal's rights:
`ccc_common.domain.iam_policies.tenant_policy` (jobs API, its own inbox and results prefixes) as its
identity policy, and `build_tenant_key_policy` (the role is one of the key policy's tenant
principals: encrypt inputs and decrypt results of this tenant only). No second copy of either.

Choices (docs/web.md says why, in more words):
* MFA required, TOTP only: the role's credentials decrypt every result of the tenant; a password
  alone is the weakest way in, and SMS needs an SNS role, costs per message and can be redirected.
* no self sign-up: any user of the pool gets the tenant's rights; the tenant's admin creates users.
* passwords of 14+ characters with every character class; temporary passwords live 3 days.
* the user pool is retained and deletion-protected: its users are the tenant's, not the stack's.
* the app client has no secret (a page cannot keep one), only the authorization-code grant (no
  implicit flow), `openid` only, callback and logout URL = the page's URL; the page always uses
  PKCE S256 (Cognito cannot be told to refuse a code request without it; see docs/web.md).
* the identity pool has no unauthenticated identities and no classic (basic) flow; the role's
  trust policy names this identity pool (`aud`) and authenticated identities only (`amr`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from constructs import Construct

from ccc_common.contracts.stack_outputs import (
    OUTPUT_SIGN_IN_CLIENT_ID,
    OUTPUT_SIGN_IN_DOMAIN,
    OUTPUT_SIGN_IN_IDENTITY_POOL_ID,
    OUTPUT_SIGN_IN_USER_POOL_ID,
    OUTPUT_WEB_USER_ROLE_ARN,
)
from ccc_common.domain.iam_policies import PolicyResources, resources_for_names, tenant_policy
from ccc_common.domain.naming import resource_names
from cdk.errors import CdkAppError
from cdk.nag_acknowledgements import TENANT_SIGN_IN_ACKNOWLEDGEMENTS, Ack, apply_acknowledgements

COGNITO_IDENTITY = "cognito-identity.amazonaws.com"
WEB_ROLE_PREFIX = "ccc-web-"
MAX_ROLE_NAME = 64
SESSION = Duration.hours(1)  # Cognito's enhanced flow hands out credentials for one hour at most
REFRESH_TOKEN_VALIDITY = Duration.hours(12)  # a working day; the page keeps it in sessionStorage only
CONSTRUCT_ID = "SignIn"

# The service's jobs API URL, as its stack output ApiUrl gives it.
_API_URL = re.compile(
    r"^https://([a-z0-9]{10})\.execute-api\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com/([a-z0-9-]+)/?$"
)
# Cognito: lower-case letters, digits and hyphens, not starting or ending with a hyphen, and no
# reserved word (the service refuses "aws", "amazon" and "cognito" in a prefix domain).
_DOMAIN_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_RESERVED = ("aws", "amazon", "cognito")
_PAGE_URL = re.compile(r"^(https://[A-Za-z0-9.-]+(?::\d{1,5})?|http://localhost(?::\d{1,5})?)(/[^\s?#]*)?$")


class SignInConfigError(CdkAppError, ValueError):
    """A sign-in context value that would make an unusable or unsafe sign-in."""


@dataclass(frozen=True)
class ServiceApi:
    """The service's jobs API, from its ApiUrl output: what the web role may invoke."""

    api_id: str
    region: str
    stage: str
    account: str  # the operator's account (the parent role's)

    def policy_resources(self, partition: str) -> PolicyResources:
        """The ARNs the shared tenant policy names: the service's resources, named as it names them."""
        return resources_for_names(
            resource_names(self.stage, self.account, self.region), partition=partition, api_id=self.api_id
        )


@dataclass(frozen=True)
class SignInSettings:
    page_url: str  # the page's exact URL: the only callback and logout URL
    domain_prefix: str  # <prefix>.auth.<region>.amazoncognito.com
    api: ServiceApi

    def web_role_arn(self, partition: str, account: str, tenant: str) -> str:
        return f"arn:{partition}:iam::{account}:role/{web_role_name(tenant)}"


def web_role_name(tenant: str) -> str:
    """A fixed name, so that the key policy (built before any token exists) can name the role."""
    name = f"{WEB_ROLE_PREFIX}{tenant}"
    if len(name) > MAX_ROLE_NAME:
        raise SignInConfigError(
            f"tenant id {tenant!r} is too long for the web role's name {name!r} ({MAX_ROLE_NAME} characters at most)"
        )
    return name


def _enabled(value: object) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise SignInConfigError(f"context sign_in must be true or false, not {value!r}")


def parse_service_api(api_url: str, operator_accounts: tuple[str, ...]) -> ServiceApi:
    match = _API_URL.fullmatch(api_url.strip())
    if match is None:
        raise SignInConfigError(
            f"context api_url {api_url!r} is not the service's ApiUrl output "
            "(https://<id>.execute-api.<region>.amazonaws.com/<stage>/)"
        )
    if len(operator_accounts) != 1:
        raise SignInConfigError(
            f"the parent roles are in {len(operator_accounts)} accounts; sign-in needs the one account of the service"
        )
    api_id, region, stage = match.groups()
    return ServiceApi(api_id=api_id, region=region, stage=stage, account=operator_accounts[0])


def sign_in_settings_from_context(
    context: Mapping[str, Any], *, tenant: str, account: str, region: str | None, operator_accounts: tuple[str, ...]
) -> SignInSettings | None:
    """Sign-in is on when a web URL is given (`web_url`), unless `sign_in=false`; None when off."""
    web_url = str(context.get("web_url") or "").strip()
    if context.get("sign_in") not in (None, "") and not _enabled(context["sign_in"]):
        return None
    if not web_url:
        if context.get("sign_in") not in (None, ""):
            raise SignInConfigError("sign_in=true needs web_url (the page's URL: the only callback and logout URL)")
        return None
    if not _PAGE_URL.fullmatch(web_url):
        raise SignInConfigError(
            f"context web_url {web_url!r} is not the page's https URL (no query or fragment; http only for localhost)"
        )
    web_role_name(tenant)
    if not context.get("api_url"):
        raise SignInConfigError("sign-in needs api_url: the service's ApiUrl output (what the web role may call)")
    api = parse_service_api(str(context["api_url"]), operator_accounts)
    if region and api.region != region:
        raise SignInConfigError(f"the jobs API is in {api.region}, the tenant stack in {region}: deploy it there")
    prefix = str(context.get("sign_in_domain") or f"ccc-{tenant}-{account}").strip()
    if not _DOMAIN_PREFIX.fullmatch(prefix) or any(word in prefix for word in _RESERVED):
        raise SignInConfigError(
            f"sign_in_domain {prefix!r} is not a Cognito domain prefix (a-z, 0-9, '-', at most 63, "
            f"none of {', '.join(_RESERVED)})"
        )
    return SignInSettings(page_url=web_url, domain_prefix=prefix, api=api)


class TenantSignIn(Construct):
    """User pool, page client, hosted-UI domain, identity pool and web user role."""

    def __init__(
        self, scope: Construct, construct_id: str, *, tenant: str, partition: str, settings: SignInSettings
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"ccc-{tenant}",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True, username=False),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.client = self.user_pool.add_client(
            "PageClient",
            user_pool_client_name=f"ccc-{tenant}-page",
            generate_secret=False,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(
                    authorization_code_grant=True, implicit_code_grant=False, client_credentials=False
                ),
                scopes=[cognito.OAuthScope.OPENID],
                callback_urls=[settings.page_url],
                logout_urls=[settings.page_url],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=SESSION,
            access_token_validity=SESSION,
            refresh_token_validity=REFRESH_TOKEN_VALIDITY,
        )
        # Only the refresh grant through the API: users sign in on the hosted UI (with its MFA), never
        # by sending a password to InitiateAuth from a page. The classic hosted UI (pinned below) signs
        # users in whatever ExplicitAuthFlows says; managed login (version 2) would need a password flow.
        cfn_client = self.client.node.default_child
        assert isinstance(cfn_client, cognito.CfnUserPoolClient)
        cfn_client.explicit_auth_flows = ["ALLOW_REFRESH_TOKEN_AUTH"]
        self.domain = self.user_pool.add_domain(
            "HostedUi",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=settings.domain_prefix),
            managed_login_version=cognito.ManagedLoginVersion.CLASSIC_HOSTED_UI,
        )
        self.domain_name = f"{settings.domain_prefix}.auth.{stack.region}.amazoncognito.com"
        self.identity_pool = cognito.CfnIdentityPool(
            self,
            "IdentityPool",
            identity_pool_name=f"ccc_{tenant.replace('-', '_')}_web",
            allow_unauthenticated_identities=False,
            allow_classic_flow=False,
            cognito_identity_providers=[
                cognito.CfnIdentityPool.CognitoIdentityProviderProperty(
                    client_id=self.client.user_pool_client_id,
                    provider_name=self.user_pool.user_pool_provider_name,
                    server_side_token_check=True,  # a globally signed-out user's token is refused
                )
            ],
        )
        self.web_role = iam.Role(
            self,
            "WebUserRole",
            role_name=web_role_name(tenant),
            description=f"CCC tenant {tenant}: a user signed in to the browser client (the CLI principal's rights)",
            assumed_by=iam.FederatedPrincipal(
                COGNITO_IDENTITY,
                conditions=web_role_trust_conditions(self.identity_pool.ref),
                assume_role_action="sts:AssumeRoleWithWebIdentity",
            ),
            max_session_duration=SESSION,
            inline_policies={
                "TenantClient": iam.PolicyDocument.from_json(
                    tenant_policy(tenant, settings.api.policy_resources(partition))
                )
            },
        )
        cognito.CfnIdentityPoolRoleAttachment(
            self,
            "Roles",
            identity_pool_id=self.identity_pool.ref,
            roles={"authenticated": self.web_role.role_arn},
        )
        for key, value, description in (
            (OUTPUT_SIGN_IN_USER_POOL_ID, self.user_pool.user_pool_id, "Page config: user_pool_id"),
            (OUTPUT_SIGN_IN_CLIENT_ID, self.client.user_pool_client_id, "Page config: client_id"),
            (OUTPUT_SIGN_IN_DOMAIN, self.domain_name, "Page config: domain (hosted UI)"),
            (OUTPUT_SIGN_IN_IDENTITY_POOL_ID, self.identity_pool.ref, "Page config: identity_pool_id"),
            (OUTPUT_WEB_USER_ROLE_ARN, self.web_role.role_arn, "Give it to the operator: one of your principals"),
        ):
            CfnOutput(stack, key, value=value, description=description)

    def acknowledge_findings(self, *, tenant: str, settings: SignInSettings, partition: str) -> list[Ack]:
        """The table's sign-in rows, with this deployment's ARNs filled in, on this construct."""
        resources = settings.api.policy_resources(partition)
        values = {
            "inbox_arn": resources.inbox_bucket_arn,
            "results_arn": resources.results_bucket_arn,
            "jobs_api_arn": resources.jobs_api_arn,
            "stage": settings.api.stage,
            "tenant": tenant,
        }
        concrete = tuple(
            replace(ack, path=f"{CONSTRUCT_ID}/{ack.path}", finding=ack.finding.format(**values))
            for ack in TENANT_SIGN_IN_ACKNOWLEDGEMENTS
        )
        return apply_acknowledgements(Stack.of(self), tenants=(), stage="", fleet_group="", table=concrete)


def web_role_trust_conditions(identity_pool_id: str) -> dict[str, dict[str, str]]:
    """Only identities of THIS identity pool, and only authenticated ones, may assume the role."""
    return {
        "StringEquals": {f"{COGNITO_IDENTITY}:aud": identity_pool_id},
        "ForAnyValue:StringLike": {f"{COGNITO_IDENTITY}:amr": "authenticated"},
    }
