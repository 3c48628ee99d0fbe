"""The tenants a service stage serves, as the operator configures them: `{name, account, key_arn, principals}`.

Why the key ARN is configuration and not a resource of the service stack: each tenant creates its
data key in its own account (`CccTenant`, cdk/tenant_stack.py) and tells the operator its ARN. The
service stack only *refers* to it: the parent role's identity policy names exactly these key ARNs
(a cross-account key needs the key policy AND the caller's IAM policy to allow a call), and the
jobs API maps these principals to the tenant. Nothing in the service account can change the key.

Context `tenants` (cdk.json or `-c tenants='[...]'`), a JSON list:

    [{"name": "acme", "account": "111111111111",
      "key_arn": "arn:aws:kms:eu-west-1:111111111111:key/<uuid>",
      "principals": ["arn:aws:iam::111111111111:role/acme-client"]}]
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ccc_core.identity import NamingError, validate_tenant
from cdk.stage_config import StageConfigError

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_KEY_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)*:kms:[a-z0-9-]+:(\d{12}):key/(mrk-)?[0-9a-f-]{32,36}$")
_PRINCIPAL_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::(\d{12}):(root|(user|role)/[A-Za-z0-9+=,.@_/-]{1,512})$")


@dataclass(frozen=True)
class TenantConfig:
    """One tenant with its own key: validated on construction."""

    name: str
    account: str
    key_arn: str
    principals: tuple[str, ...]

    def __post_init__(self) -> None:
        try:
            validate_tenant(self.name)
        except NamingError as exc:
            raise StageConfigError(f"tenant {self.name!r}: {exc}") from None
        if not isinstance(self.account, str) or not _ACCOUNT_RE.fullmatch(self.account):
            raise StageConfigError(f"tenant {self.name}: account {self.account!r} is not 12 digits")
        match = _KEY_ARN_RE.fullmatch(self.key_arn) if isinstance(self.key_arn, str) else None
        if match is None:
            raise StageConfigError(f"tenant {self.name}: key_arn {self.key_arn!r} is not a KMS key ARN")
        if match.group(2) != self.account:
            raise StageConfigError(
                f"tenant {self.name}: key {self.key_arn} is not in the tenant's account {self.account}"
            )
        if not self.principals:
            raise StageConfigError(f"tenant {self.name}: no principals (nobody could submit)")
        for arn in self.principals:
            if not isinstance(arn, str) or not _PRINCIPAL_RE.fullmatch(arn):
                raise StageConfigError(f"tenant {self.name}: principal {arn!r} is not an IAM role, user or root ARN")
        if len(set(self.principals)) != len(self.principals):
            raise StageConfigError(f"tenant {self.name}: duplicate principals")


def parse_tenants(value: object) -> tuple[TenantConfig, ...]:
    """The `tenants` context: a JSON list (text or already parsed) of tenant objects."""
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, str):
        if not value.lstrip().startswith("["):
            raise StageConfigError(
                "context tenants is a JSON list of {name, account, key_arn, principals} (tenant-owned keys); "
                "for the dev convenience roles on the operator-run key use demo_tenants=a,b"
            )
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise StageConfigError(f"context tenants is not JSON: {exc}") from None
    if not isinstance(value, list):
        raise StageConfigError("context tenants must be a JSON list of tenant objects")
    tenants: list[TenantConfig] = []
    for entry in value:
        if not isinstance(entry, Mapping) or set(entry) != {"name", "account", "key_arn", "principals"}:
            raise StageConfigError("each tenant must be an object with exactly name, account, key_arn, principals")
        principals: Any = entry["principals"]
        if not isinstance(principals, list):
            raise StageConfigError(f"tenant {entry['name']!r}: principals must be a list of ARNs")
        tenants.append(
            TenantConfig(
                name=entry["name"], account=entry["account"], key_arn=entry["key_arn"], principals=tuple(principals)
            )
        )
    names = [t.name for t in tenants]
    if len(set(names)) != len(names):
        raise StageConfigError(f"tenant names are not unique: {names}")
    owners: dict[str, str] = {}
    for tenant in tenants:
        for arn in tenant.principals:
            if arn in owners:
                raise StageConfigError(f"principal {arn} is listed for tenants {owners[arn]} and {tenant.name}")
            owners[arn] = tenant.name
    return tuple(tenants)
