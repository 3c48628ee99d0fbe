"""Every cdk-nag (AwsSolutions) finding this app accepts, with the reason: the ONE table.

Why a table: an acknowledgement is a security decision. Keeping them all here, each tied to a
construct path and one exact finding id, makes them reviewable in one place and impossible to
add silently elsewhere. Paths are relative to the stack; an entry whose construct does not exist
in a stage (e.g. the auto-delete provider only exists in dev) is skipped for that stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


@dataclass(frozen=True)
class Ack:
    path: str  # construct path below the stack ("" = the stack itself)
    finding: str  # exact cdk-nag finding id, e.g. "AwsSolutions-IAM5[Resource::*]"
    reason: str


ACKNOWLEDGEMENTS: tuple[Ack, ...] = ()


def _find(stack: Stack, path: str) -> IConstruct | None:
    node: IConstruct = stack
    for part in filter(None, path.split("/")):
        child = node.node.try_find_child(part)
        if child is None:
            return None
        node = child
    return node


def apply_acknowledgements(stack: Stack, table: tuple[Ack, ...] = ACKNOWLEDGEMENTS) -> list[Ack]:
    """Acknowledge each finding on its construct; return the entries that applied."""
    applied = []
    for ack in table:
        if not ack.reason.strip():
            raise ValueError(f"acknowledgement {ack.finding} at {ack.path!r} has no reason")
        target = _find(stack, ack.path)
        if target is None:
            continue
        Validations.of(target).acknowledge(Acknowledgment(id=ack.finding, reason=ack.reason))
        applied.append(ack)
    return applied
