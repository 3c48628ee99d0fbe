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
    kms_actions = ("kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:ReEncryptFrom", "kms:CreateGrant")
    return [s for s in statements if any(grants(s, a) for a in kms_actions)]


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
