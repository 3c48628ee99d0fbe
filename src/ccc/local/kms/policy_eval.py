"""The IAM key-policy subset the local attested-KMS gateway enforces, failing closed.

Why a subset: moto never evaluates key policies, so locally nothing would stop a parent role from
decrypting without an enclave. The gateway evaluates the policy stored on the key with this
module. It understands exactly what `ccc_common.domain.key_policy` emits (and AWS's default key policy);
anything else makes the whole policy "not understood" and every request is denied, so a policy
feature we do not model can never silently grant access.

Understood:
* Version 2012-10-17 / 2008-10-17; Statement object or list; Sid; Effect Allow | Deny.
* Principal: "*" or {"AWS": "*" | account id | root ARN | IAM user/role ARN (or list)}.
  {"Service": ...} is understood and never matches a local identity. A root / account principal
  matches a caller of that account only when the caller's own IAM permissions allow the action
  (`RequestContext.iam_allows`), which is how AWS delegates from a key policy to IAM.
* Action: "kms:<Name>" patterns with * and ?, case-insensitive. Resource: "*" or ARN patterns.
* Condition operators StringEquals, StringEqualsIgnoreCase, StringLike, Null, Bool (no IfExists),
  on the keys kms:EncryptionContext:<key>, kms:RecipientAttestation:ImageSha384,
  kms:RecipientAttestation:PCR<n>, kms:CallerAccount; and the set operators
  ForAllValues:/ForAnyValue: + StringEquals|StringEqualsIgnoreCase|StringLike, plus Null, on the
  multivalued key kms:EncryptionContextKeys. Values within a key are ORed; keys and operators are
  ANDed. A missing request key never satisfies a string operator.
* Condition-key NAMES are case-insensitive, as on AWS: `kms:EncryptionContext:CCC:KIND` is the same
  key as `kms:encryptioncontext:ccc:kind` and reads the request's context key `ccc:kind` in any
  case. Values compare as the operator says (StringEquals: exact). Should a request carry two
  context keys that differ only in case (AWS advises against it and does not define which one a
  condition reads), an Allow condition must hold for every such value and a Deny condition for any
  one: the ambiguity can only ever make the gateway stricter.
* Set semantics (AWS): ForAllValues holds when every request value matches some policy value, and
  so holds for an empty set (no context); ForAnyValue needs at least one match, so an empty set
  fails. `Null kms:EncryptionContextKeys = true` holds exactly when the request has no context.
* Explicit Deny wins over Allow; no matching Allow is an implicit deny.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ccc.local.errors import LocalStackError

_VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Principal", "Action", "Resource", "Condition"})
_OPERATORS = frozenset({"StringEquals", "StringEqualsIgnoreCase", "StringLike", "Null", "Bool"})
_SET_QUALIFIERS = ("ForAllValues:", "ForAnyValue:")
_SET_OPERATORS = frozenset({"StringEquals", "StringEqualsIgnoreCase", "StringLike"})
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_IAM_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(root|user/[\w+=,.@/-]+|role/[\w+=,.@/-]+)$")
_ACTION_RE = re.compile(r"^(\*|kms:[A-Za-z*?]+|[a-z0-9-]+:[A-Za-z0-9*?]+)$")
_PCR_KEY_RE = re.compile(r"^pcr(\d{1,2})$")
_CONTEXT_PREFIX = "kms:encryptioncontext:"
_ATTESTATION_PREFIX = "kms:recipientattestation:"
_CALLER_ACCOUNT = "kms:calleraccount"
_CONTEXT_KEYS = "kms:encryptioncontextkeys"


class PolicyNotUnderstood(LocalStackError, ValueError):
    """The policy uses something outside the modelled subset; the gateway then denies."""


class Decision(enum.Enum):
    ALLOW = "allow"
    IMPLICIT_DENY = "implicit-deny"
    EXPLICIT_DENY = "explicit-deny"


@dataclass(frozen=True)
class RequestContext:
    """Who asks for what, with which request facts (the inputs of condition keys).

    attestation: None without a (valid) Recipient; else "ImageSha384" and "PCR<n>" -> lowercase hex.
    """

    principal_arn: str
    caller_account: str
    action: str
    resource_arn: str
    encryption_context: Mapping[str, str] = field(default_factory=dict)
    attestation: Mapping[str, str] | None = None
    iam_allows: bool = False


@dataclass(frozen=True)
class EvaluationResult:
    decision: Decision
    reason: str
    statement: str | None = None

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


def _glob(pattern: str, value: str, *, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, value, flags) is not None


def _strings(value: Any, what: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise PolicyNotUnderstood(f"{what} must be a string or a non-empty list of strings")
    for v in values:
        if "${" in v:
            raise PolicyNotUnderstood(f"policy variables are not supported ({v!r})")
    return values


@dataclass(frozen=True)
class _Principal:
    anyone: bool
    arns: tuple[str, ...]  # user/role ARNs: exact match
    accounts: tuple[str, ...]  # root or account id: IAM delegation

    def matches(self, request: RequestContext) -> bool:
        if self.anyone or request.principal_arn in self.arns:
            return True
        return request.caller_account in self.accounts and request.iam_allows


def _parse_principal(value: Any) -> _Principal:
    if value == "*":
        return _Principal(True, (), ())
    if not isinstance(value, Mapping) or not value:
        raise PolicyNotUnderstood("Principal must be '*' or an object")
    arns: list[str] = []
    accounts: list[str] = []
    anyone = False
    for kind, entries in value.items():
        if kind == "Service":
            _strings(entries, "Principal.Service")
            continue
        if kind != "AWS":
            raise PolicyNotUnderstood(f"principal type {kind!r} is not supported")
        for entry in _strings(entries, "Principal.AWS"):
            if entry == "*":
                anyone = True
            elif _ACCOUNT_RE.fullmatch(entry):
                accounts.append(entry)
            else:
                match = _IAM_ARN_RE.fullmatch(entry)
                if not match:
                    raise PolicyNotUnderstood(f"principal {entry!r} is not an account or IAM user/role ARN")
                if match.group(3) == "root":
                    accounts.append(match.group(2))
                else:
                    arns.append(entry)
    return _Principal(anyone, tuple(arns), tuple(accounts))


@dataclass(frozen=True)
class _Condition:
    operator: str  # StringEquals, ..., with qualifier "ForAllValues" / "ForAnyValue" / "" for set keys
    key: str  # the condition key name, lower-cased (names are case-insensitive on AWS)
    values: tuple[str, ...]
    qualifier: str = ""


def _normalise_key(key: str) -> str:
    lowered = key.lower()
    if lowered == _CONTEXT_KEYS:
        return lowered
    if lowered.startswith(_CONTEXT_PREFIX):
        if len(lowered) == len(_CONTEXT_PREFIX):
            raise PolicyNotUnderstood("kms:EncryptionContext: needs a context key")
        return lowered
    if lowered.startswith(_ATTESTATION_PREFIX):
        suffix = lowered[len(_ATTESTATION_PREFIX) :]
        match = _PCR_KEY_RE.fullmatch(suffix)
        if suffix == "imagesha384" or (match and int(match.group(1)) <= 31):
            return _ATTESTATION_PREFIX + suffix
        raise PolicyNotUnderstood(f"attestation condition key {key!r} is not supported")
    if lowered == _CALLER_ACCOUNT:
        return lowered
    raise PolicyNotUnderstood(f"condition key {key!r} is not supported")


def _parse_conditions(value: Any) -> tuple[_Condition, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise PolicyNotUnderstood("Condition must be an object")
    conditions: list[_Condition] = []
    for raw_operator, block in value.items():
        if not isinstance(raw_operator, str):
            raise PolicyNotUnderstood("condition operators must be strings")
        qualifier, operator = "", raw_operator
        for prefix in _SET_QUALIFIERS:
            if raw_operator.startswith(prefix):
                qualifier, operator = prefix[:-1], raw_operator[len(prefix) :]
        if operator not in (_SET_OPERATORS if qualifier else _OPERATORS):
            raise PolicyNotUnderstood(f"condition operator {raw_operator!r} is not supported")
        if not isinstance(block, Mapping) or not block:
            raise PolicyNotUnderstood(f"{operator} must map condition keys to values")
        for key, raw in block.items():
            if not isinstance(key, str):
                raise PolicyNotUnderstood("condition keys must be strings")
            raw_values = raw if isinstance(raw, list) else [raw]
            if operator in ("Null", "Bool"):
                values = []
                for v in raw_values:
                    text = str(v).lower() if isinstance(v, bool | str) else None
                    if text not in ("true", "false"):
                        raise PolicyNotUnderstood(f"{operator} values must be true or false, got {v!r}")
                    values.append(text)
                if not values:
                    raise PolicyNotUnderstood(f"{operator} needs a value")
            else:
                values = _strings(raw, f"{operator} {key}")
            name = _normalise_key(key)
            if name == _CONTEXT_KEYS and not qualifier and operator != "Null":
                raise PolicyNotUnderstood(f"{key} is multivalued: use ForAllValues:/ForAnyValue: or Null")
            if qualifier and name != _CONTEXT_KEYS:
                raise PolicyNotUnderstood(f"{raw_operator} is supported on kms:EncryptionContextKeys only")
            conditions.append(_Condition(operator, name, tuple(values), qualifier))
    return tuple(conditions)


def _request_values(key: str, request: RequestContext) -> list[str]:
    """The request's values for a (lower-cased) condition key; [] when the key is absent."""
    if key == _CONTEXT_KEYS:
        return list(request.encryption_context)
    if key.startswith(_CONTEXT_PREFIX):
        wanted = key[len(_CONTEXT_PREFIX) :]
        return [v for k, v in request.encryption_context.items() if k.lower() == wanted]
    if key.startswith(_ATTESTATION_PREFIX):
        if request.attestation is None:
            return []
        suffix = key[len(_ATTESTATION_PREFIX) :]
        name = "ImageSha384" if suffix == "imagesha384" else suffix.upper()
        value = request.attestation.get(name)
        return [] if value is None else [value]
    if key == _CALLER_ACCOUNT:
        return [request.caller_account]
    raise PolicyNotUnderstood(f"condition key {key!r} is not supported")  # unreachable: parsed keys only


