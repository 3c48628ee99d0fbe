"""Evaluate IAM identity policies (the documents of `ccc_common.domain.iam_policies`), failing closed.

Why not moto's evaluator: moto 5.2.5 matches Action and Resource but ignores every Condition of an
identity policy, and passes resource `*` for DynamoDB (so a statement scoped to a table ARN can
never match). Why not `ccc.local.kms.policy_eval`: that module evaluates *key* policies (Principal,
KMS condition keys) and belongs to the attested-KMS gateway; identity policies have no Principal
and other condition keys.

Understood (anything else makes the document "not understood" and every request is denied, so a
policy feature we do not model can never silently grant access):

* Version 2012-10-17 / 2008-10-17; Statement object or list; Sid; Effect Allow | Deny;
  Action and Resource (string or list). NotAction / NotResource / Principal are refused.
* Action patterns with `*` and `?`, case-insensitive (as IAM); Resource patterns case-sensitive.
* Condition operators StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringLike,
  StringNotLike, ArnEquals, ArnLike, Null, Bool. Condition-key *names* are case-insensitive (as
  AWS); values within a key are ORed; keys and operators ANDed; a key the request lacks never
  satisfies a positive operator (and always satisfies a negated one, as AWS).
* Set qualifiers `ForAllValues:` / `ForAnyValue:` on StringEquals, StringEqualsIgnoreCase and
  StringLike, for multivalued keys such as `aws:TagKeys`, with AWS's semantics: ForAllValues holds
  when every request value matches some policy value, and so also for a missing or empty key (pair
  it with `Null ... false`); ForAnyValue needs at least one match.
* Explicit Deny wins over Allow; no matching Allow is an implicit deny. A request that needs
  several (action, resource) pairs (CopyObject, batch calls) is allowed only if every pair is.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ccc.local.errors import LocalStackError

_VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "Resource", "Condition"})
_STRING_OPERATORS = frozenset(
    {"stringequals", "stringnotequals", "stringequalsignorecase", "stringlike", "stringnotlike", "arnequals", "arnlike"}
)
_NEGATED = frozenset({"stringnotequals", "stringnotlike"})
_OPERATORS = _STRING_OPERATORS | {"null", "bool"}
_SET_QUALIFIERS = ("forallvalues:", "foranyvalue:")
_SET_OPERATORS = frozenset({"stringequals", "stringequalsignorecase", "stringlike"})


class PolicyNotUnderstood(LocalStackError, ValueError):
    """The document uses something outside the modelled subset; every request is then denied."""


class Decision(enum.Enum):
    ALLOW = "allow"
    IMPLICIT_DENY = "implicit-deny"
    EXPLICIT_DENY = "explicit-deny"


@dataclass(frozen=True)
class Access:
    """One (action, resource) pair a request needs."""

    action: str
    resource: str


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    denied: Access | None = None  # the first pair not allowed
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _as_list(value: Any, what: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise PolicyNotUnderstood(f"{what} must be a string or a non-empty list of strings")
    return values


@dataclass(frozen=True)
class _Condition:
    operator: str  # lower-case
    key: str  # lower-case
    values: tuple[str, ...]
    qualifier: str = ""  # "forallvalues" / "foranyvalue" for a set operator, else ""

    def holds(self, context: Mapping[str, Sequence[str]]) -> bool:
        present = context.get(self.key)
        if self.qualifier == "forallvalues":
            return all(any(self._match(actual, expected) for expected in self.values) for actual in present or ())
        if self.qualifier == "foranyvalue":
            return any(self._match(actual, expected) for actual in present or () for expected in self.values)
        if self.operator == "null":
            want_missing = self.values[0].lower() == "true"
            return (not present) == want_missing
        if not present:
            return self.operator in _NEGATED
        if self.operator == "bool":
            return any(v.lower() == self.values[0].lower() for v in present)
        matched = any(self._match(actual, expected) for actual in present for expected in self.values)
        return not matched if self.operator in _NEGATED else matched

    def _match(self, actual: str, expected: str) -> bool:
        if self.operator in ("stringlike", "stringnotlike", "arnlike"):
            return bool(_glob(expected, False).match(actual))
        if self.operator == "stringequalsignorecase":
            return actual.lower() == expected.lower()
        return actual == expected


@dataclass(frozen=True)
class _Statement:
    allow: bool
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[_Condition, ...]

    def applies(self, access: Access, context: Mapping[str, Sequence[str]]) -> bool:
        return (
            any(_glob(a, True).match(access.action) for a in self.actions)
            and any(_glob(r, False).match(access.resource) for r in self.resources)
            and all(c.holds(context) for c in self.conditions)
        )


def _parse_conditions(raw: Any) -> tuple[_Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise PolicyNotUnderstood("Condition must be an object")
    found: list[_Condition] = []
    for operator, keys in raw.items():
        op, qualifier = str(operator).lower(), ""
        for prefix in _SET_QUALIFIERS:
            if op.startswith(prefix):
                op, qualifier = op[len(prefix) :], prefix[:-1]
        if op not in (_SET_OPERATORS if qualifier else _OPERATORS):
            raise PolicyNotUnderstood(f"condition operator {operator!r} is not modelled")
        if not isinstance(keys, Mapping) or not keys:
            raise PolicyNotUnderstood(f"{operator} must map condition keys to values")
        for key, value in keys.items():
            values = tuple(_as_list(value, f"{operator} {key}"))
            if op in ("null", "bool") and (len(values) != 1 or values[0].lower() not in ("true", "false")):
                raise PolicyNotUnderstood(f"{operator} {key} takes one of true/false")
            found.append(_Condition(op, str(key).lower(), values, qualifier))
    return tuple(found)


@dataclass(frozen=True)
class IdentityPolicy:
    """A parsed identity policy document (or several: a principal's policies are evaluated together)."""

    statements: tuple[_Statement, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, documents: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> IdentityPolicy:
        docs = [documents] if isinstance(documents, Mapping) else list(documents)
        statements: list[_Statement] = []
        for doc in docs:
            if not isinstance(doc, Mapping) or doc.get("Version") not in _VERSIONS:
                raise PolicyNotUnderstood("a policy document needs Version 2012-10-17 or 2008-10-17")
            if set(doc) - {"Version", "Id", "Statement"}:
                raise PolicyNotUnderstood(f"unknown policy keys {sorted(set(doc) - {'Version', 'Id', 'Statement'})}")
            raw = doc.get("Statement")
            raw_list = raw if isinstance(raw, list) else [raw]
            for item in raw_list:
                if not isinstance(item, Mapping):
                    raise PolicyNotUnderstood("a statement must be an object")
                if set(item) - _STATEMENT_KEYS:
                    raise PolicyNotUnderstood(
                        f"statement elements {sorted(set(item) - _STATEMENT_KEYS)} are not modelled"
                    )
                if item.get("Effect") not in ("Allow", "Deny"):
                    raise PolicyNotUnderstood("Effect must be Allow or Deny")
                statements.append(
                    _Statement(
                        allow=item["Effect"] == "Allow",
                        actions=tuple(_as_list(item.get("Action"), "Action")),
                        resources=tuple(_as_list(item.get("Resource"), "Resource")),
                        conditions=_parse_conditions(item.get("Condition")),
                    )
                )
        return cls(tuple(statements))

    def decide(self, access: Access, context: Mapping[str, Sequence[str]] | None = None) -> Decision:
        ctx = {str(k).lower(): list(v) for k, v in (context or {}).items()}
        allowed = False
        for stmt in self.statements:
            if stmt.applies(access, ctx):
                if not stmt.allow:
                    return Decision.EXPLICIT_DENY
                allowed = True
        return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY

    def evaluate(self, needs: Sequence[Access], context: Mapping[str, Sequence[str]] | None = None) -> Outcome:
        """Allowed only if the request needs at least one pair and every pair is allowed."""
        if not needs:
            return Outcome(Decision.IMPLICIT_DENY, None, "the request maps to no action")
        for access in needs:
            decision = self.decide(access, context)
            if decision is not Decision.ALLOW:
                return Outcome(decision, access, f"{decision.value} for {access.action} on {access.resource}")
        return Outcome(Decision.ALLOW)


__all__ = ["Access", "Decision", "IdentityPolicy", "Outcome", "PolicyNotUnderstood"]
