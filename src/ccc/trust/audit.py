"""`ccc trust audit`: what the tenant's key actually releases to, against what the tenant pinned.

Why: the key policy decides which enclaves can decrypt the tenant's inputs; the trust file decides
which enclaves' results the client believes. If they drift apart (an operator or a careless admin
added a statement, or a rolled release was never pinned), the tenant must hear it from its own
client, reading the policy with its own credentials. Pure: the CLI fetches the policy and turns it
into releases with `ccc_common.domain.key_policy.releases_from_key_policy`.

Matching: a key statement pins a PCR set (ANDed); it corresponds to a pinned release when both pin
the same PCR0 and agree on every PCR both name. A key statement that pins fewer PCRs than the
release is noted (it releases to more enclave builds than the tenant pinned), not hidden.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ccc.trust.document import TrustFile


@dataclass(frozen=True)
class KeyRelease:
    """One release the key policy lets the service's enclave decrypt for (index -> lower hex)."""

    release_id: str
    pcrs: Mapping[int, str]


@dataclass(frozen=True)
class AuditFinding:
    severity: str  # "drift": the key and the pins disagree; "note": agree, with a remark
    message: str


@dataclass(frozen=True)
class AuditReport:
    key_arn: str
    findings: tuple[AuditFinding, ...]
    matched: tuple[tuple[str, str], ...]  # (pinned id, key release id)

    @property
    def drift(self) -> bool:
        return any(finding.severity == "drift" for finding in self.findings)


def _pinned_pcrs(trust: TrustFile) -> dict[str, dict[int, str]]:
    return {release.id: {int(name[3:]): value for name, value in release.pcrs.items()} for release in trust.releases}


def _corresponds(key: Mapping[int, str], pinned: Mapping[int, str]) -> bool:
    if key.get(0) is None or key.get(0) != pinned.get(0):
        return False
    return all(pinned[index] == value for index, value in key.items() if index in pinned)


def audit_releases(trust: TrustFile, key_releases: Iterable[KeyRelease]) -> AuditReport:
    """Compare; every key release without a pinned counterpart and every pinned release the key does
    not release to is drift."""
    pinned = _pinned_pcrs(trust)
    findings: list[AuditFinding] = []
    matched: list[tuple[str, str]] = []
    seen_pinned: set[str] = set()
    for key in key_releases:
        pcrs = {index: value.lower() for index, value in key.pcrs.items()}
        partners = [release_id for release_id, values in pinned.items() if _corresponds(pcrs, values)]
        if not partners:
            shown = pcrs.get(0, "(no PCR0!)")[:16]
            findings.append(
                AuditFinding(
                    "drift",
                    f"the key releases to {key.release_id} (PCR0 {shown}…), "
                    "which this trust file does not pin: that enclave can decrypt "
                    "your inputs",
                )
            )
            continue
        for release_id in partners:
            matched.append((release_id, key.release_id))
            seen_pinned.add(release_id)
            fewer = sorted(set(pinned[release_id]) - set(pcrs))
            if fewer:
                names = ", ".join(f"PCR{index}" for index in fewer)
                findings.append(
                    AuditFinding(
                        "note",
                        f"the key's statement for {release_id} does not pin {names}: "
                        "it releases to any build with that PCR0",
                    )
                )
    for release_id in pinned:
        if release_id not in seen_pinned:
            findings.append(
                AuditFinding(
                    "drift",
                    f"pinned release {release_id} is not one the key releases to: "
                    "no enclave of that release can process your jobs",
                )
            )
    return AuditReport(key_arn=trust.data_key_arn, findings=tuple(findings), matched=tuple(matched))
