"""The tenant's trust file (`ccc.trust/v1`): strict parsing, release changes, where it is found, audit.

Each test is a rule a tenant relies on: a file that is not exactly the format is refused in one
line (never half-read, never a traceback), a file cannot relabel a root as AWS's or pin a debug
enclave, releases roll without ever leaving zero, and `ccc submit` finds the file only where the
tenant put it.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccc.release.manifest import manifest_from_document
from ccc.trust import (
    TRUST_FILE_ENV,
    NoTrustFile,
    ReleaseChangeError,
    TrustFileError,
    aws_nitro_root,
    default_trust_path,
    load_tenant_trust,
    load_trust,
    parse_trust,
    resolve_trust_path,
    root_from_der,
    trust_bytes,
    write_trust,
)
from ccc.trust.audit import KeyRelease, audit_releases
from ccc.trust.releases import pinned_release, release_from_manifest, with_release, without_release
from ccc_enclave.nsm.simulated import LocalNitroCA

PCR0, PCR1, PCR2 = "a1" * 48, "b2" * 48, "c3" * 48
OTHER0 = "d4" * 48
KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
WHEN = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
_HEX = "0123456789abcdef"


@pytest.fixture(scope="module")
def local_root_der(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return LocalNitroCA.create(tmp_path_factory.mktemp("ca"), now=WHEN - timedelta(days=1)).root_der


def _document(kind: str = "aws-nitro", root: Any = None) -> dict[str, Any]:
    pinned_root = root if root is not None else aws_nitro_root()
    release = pinned_release(
        "ccc-enclave-0.2.0-666666666666", {0: PCR0, 1: PCR1, 2: PCR2}, source="release-manifest", now=WHEN
    )
    return {
        "format": "ccc.trust/v1",
        "tenant": "tenant-a",
        "data_key_arn": KEY,
        "attestation_root": pinned_root.model_dump(mode="json"),
        "releases": [release.model_dump(mode="json")],
    }


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document)


def _refused(data: str | bytes) -> str:
    with pytest.raises(TrustFileError) as info:
        parse_trust(data, source="t.json")
    message = str(info.value)
    assert "\n" not in message and message.startswith("t.json")
    return message


def test_a_valid_file_round_trips_canonically(tmp_path: Path) -> None:
    trust = parse_trust(_text(_document()))
    path = tmp_path / "trust.json"
    write_trust(path, trust)
    assert load_trust(path) == trust
    assert path.read_bytes() == trust_bytes(trust)
    assert path.stat().st_mode & 0o777 == 0o600
    assert trust.attestation_root.der == aws_nitro_root().der


def test_a_local_root_is_pinned_by_its_certificate(local_root_der: bytes) -> None:
    trust = parse_trust(_text(_document(root=root_from_der(local_root_der, kind="local"))))
    assert trust.attestation_root.der == local_root_der


def test_another_certificate_cannot_be_labelled_as_the_aws_root(local_root_der: bytes) -> None:
    document = _document(root=root_from_der(local_root_der, kind="local"))
    document["attestation_root"]["kind"] = "aws-nitro"
    assert "Root-G1" in _refused(_text(document))


def test_the_root_digest_must_be_the_certificate_s(local_root_der: bytes) -> None:
    document = _document(root=root_from_der(local_root_der, kind="local"))
    document["attestation_root"]["sha256"] = "0" * 64
    assert "sha256" in _refused(_text(document))
    aws = _document()
    aws["attestation_root"]["pem"] = root_from_der(local_root_der, kind="local").pem
    _refused(_text(aws))


@pytest.mark.parametrize("tag", [None, "ccc.trust/v2", "CCC.TRUST/V1", 1, ""])
def test_other_formats_are_refused_by_name(tag: object) -> None:
    document = _document()
    if tag is None:
        del document["format"]
    else:
        document["format"] = tag
    assert "ccc.trust/v1" in _refused(_text(document))


def _object_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [path] if isinstance(value, dict) else []
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in children:
        paths += _object_paths(child, (*path, key))
    return paths


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


@pytest.mark.parametrize("where", _object_paths(_document()), ids=str)
def test_unknown_fields_are_refused_at_every_level(where: tuple[Any, ...]) -> None:
    document = _document()
    _at(document, where)["extra"] = 1
    _refused(_text(document))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("tenant",), "Tenant-A"),
        (("tenant",), ""),
        (("data_key_arn",), "alias/ccc"),
        (("data_key_arn",), KEY + "\n"),
        (("releases",), []),
        (("releases",), {}),
        (("releases", 0, "pcrs", "PCR0"), PCR0.upper()),
        (("releases", 0, "pcrs", "PCR0"), "0" * 96),  # a debug-mode enclave
        (("releases", 0, "pcrs", "PCR0"), PCR0[:-2]),
        (("releases", 0, "pcrs", "PCR5"), PCR0),
        (("releases", 0, "pcrs"), {"PCR1": PCR1}),  # no image measurement
        (("releases", 0, "id"), "has space"),
        (("releases", 0, "source"), "operator"),
        (("releases", 0, "date"), "2026-13-40T00:00:00Z"),
        (("releases", 0, "date"), 1764900000),
        (("attestation_root", "kind"), "self-signed"),
    ],
    ids=str,
)
def test_malformed_values_are_refused(path: tuple[Any, ...], value: object) -> None:
    document = _document()
    _at(document, path[:-1])[path[-1]] = value
    _refused(_text(document))


def test_duplicate_keys_releases_and_pcr_sets_are_refused() -> None:
    text = _text(_document())
    assert "duplicate" in _refused(text.replace('"tenant": "tenant-a"', '"tenant": "tenant-a", "tenant": "tenant-b"'))
    twice = _document()
    twice["releases"].append(copy.deepcopy(twice["releases"][0]))
    _refused(_text(twice))
    twice["releases"][1]["id"] = "another-id"  # same PCRs under another name: ambiguous
    assert "same PCRs" in _refused(_text(twice))


def test_size_and_garbage_limits() -> None:
    assert "too large" in _refused(b" " * (256 * 1024 + 1))
    assert "not JSON" in _refused(b"\xff\xfe{")
    assert "JSON object" in _refused("[1]")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.text(max_size=2000))
def test_arbitrary_input_raises_only_trust_file_errors(data: bytes | str) -> None:
    try:
        parse_trust(data)
    except TrustFileError as exc:
        assert "\n" not in str(exc)


_pcr = st.text(alphabet=_HEX, min_size=96, max_size=96).filter(lambda v: set(v) != {"0"})


@st.composite
def _releases(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=5))
    image_pcrs = draw(st.lists(_pcr, min_size=count, max_size=count, unique=True))
    releases = []
    for index, pcr0 in enumerate(image_pcrs):
        extra = draw(st.dictionaries(st.sampled_from([1, 2, 3, 4, 8]), _pcr, max_size=4))
        release = pinned_release(
            f"r{index}-{draw(st.text(alphabet=_HEX, max_size=8))}",
            {0: pcr0, **extra},
            source=draw(st.sampled_from(["release-manifest", "pcrs", "key-policy"])),
            now=WHEN,
        )
        releases.append(release.model_dump(mode="json"))
    return releases


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_releases(), st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,20}\Z"))
def test_any_valid_file_round_trips(releases: list[dict[str, Any]], tenant: str) -> None:
    document = {**_document(), "tenant": tenant, "releases": releases}
    trust = parse_trust(_text(document))
    assert parse_trust(trust_bytes(trust)) == trust
    assert trust.document() == document


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_replacing_any_value_yields_a_trust_file_or_a_one_line_error(data: st.DataObject) -> None:
    document = _document()
    leaves: list[tuple[Any, ...]] = []

    def walk(value: Any, path: tuple[Any, ...]) -> None:
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else None
        if children is None:
            leaves.append(path)
            return
        for key, child in children:
            walk(child, (*path, key))

    walk(document, ())
    path = data.draw(st.sampled_from(leaves))
    value = data.draw(st.none() | st.booleans() | st.integers() | st.text(max_size=100) | st.lists(st.integers()))
    _at(document, path[:-1])[path[-1]] = value
    try:
        parse_trust(_text(document))
    except TrustFileError as exc:
        assert "\n" not in str(exc)


# ----- releases --------------------------------------------------------------------------------


def _trust() -> Any:
    return parse_trust(_text(_document()))


def test_releases_roll_without_ever_leaving_none() -> None:
    trust = _trust()
    successor = pinned_release(None, {0: OTHER0}, source="pcrs", now=WHEN)
    assert successor.id == f"pcr0-{OTHER0[:12]}"
    both = with_release(trust, successor)
    assert [r.id for r in both.releases] == ["ccc-enclave-0.2.0-666666666666", successor.id]
    after = without_release(both, "ccc-enclave-0.2.0-666666666666")
    assert [r.id for r in after.releases] == [successor.id]
    with pytest.raises(ReleaseChangeError, match="only pinned release"):
        without_release(after, successor.id)
    with pytest.raises(ReleaseChangeError, match="no release"):
        without_release(both, "nope")
    with pytest.raises(ReleaseChangeError, match="already pinned"):
        with_release(both, successor)
    with pytest.raises(ReleaseChangeError, match="already pinned"):
        with_release(both, pinned_release("same-pcrs-new-name", {0: OTHER0}, source="pcrs", now=WHEN))


def test_a_release_comes_from_a_measured_manifest_only() -> None:
    from tests.unit.test_release_manifest import _document as manifest_document
    from tests.unit.test_release_manifest import _measured

    release = release_from_manifest(manifest_from_document(_measured()), now=WHEN)
    assert release.id == "ccc-enclave-0.2.0-666666666666"
    assert release.pcrs == {"PCR0": "a1" * 48, "PCR1": "b2" * 48, "PCR2": "c3" * 48}
    assert release.source == "release-manifest" and release.git_commit and release.manifest_sha256
    assert release.date == "2026-12-05T03:00:00Z"
    with pytest.raises(TrustFileError, match="no measurement"):
        release_from_manifest(manifest_from_document(manifest_document()))


@pytest.mark.parametrize("pcrs", [{1: PCR1}, {0: "0" * 96}, {0: "zz"}, {0: PCR0, 9: PCR1}])
def test_bare_pcrs_are_checked(pcrs: dict[int, str]) -> None:
    with pytest.raises(TrustFileError):
        pinned_release(None, pcrs, source="pcrs")


# ----- location --------------------------------------------------------------------------------


def test_the_file_is_found_in_order_flag_env_xdg_home(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert default_trust_path(env) == tmp_path / "xdg" / "ccc" / "trust.json"
    assert default_trust_path({"HOME": str(tmp_path / "home")}) == tmp_path / "home" / ".config" / "ccc" / "trust.json"
    assert default_trust_path({"HOME": str(tmp_path), "XDG_CONFIG_HOME": "relative"}).is_relative_to(tmp_path)
    with pytest.raises(NoTrustFile) as missing:
        resolve_trust_path(None, env)
    assert "ccc trust init" in str(missing.value) and TRUST_FILE_ENV in str(missing.value)
    default = default_trust_path(env)
    default.parent.mkdir(parents=True)
    write_trust(default, _trust())
    assert resolve_trust_path(None, env) == default
    assert resolve_trust_path(None, {**env, TRUST_FILE_ENV: "/elsewhere.json"}) == Path("/elsewhere.json")
    assert resolve_trust_path(Path("given.json"), {**env, TRUST_FILE_ENV: "/elsewhere.json"}) == Path("given.json")
    with pytest.raises(NoTrustFile, match="ccc trust init"):
        load_tenant_trust(tmp_path / "nothing.json", env)
    assert load_tenant_trust(None, env) == _trust()


# ----- audit -----------------------------------------------------------------------------------


def test_audit_reports_no_drift_when_the_key_releases_exactly_to_the_pins() -> None:
    report = audit_releases(_trust(), [KeyRelease("rel", {0: PCR0.upper(), 1: PCR1, 2: PCR2})])
    assert not report.drift and report.matched == (("ccc-enclave-0.2.0-666666666666", "rel"),)


def test_audit_flags_a_key_statement_for_an_unpinned_enclave_and_an_unreleased_pin() -> None:
    report = audit_releases(_trust(), [KeyRelease("rogue", {0: OTHER0})])
    assert report.drift
    messages = [finding.message for finding in report.findings if finding.severity == "drift"]
    assert any("rogue" in m and "can decrypt your inputs" in m for m in messages)
    assert any("ccc-enclave-0.2.0-666666666666" in m and "not one the key releases to" in m for m in messages)


def test_audit_notes_a_key_statement_that_pins_fewer_pcrs_and_refuses_a_conflicting_one() -> None:
    weaker = audit_releases(_trust(), [KeyRelease("image-only", {0: PCR0})])
    assert not weaker.drift and any("does not pin PCR1, PCR2" in f.message for f in weaker.findings)
    conflicting = audit_releases(_trust(), [KeyRelease("other-kernel", {0: PCR0, 1: OTHER0})])
    assert conflicting.drift
