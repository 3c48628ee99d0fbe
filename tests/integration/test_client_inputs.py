"""Client-side checks that run before anything is encrypted or uploaded, and stack discovery."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image

from ccc.client import InputError, TargetError, check_image, check_images
from ccc.client.crypto import parse_result
from ccc.client.errors import VerificationError
from ccc.client.target import outputs_to_target
from ccc.trust.proposal import ProposalError, measurements_to_pcrs
from ccc_common.contracts.stack_outputs import StackOutputs, encode_stack_outputs

PCR = "ab" * 48
# What the CDK stack writes (ccc_common.contracts.stack_outputs), as DescribeStacks returns it.
OUTPUTS = encode_stack_outputs(StackOutputs(
    stage="dev", api_url="https://api.example/dev/", inbox_bucket="in", results_bucket="out", artifacts_bucket="art",
    data_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k", tenant_roles="{}",
    release_prefix="s3://art/release/abababababababab/", host_log_group="hosts", dashboard="dash", pcrs={0: PCR},
))


def _jpeg(path, size=(8, 6)):
    Image.new("RGB", size, (200, 120, 40)).save(path, "JPEG")
    return path


def test_good_image_passes_with_its_size(tmp_path):
    image = _jpeg(tmp_path / "cat.jpg")
    checked = check_image(image, 10_000)
    assert checked.size == image.stat().st_size and checked.path == image


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "too_big"])
def test_bad_images_are_refused_with_a_reason(tmp_path, case):
    path = tmp_path / "img"
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "too_big":
        path.write_bytes(b"x" * 1001)
    with pytest.raises(InputError) as info:
        check_image(path, 1000)
    assert str(path) in str(info.value)
    assert {"missing": "no such file", "directory": "not a regular file", "empty": "empty",
            "too_big": "limit is 1000"}[case] in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_image_is_refused(tmp_path):
    path = tmp_path / "secret.jpg"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(InputError, match="not readable"):
        check_image(path, 1000)


def test_one_bad_path_stops_the_whole_batch(tmp_path):
    good = _jpeg(tmp_path / "good.jpg")
    with pytest.raises(InputError, match="nope"):
        check_images([good, tmp_path / "nope.jpg"], 10_000)


def test_cloudformation_outputs_become_a_target_that_carries_no_trust_anchor():
    """The stack says where to send jobs; what to trust is only in the tenant's trust file (issue 11)."""
    target = outputs_to_target("CccDev", OUTPUTS, "eu-west-1", lambda tenant: None)
    assert (target.inbox_bucket, target.results_bucket, target.stage) == ("in", "out", "dev")
    for anchor in ("key_arn", "attestation_root_der", "expected_pcrs"):
        assert not hasattr(target, anchor)
    # Without PCR outputs the target is the same: the stack's PCRs are never consulted.
    bare = outputs_to_target("CccDev", {k: v for k, v in OUTPUTS.items() if k != "EnclavePcr0"}, "eu-west-1",
                             lambda tenant: None)
    assert bare.api_url == target.api_url


def test_outputs_without_buckets_or_key_are_refused():
    with pytest.raises(TargetError, match="DataKeyArn"):
        outputs_to_target("S", {k: v for k, v in OUTPUTS.items() if k != "DataKeyArn"}, "eu-west-1", lambda t: None)


def test_outputs_of_another_version_or_with_unknown_entries_are_refused_by_name():
    with pytest.raises(TargetError, match="OutputsFormat"):
        outputs_to_target("S", {k: v for k, v in OUTPUTS.items() if k != "OutputsFormat"}, "eu-west-1", lambda t: None)
    with pytest.raises(TargetError, match="ccc-stack-outputs/2"):
        outputs_to_target("S", {**OUTPUTS, "OutputsFormat": "ccc-stack-outputs/2"}, "eu-west-1", lambda t: None)
    with pytest.raises(TargetError, match="NewOutput"):
        outputs_to_target("S", {**OUTPUTS, "NewOutput": "x"}, "eu-west-1", lambda t: None)


def test_release_measurements_can_propose_pcrs_and_placeholders_are_refused():
    """`ccc trust init --stack` may propose the published measurements (shown, never silently trusted)."""
    assert measurements_to_pcrs({"pcrs": {"PCR0": PCR, "PCR8": "cd" * 48}}) == {0: PCR, 8: "cd" * 48}
    with pytest.raises(ProposalError, match="placeholder"):
        measurements_to_pcrs({"pcrs": {"PCR0": PCR}, "placeholder": True})
    with pytest.raises(ProposalError):
        measurements_to_pcrs({"pcrs": {"PCR0": "short"}})
    with pytest.raises(ProposalError, match="debug-mode"):
        measurements_to_pcrs({"pcrs": {"PCR0": "00" * 48}})


def test_local_target_without_a_running_stack_says_how_to_start_one(tmp_path):
    from ccc.client import local_target

    with pytest.raises(TargetError, match="ccc local up"):
        local_target(tmp_path)


@pytest.mark.parametrize(
    "plaintext", [b"not json", b"[]", json.dumps({"cats": -1}).encode(), json.dumps({"cats": "2"}).encode(),
                  json.dumps({"cats": True}).encode(), b"{" + b" " * 70000 + b"}"]
)
def test_result_documents_without_a_sane_count_are_refused(plaintext):
    with pytest.raises(VerificationError):
        parse_result(plaintext)


def test_submit_cli_refuses_bad_inputs_before_contacting_anything(tmp_path, capsys):
    from ccc.cli import main

    status = main(["submit", str(tmp_path / "missing.jpg"), "--state-dir", str(tmp_path)])
    assert status == 2
    assert "ccc submit" in capsys.readouterr().err
