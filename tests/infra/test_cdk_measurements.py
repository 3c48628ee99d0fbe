"""Enclave measurements -> key policy: the file format, the loader's refusals, and stage rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdk import measurements as m
from cdk.ccc_stack import PLACEHOLDER_TAG_VALUE, PLACEHOLDER_WARNING_ID
from cdk.stage_config import TAG_MEASUREMENTS
from tests.infra.conftest import MEASUREMENTS_FIXTURE, PLACEHOLDER

ZERO = "0" * 96
REAL = hashlib.sha384(b"some enclave image").hexdigest()


def _doc(**pcrs: str) -> dict[str, Any]:
    return {"format": m.FORMAT, "hash_algorithm": "SHA384", "pcrs": pcrs}


@pytest.fixture
def no_default_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make the loader behave as on a fresh clone (no locally built measurements.json)."""
    monkeypatch.setattr(m, "DEFAULT_FILE", tmp_path / "absent.json")


# --- stage rules -----------------------------------------------------------------------------------


def test_prod_refuses_missing_measurements(no_default_file: None) -> None:
    with pytest.raises(m.MeasurementsError, match="prod needs the enclave measurements"):
        m.resolve_measurements("prod", {})


@pytest.mark.parametrize("context", [{"pcr0": ZERO}, {"pcr0": REAL, "pcr1": ZERO}])
def test_prod_refuses_all_zero_pcrs_from_context(context: dict[str, str]) -> None:
    with pytest.raises(m.MeasurementsError, match="all zeros"):
        m.resolve_measurements("prod", context)


def test_prod_refuses_all_zero_pcrs_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "debug.json"
    path.write_text(json.dumps(_doc(PCR0=ZERO, PCR1=REAL)))
    with pytest.raises(m.MeasurementsError, match="all zeros"):
        m.resolve_measurements("prod", {"measurements": str(path)})


def test_prod_refuses_the_placeholder() -> None:
    with pytest.raises(m.MeasurementsError, match="placeholder"):
        m.resolve_measurements("prod", {"measurements": str(PLACEHOLDER)})
    with pytest.raises(m.MeasurementsError, match="placeholder"):
        m.resolve_measurements("prod", {"pcr0": m.PLACEHOLDER_PCR0})


def test_prod_stack_refuses_to_synthesise_without_measurements(no_default_file: None) -> None:
    from cdk.application import build_app

    with pytest.raises(m.MeasurementsError):
        build_app({"stage": "prod"})
    with pytest.raises(m.MeasurementsError):
        build_app({"stage": "prod", "pcr0": ZERO})


def test_dev_falls_back_to_the_flagged_placeholder(no_default_file: None) -> None:
    found = m.resolve_measurements("dev", {})
    assert found.placeholder and found.pcr0 == m.PLACEHOLDER_PCR0 and found.release_id == "placeholder"


def test_context_pcrs_take_precedence_over_files() -> None:
    found = m.resolve_measurements("prod", {"pcr0": REAL.upper(), "measurements": str(PLACEHOLDER)})
    assert found.pcrs == {0: REAL} and not found.placeholder and found.release_id == REAL[:16]


def test_pcrs_without_pcr0_are_refused() -> None:
    with pytest.raises(m.MeasurementsError, match="pcr0"):
        m.resolve_measurements("dev", {"pcr1": REAL})


def test_dev_placeholder_is_loudly_flagged(dev: Any) -> None:
    metadata = json.loads((dev.outdir / f"{dev.stack.stack_name}.metadata.json").read_text())
    warnings = [e["data"] for entries in metadata.values() for e in entries if e["type"] == "aws:cdk:warning"]
    assert any("PLACEHOLDER enclave measurements" in w and PLACEHOLDER_WARNING_ID in w for w in warnings), warnings
    key = dev.resources[dev.logical_id(dev.stack.keys.storage_key)]
    tags = {t["Key"]: t["Value"] for t in key["Properties"]["Tags"]}
    assert tags[TAG_MEASUREMENTS] == PLACEHOLDER_TAG_VALUE


