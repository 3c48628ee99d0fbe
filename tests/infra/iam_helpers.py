"""Read IAM facts out of a synthesised CloudFormation template (plain dicts, no CDK objects)."""

from __future__ import annotations

import fnmatch
from typing import Any


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(resources: dict[str, dict[str, Any]], role_id: str) -> list[dict[str, Any]]:
    """Every Allow/Deny statement that applies to a role: inline policies and attached AWS::IAM::Policy."""
    statements: list[dict[str, Any]] = []
    role = resources[role_id]["Properties"]
    for policy in role.get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    for resource in resources.values():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = resource["Properties"].get("Roles", [])
            if {"Ref": role_id} in roles:
                statements += as_list(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements


def managed_policy_arns(resources: dict[str, dict[str, Any]], role_id: str) -> list[Any]:
    return resources[role_id]["Properties"].get("ManagedPolicyArns", [])


def grants(statement: dict[str, Any], action: str) -> bool:
    """Does an Allow statement's Action (with IAM wildcards, case-insensitive) cover `action`?"""
    if statement.get("Effect") != "Allow":
        return False
    if "NotAction" in statement:
        return True  # treat NotAction as granting everything: never expected in this stack
    return any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in as_list(statement.get("Action", [])))


def kms_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Allow statements that grant ANY KMS action: `kms:...` patterns, `*`, or a NotAction."""
    found = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(a).lower() for a in as_list(statement.get("Action", []))]
        if "NotAction" in statement or any(a == "*" or a.startswith("kms:") for a in actions):
            found.append(statement)
    return found


# What no Lambda may ever hold, on any key: plaintext key material (Decrypt), re-encryption (which
# decrypts inside KMS under the caller's rights), or everything (kms:* / *).
FORBIDDEN_LAMBDA_KMS_ACTIONS = ("kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant")


def forbidden_lambda_kms(statement: dict[str, Any]) -> list[str]:
    """Why `statement` must not be attached to a Lambda role (empty list = acceptable)."""
    if statement.get("Effect") != "Allow":
        return []
    reasons = [f"grants {a}" for a in FORBIDDEN_LAMBDA_KMS_ACTIONS if grants(statement, a)]
    for action in as_list(statement.get("Action", [])):
        text = str(action).lower()
        if text in ("*", "kms:*") or text.startswith("kms:reencrypt"):
            reasons.append(f"action {action}")
    return reasons


def lambda_role_ids(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every Lambda function in the template (ours and CDK's custom-resource providers) -> its role id.
    A role given as a literal ARN (not a role of this template) cannot be inspected, so it fails."""
    roles: dict[str, str] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role = resource["Properties"]["Role"]
        assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{logical_id}: role not defined in this stack"
        roles[logical_id] = function_role_id(resource)
    return roles


def function_role_id(function: dict[str, Any]) -> str:
    return function["Properties"]["Role"]["Fn::GetAtt"][0]


def normalise(document: Any) -> Any:
    """CloudFormation/CDK writes one-element lists as scalars; compare documents modulo that."""
    if isinstance(document, list):
        items = [normalise(v) for v in document]
        return items[0] if len(items) == 1 else items
    if isinstance(document, dict):
        return {k: normalise(v) for k, v in document.items()}
    return document