def _matches(operator: str, actual: str, wanted: tuple[str, ...]) -> bool:
    if operator == "StringEquals":
        return actual in wanted
    if operator == "StringEqualsIgnoreCase":
        return any(actual.casefold() == v.casefold() for v in wanted)
    if operator == "StringLike":
        return any(_glob(v, actual, ignore_case=False) for v in wanted)
    if operator == "Bool":
        return actual.lower() in wanted
    raise PolicyNotUnderstood(f"operator {operator}")  # unreachable: parsed operators only


def _condition_holds(condition: _Condition, request: RequestContext, *, allow: bool) -> bool:
    actual = _request_values(condition.key, request)
    if condition.operator == "Null":
        return any((not actual) == (v == "true") for v in condition.values)
    if condition.qualifier == "ForAllValues":
        return all(_matches(condition.operator, a, condition.values) for a in actual)
    if condition.qualifier == "ForAnyValue":
        return any(_matches(condition.operator, a, condition.values) for a in actual)
    if not actual:
        return False
    # Several values only when a context has case variants of one key: stricter either way.
    results = [_matches(condition.operator, a, condition.values) for a in actual]
    return all(results) if allow else any(results)


@dataclass(frozen=True)
class _Statement:
    sid: str
    effect: str
    principal: _Principal
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[_Condition, ...]

    def applies(self, request: RequestContext) -> bool:
        return (
            self.principal.matches(request)
            and any(_glob(a, request.action, ignore_case=True) for a in self.actions)
            and any(_glob(r, request.resource_arn, ignore_case=False) for r in self.resources)
            and all(_condition_holds(c, request, allow=self.effect == "Allow") for c in self.conditions)
        )