def test_prod_pins_the_measured_pcrs_and_is_not_flagged(prod: Any, fixture_measurements: dict[str, Any]) -> None:
    key = prod.resources[prod.logical_id(prod.stack.keys.storage_key)]
    tags = {t["Key"]: t["Value"] for t in key["Properties"]["Tags"]}
    pcr0 = fixture_measurements["pcrs"]["PCR0"]
    assert tags[TAG_MEASUREMENTS] == pcr0[:16]
    assert PLACEHOLDER_TAG_VALUE not in json.dumps(prod.template)
    assert f"release/{pcr0[:16]}" in json.dumps(prod.template)


# --- file format -----------------------------------------------------------------------------------


def test_committed_placeholder_and_fixture_are_valid() -> None:
    assert m.load_measurements_file(PLACEHOLDER).placeholder
    fixture = m.load_measurements_file(MEASUREMENTS_FIXTURE)
    assert sorted(fixture.pcrs) == [0, 1, 2, 8] and not fixture.placeholder


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "JSON object"),
        ({"pcrs": {"PCR0": REAL}}, "format"),
        ({**_doc(PCR0=REAL), "hash_algorithm": "SHA256"}, "SHA384"),
        (_doc(), "non-empty"),
        (_doc(PCR1=REAL), "PCR0"),
        (_doc(PCR0=REAL[:-2]), "96 hex"),
        (_doc(PCR0=REAL, PCR3=REAL), "PCR3"),
        (_doc(PCR0=REAL, PCRX=REAL), "PCR<n>"),
        ({**_doc(PCR0=REAL), "placeholder": "yes"}, "true or false"),
        ({**_doc(PCR0=REAL), "placeholder": True}, "placeholder PCR0"),
        (_doc(PCR0=m.PLACEHOLDER_PCR0), "not marked"),
        ({**_doc(PCR0=REAL), "eif_sha256": "abc"}, "eif_sha256"),
    ],
)
def test_malformed_documents_are_refused_with_a_reason(document: Any, reason: str) -> None:
    with pytest.raises(m.MeasurementsError, match=reason):
        m.parse_measurements(document, "test")


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(m.MeasurementsError, match="cannot read"):
        m.load_measurements_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(m.MeasurementsError, match="not JSON"):
        m.load_measurements_file(bad)


@given(st.binary(min_size=1, max_size=64))
def test_any_sha384_is_accepted_lowercased(seed: bytes) -> None:
    value = hashlib.sha384(seed).hexdigest()
    assert m.validate_pcr(0, value.upper()) == value


@given(st.text(alphabet="0123456789abcdefABCDEFxyz ", max_size=120))
def test_validate_pcr_accepts_only_96_hex_not_all_zero(value: str) -> None:
    stripped = value.strip()
    valid = len(stripped) == 96 and all(c in "0123456789abcdefABCDEF" for c in stripped) and set(stripped) != {"0"}
    if valid:
        assert m.validate_pcr(2, value) == stripped.lower()
    else:
        with pytest.raises(m.MeasurementsError):
            m.validate_pcr(2, value)


# --- nitro-cli conversion ----------------------------------------------------------------------------


def test_nitro_cli_output_converts_to_a_loadable_file(tmp_path: Path, fixture_measurements: dict[str, Any]) -> None:
    eif = tmp_path / "ccc-enclave.eif"
    eif.write_bytes(b"not really an eif")
    build = tmp_path / "nitro-build.json"
    text = (MEASUREMENTS_FIXTURE.parent / "nitro-build.json").read_text()
    build.write_text("Start building the Enclave Image...\nEnclave Image successfully created.\n" + text)
    out = tmp_path / "measurements.json"
    assert m.main(["from-nitro-cli", str(build), "--eif", str(eif), "--write", str(out)]) == 0
    loaded = m.load_measurements_file(out)
    expected = {int(k[3:]): v for k, v in fixture_measurements["pcrs"].items() if k != "PCR8"}
    assert loaded.pcrs == expected
    assert json.loads(out.read_text())["eif_sha256"] == hashlib.sha256(b"not really an eif").hexdigest()
    assert m.main(["check", str(out)]) == 0


def test_nitro_cli_debug_output_is_refused(tmp_path: Path) -> None:
    build = tmp_path / "nitro-build.json"
    build.write_text(json.dumps({"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": ZERO}}))
    assert m.main(["from-nitro-cli", str(build), "--write", str(tmp_path / "m.json")]) == 2
    assert not (tmp_path / "m.json").exists()
