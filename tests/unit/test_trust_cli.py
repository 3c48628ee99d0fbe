"""`ccc trust ...` as a tenant uses it: pins change only as asked, every refusal is one line, and
`init --stack` proposes releases from the key's own policy (falling back to the operator's outputs
only with a warning). AWS is faked at the client-call level; the local-stack path is in
tests/e2e/test_trust_e2e.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

import ccc.trust.proposal as proposal_module
from ccc.cli import main
from ccc.trust import aws_nitro_root, load_trust, write_trust
from ccc.trust.proposal import Proposal, ProposalError, propose_from_cloudformation
from ccc.trust.releases import pinned_release
from ccc_common.contracts.stack_outputs import TENANT_OWNED_KEYS, StackOutputs, encode_stack_outputs
from ccc_common.domain.key_policy import ApprovedRelease, TenantKeySpec, build_tenant_key_policy

PCR0, PCR1, PCR2, OTHER = "a1" * 48, "b2" * 48, "c3" * 48, "d4" * 48
TENANT_KEY = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OPERATOR_KEY = "arn:aws:kms:eu-west-1:222222222222:key/operator"


def _trust_file(tmp_path: Path) -> Path:
    path = tmp_path / "trust.json"
    trust = Proposal(
        tenant="acme",
        data_key_arn=TENANT_KEY,
        key_source="test",
        root=aws_nitro_root(),
        root_source="test",
        releases=(pinned_release("first", {0: PCR0, 1: PCR1}, source="pcrs"),),
        release_source="test",
    ).trust_file()
    write_trust(path, trust)
    return path


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    return error


def test_show_prints_every_pin_and_json_is_the_document(tmp_path, capsys) -> None:
    path = _trust_file(tmp_path)
    assert main(["trust", "show", "--trust", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "acme" in shown and TENANT_KEY in shown and f"PCR0 {PCR0}" in shown and "aws-nitro" in shown
    assert main(["trust", "show", "--trust", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == load_trust(path).document()


def test_add_and_remove_release_roll_the_pins(tmp_path, capsys) -> None:
    path = _trust_file(tmp_path)
    assert main(["trust", "add-release", "--trust", str(path), "--pcr0", OTHER, "--pcr1", PCR1]) == 0
    assert [r.id for r in load_trust(path).releases] == ["first", f"pcr0-{OTHER[:12]}"]
    assert main(["trust", "remove-release", "first", "--trust", str(path)]) == 0
    assert [r.id for r in load_trust(path).releases] == [f"pcr0-{OTHER[:12]}"]
    capsys.readouterr()
    assert main(["trust", "remove-release", f"pcr0-{OTHER[:12]}", "--trust", str(path)]) == 2
    assert "only pinned release" in _err(capsys)
    assert main(["trust", "add-release", "--trust", str(path), "--pcr0", OTHER]) == 2
    assert "already pinned" in _err(capsys)
    assert main(["trust", "add-release", "--trust", str(path), "--pcr0", "00" * 48]) == 2
    assert "debug-mode" in _err(capsys)


def test_a_release_manifest_is_pinned_with_its_id_commit_and_digest(tmp_path, capsys) -> None:
    from tests.unit.test_release_manifest import _document, _measured

    path = _trust_file(tmp_path)
    manifest = tmp_path / "release.json"
    manifest.write_text(json.dumps(_measured()))
    assert main(["trust", "add-release", "--trust", str(path), "--manifest", str(manifest)]) == 0
    release = load_trust(path).releases[-1]
    assert release.id == "ccc-enclave-0.2.0-666666666666" and release.source == "release-manifest"
    assert release.git_commit == "0123456789abcdef0123456789abcdef01234567" and release.manifest_sha256
    unmeasured = tmp_path / "unmeasured.json"
    unmeasured.write_text(json.dumps(_document()))
    capsys.readouterr()
    assert main(["trust", "add-release", "--trust", str(path), "--manifest", str(unmeasured)]) == 2
    assert "no measurement" in _err(capsys)
    assert main(["trust", "add-release", "--trust", str(path), "--manifest", str(manifest), "--id", "x"]) == 2
    assert "--manifest takes no" in _err(capsys)


def test_a_damaged_or_missing_file_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("CCC_TRUST_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert main(["trust", "show"]) == 2
    assert "ccc trust init" in _err(capsys)
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "ccc.trust/v1", "tenant": "acme"}')
    assert main(["trust", "show", "--trust", str(broken)]) == 2
    assert "not a valid ccc.trust/v1" in _err(capsys)


def test_init_never_overwrites_and_writes_only_what_was_confirmed(tmp_path, capsys, monkeypatch) -> None:
    existing = _trust_file(tmp_path)
    before = existing.read_bytes()
    assert main(["trust", "init", "--out", str(existing), "--local-stack", str(tmp_path), "--tenant", "acme"]) == 2
    assert "exists" in _err(capsys) and existing.read_bytes() == before

    offered = load_trust(existing)
    proposal = Proposal(
        tenant="acme",
        data_key_arn=TENANT_KEY,
        key_source="k",
        root=aws_nitro_root(),
        root_source="r",
        releases=tuple(offered.releases),
        release_source="s",
    )
    monkeypatch.setattr(proposal_module, "propose_from_local_stack", lambda *a, **k: proposal)
    fresh = tmp_path / "fresh.json"
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert main(["trust", "init", "--out", str(fresh), "--local-stack", str(tmp_path), "--tenant", "acme"]) == 1
    assert not fresh.exists() and TENANT_KEY in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main(["trust", "init", "--out", str(fresh), "--local-stack", str(tmp_path), "--tenant", "acme"]) == 0
    assert load_trust(fresh) == offered


def test_init_without_a_local_stack_says_so(tmp_path, capsys) -> None:
    assert (
        main(
            [
                "trust",
                "init",
                "--out",
                str(tmp_path / "t.json"),
                "--local-stack",
                str(tmp_path / "none"),
                "--tenant",
                "tenant-a",
                "--yes",
            ]
        )
        == 2
    )
    assert "ccc local up" in _err(capsys)


# ----- proposals from a deployed stack ---------------------------------------------------------


class _Cfn:
    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 (boto3's spelling)
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]}


class _Kms:
    def __init__(self, policy: dict[str, Any] | None) -> None:
        self.policy = policy
        self.asked: list[str] = []

    def get_key_policy(self, KeyId: str, PolicyName: str) -> dict[str, Any]:  # noqa: N803
        self.asked.append(KeyId)
        if self.policy is None:
            raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetKeyPolicy")
        return {"Policy": json.dumps(self.policy)}


def _outputs(**pcrs: str) -> dict[str, str]:
    return encode_stack_outputs(
        StackOutputs(
            stage="prod",
            api_url="https://api.example/prod/",
            inbox_bucket="in",
            results_bucket="out",
            artifacts_bucket="art",
            data_key_arn=OPERATOR_KEY,
            tenant_roles="{}",
            release_prefix="s3://art/release/abc/",
            host_log_group="hosts",
            dashboard="dash",
            pcrs={int(k[3:]): v for k, v in pcrs.items()},
        )
    )


def _tenant_policy() -> dict[str, Any]:
    return build_tenant_key_policy(
        TenantKeySpec(
            tenant="acme",
            partition="aws",
            key_account_id="111111111111",
            key_admin_principals=("arn:aws:iam::111111111111:role/acme-key-admin",),
            tenant_principals=("arn:aws:iam::111111111111:role/acme-client",),
            parent_role_arns=("arn:aws:iam::222222222222:role/ccc-parent",),
            releases=(
                ApprovedRelease("2026-12-01.a", {0: PCR0, 1: PCR1, 2: PCR2}),
                ApprovedRelease("2026-12-04.b", {0: OTHER}),
            ),
        )
    )


def test_init_from_a_stack_pins_what_the_tenant_key_releases_to_and_the_aws_root() -> None:
    kms = _Kms(_tenant_policy())
    proposal = propose_from_cloudformation(
        "CccProd",
        "acme",
        region="eu-west-1",
        key_arn=TENANT_KEY,
        cloudformation=_Cfn(_outputs(PCR0=OTHER)),
        kms=kms,
        s3=object(),
    )
    assert kms.asked == [TENANT_KEY] and proposal.data_key_arn == TENANT_KEY and not proposal.warnings
    assert [(r.id, r.source, r.pcrs["PCR0"]) for r in proposal.releases] == [
        ("2026-12-01.a", "key-policy", PCR0),
        ("2026-12-04.b", "key-policy", OTHER),
    ]
    trust = proposal.trust_file()
    assert trust.attestation_root.kind == "aws-nitro" and trust.tenant == "acme"


def test_init_from_a_stack_without_a_readable_policy_falls_back_to_outputs_with_warnings() -> None:
    proposal = propose_from_cloudformation(
        "CccProd", "acme", region="eu-west-1", cloudformation=_Cfn(_outputs(PCR0=PCR0)), kms=_Kms(None), s3=object()
    )
    assert proposal.data_key_arn == OPERATOR_KEY
    assert [r.source for r in proposal.releases] == ["stack-outputs"]
    assert any("operator's key" in w for w in proposal.warnings)
    assert any("AccessDeniedException" in w and "operator's claim" in w for w in proposal.warnings)


def test_init_refuses_a_placeholder_measurement_from_the_stack() -> None:
    class _S3:
        def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
            assert (Bucket, Key) == ("art", "release/abc/measurements.json")
            return {"Body": io.BytesIO(json.dumps({"pcrs": {"PCR0": PCR0}, "placeholder": True}).encode())}

    with pytest.raises(ProposalError, match="placeholder"):
        propose_from_cloudformation(
            "CccProd", "acme", region="eu-west-1", cloudformation=_Cfn(_outputs()), kms=_Kms(None), s3=_S3()
        )


def test_init_from_a_stack_whose_tenants_own_their_keys_asks_for_the_tenants_key() -> None:
    # A prod stack has no operator-run key: its DataKeyArn output is the contract's marker, and
    # the tenant's key lives in its own CccTenant stack, which only the tenant can name.
    outputs = {**_outputs(PCR0=PCR0), "DataKeyArn": TENANT_OWNED_KEYS}
    with pytest.raises(ProposalError, match="own their data keys: pass yours with --key-arn"):
        propose_from_cloudformation(
            "CccProd", "acme", region="eu-west-1", cloudformation=_Cfn(outputs), kms=_Kms(None), s3=object()
        )
    proposal = propose_from_cloudformation(
        "CccProd", "acme", region="eu-west-1", key_arn=TENANT_KEY, cloudformation=_Cfn(outputs),
        kms=_Kms(_tenant_policy()), s3=object(),
    )
    assert proposal.data_key_arn == TENANT_KEY and not proposal.warnings