def _parse_statement(raw: Any, index: int) -> _Statement:
    if not isinstance(raw, Mapping):
        raise PolicyNotUnderstood(f"statement #{index} is not an object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicyNotUnderstood(f"statement #{index} uses unsupported elements {sorted(unknown)}")
    sid = raw.get("Sid", f"#{index}")
    if not isinstance(sid, str):
        raise PolicyNotUnderstood(f"statement #{index} Sid is not a string")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyNotUnderstood(f"statement {sid!r} Effect {effect!r} is neither Allow nor Deny")
    for element in ("Principal", "Action", "Resource"):
        if element not in raw:
            raise PolicyNotUnderstood(f"statement {sid!r} has no {element}")
    actions = _strings(raw["Action"], "Action")
    for action in actions:
        if not _ACTION_RE.fullmatch(action):
            raise PolicyNotUnderstood(f"action {action!r} is not supported")
    return _Statement(
        sid=sid,
        effect=effect,
        principal=_parse_principal(raw["Principal"]),
        actions=tuple(actions),
        resources=tuple(_strings(raw["Resource"], "Resource")),
        conditions=_parse_conditions(raw.get("Condition")),
    )


@dataclass(frozen=True)
class ParsedPolicy:
    statements: tuple[_Statement, ...]

    def evaluate(self, request: RequestContext) -> EvaluationResult:
        allowed_by: str | None = None
        for statement in self.statements:
            if not statement.applies(request):
                continue
            if statement.effect == "Deny":
                return EvaluationResult(Decision.EXPLICIT_DENY, f"denied by statement {statement.sid!r}", statement.sid)
            allowed_by = allowed_by or statement.sid
        if allowed_by is not None:
            return EvaluationResult(Decision.ALLOW, f"allowed by statement {allowed_by!r}", allowed_by)
        return EvaluationResult(Decision.IMPLICIT_DENY, "no statement allows this request")


def parse_policy(policy: Mapping[str, Any] | str) -> ParsedPolicy:
    """Parse a key policy into the modelled subset, or raise PolicyNotUnderstood."""
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError as exc:
            raise PolicyNotUnderstood(f"policy is not JSON: {exc}") from None
    if not isinstance(policy, Mapping):
        raise PolicyNotUnderstood("policy is not a JSON object")
    unknown = set(policy) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyNotUnderstood(f"policy uses unsupported elements {sorted(unknown)}")
    if policy.get("Version") not in _VERSIONS:
        raise PolicyNotUnderstood(f"policy Version {policy.get('Version')!r} is not supported")
    raw_statements = policy.get("Statement")
    if isinstance(raw_statements, Mapping):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise PolicyNotUnderstood("policy has no statements")
    return ParsedPolicy(tuple(_parse_statement(s, i) for i, s in enumerate(raw_statements)))


def evaluate(policy: Mapping[str, Any] | str, request: RequestContext) -> EvaluationResult:
    """Decide `request` under `policy`; a policy outside the subset denies (fail closed)."""
    try:
        parsed = parse_policy(policy)
    except PolicyNotUnderstood as exc:
        return EvaluationResult(Decision.IMPLICIT_DENY, f"key policy not understood, failing closed: {exc}")
    return parsed.evaluate(request)
