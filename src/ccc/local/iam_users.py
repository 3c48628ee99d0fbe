"""Local identities: who is calling, for the local IAM gateway, the attested-KMS gateway and the jobs API.

Why: moto knows none of the stack's callers, so locally nothing would tell the parent role from a
tenant. Each local identity is an IAM principal ARN with its own access key pair; the gateways
verify the SigV4 signature with the secret and evaluate that principal's IAM policies
(`ccc.local.iam_stack`) or the key policy. Secrets are random per stack and live only in the
stack's state directory (stack.json, mode 0600).
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ccc.local.errors import LocalStackError

ADMIN = "admin"
PARENT = "parent"
# The local Lambdas process (all four handlers): carries every Lambda role's policy.
LAMBDAS = "lambdas"
TENANTS = ("tenant-a", "tenant-b")
DEFAULT_NAMES = (ADMIN, PARENT, LAMBDAS, *TENANTS)

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ACCESS_KEY_RE = re.compile(r"^[A-Z0-9]{16,128}$")
_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):(user|role)/[\w+=,.@/-]+$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ALPHANUM = string.ascii_uppercase + string.digits


class IdentityError(LocalStackError, ValueError):
    """A malformed local identity or identity table."""


@dataclass(frozen=True)
class LocalIdentity:
    """One local caller: a principal ARN and the access key pair that proves it."""

    name: str
    principal_arn: str
    access_key_id: str
    secret_access_key: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise IdentityError(f"identity name {self.name!r} must be 1-63 chars of a-z, 0-9, '-'")
        if not isinstance(self.principal_arn, str) or not _ARN_RE.fullmatch(self.principal_arn):
            raise IdentityError(f"identity {self.name}: {self.principal_arn!r} is not an IAM user/role ARN")
        if not isinstance(self.access_key_id, str) or not _ACCESS_KEY_RE.fullmatch(self.access_key_id):
            raise IdentityError(f"identity {self.name}: access key id must be 16+ uppercase letters/digits")
        if not isinstance(self.secret_access_key, str) or len(self.secret_access_key) < 20:
            raise IdentityError(f"identity {self.name}: secret access key is too short")

    @property
    def account_id(self) -> str:
        match = _ARN_RE.fullmatch(self.principal_arn)
        assert match is not None  # validated in __post_init__
        return match.group(1)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LocalIdentity:
        if not isinstance(data, Mapping):
            raise IdentityError("an identity must be a JSON object")
        try:
            return cls(
                name=data["name"],
                principal_arn=data["principal_arn"],
                access_key_id=data["access_key_id"],
                secret_access_key=data["secret_access_key"],
            )
        except KeyError as exc:
            raise IdentityError(f"identity is missing {exc.args[0]!r}") from None

    def __repr__(self) -> str:  # never print the secret
        return (
            f"LocalIdentity(name={self.name!r}, principal_arn={self.principal_arn!r}, "
            f"access_key_id={self.access_key_id!r})"
        )


def tenant_account_id(name: str, operator_account_id: str) -> str:
    """The local tenant's own account (the next account numbers after the operator's).

    Why not the operator's account: a tenant-owned key lives in, and names principals of, the
    tenant's own account; no principal of the operator account may use or change it
    (`ccc_common.domain.key_policy.TenantKeySpec` refuses otherwise), as on AWS.
    """
    return f"{(int(operator_account_id) + 1 + TENANTS.index(name)) % 10**12:012d}"


def principal_arn_for(name: str, account_id: str) -> str:
    """The IAM role ARN a default local identity stands for (tenants: in their own accounts)."""
    role = "ccc-local-parent-instance" if name == PARENT else f"ccc-local-{name}"
    if name in TENANTS:
        account_id = tenant_account_id(name, account_id)
    return f"arn:aws:iam::{account_id}:role/{role}"


def new_identity(name: str, principal_arn: str) -> LocalIdentity:
    """A fresh random access key pair for `principal_arn` (AKIA-style id, 40-char secret)."""
    access_key_id = "AKIA" + "".join(secrets.choice(_ALPHANUM) for _ in range(16))
    secret = secrets.token_urlsafe(30)[:40]
    return LocalIdentity(name, principal_arn, access_key_id, secret)


def default_identities(account_id: str) -> dict[str, LocalIdentity]:
    """admin, parent, tenant-a, tenant-b with random secrets: one set per local stack."""
    if not isinstance(account_id, str) or not _ACCOUNT_RE.fullmatch(account_id):
        raise IdentityError(f"account id {account_id!r} is not 12 digits")
    return {name: new_identity(name, principal_arn_for(name, account_id)) for name in DEFAULT_NAMES}


def identities_to_dict(identities: Mapping[str, LocalIdentity]) -> dict[str, dict[str, str]]:
    return {name: identity.to_dict() for name, identity in identities.items()}


def identities_from_dict(data: Mapping[str, Any]) -> dict[str, LocalIdentity]:
    """Inverse of identities_to_dict, checking names match and access keys are unique."""
    if not isinstance(data, Mapping):
        raise IdentityError("identities must be a JSON object of name -> identity")
    identities = {name: LocalIdentity.from_dict(record) for name, record in data.items()}
    check_identity_table(identities)
    return identities


def check_identity_table(identities: Mapping[str, LocalIdentity]) -> None:
    """Names must match their keys; access key ids must be unique (they identify the caller)."""
    seen_keys: set[str] = set()
    for name, identity in identities.items():
        if identity.name != name:
            raise IdentityError(f"identity listed as {name!r} is named {identity.name!r}")
        if identity.access_key_id in seen_keys:
            raise IdentityError(f"access key id of {name!r} is used twice")
        seen_keys.add(identity.access_key_id)
