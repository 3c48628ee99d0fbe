"""The one reader of the trust file and release.json: what a person reads is what the program uses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc.release.errors import ManifestError
from ccc.release.manifest import parse_manifest
from ccc.strict_json import StrictJsonError, load_json_object
from ccc.trust.document import parse_trust
from ccc.trust.errors import TrustFileError


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', "duplicate key(s) ['a']"),
        ('{"outer": {"PCR0": "aa", "PCR0": "bb"}}', "duplicate key(s) ['PCR0']"),
        ("[1, 2]", "is a JSON object, got list"),
        ("{", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ],
)
def test_refusals_are_one_line_errors(text: str | bytes, message: str) -> None:
    with pytest.raises(StrictJsonError) as info:
        load_json_object(text, max_bytes=1_000_000, what="test file")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(StrictJsonError, match="too large for a test file"):
        load_json_object("{}" + " " * 99, max_bytes=100, what="test file")


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=8))
def test_any_object_with_distinct_keys_reads_back_as_itself(document: dict[str, object]) -> None:
    assert load_json_object(json.dumps(document), max_bytes=1_000_000, what="test file") == document


def test_both_file_readers_refuse_a_repeated_key_naming_their_file() -> None:
    with pytest.raises(TrustFileError, match=r"^trust\.json: duplicate key\(s\) \['format'\]"):
        parse_trust('{"format": "ccc.trust/v1", "format": "ccc.trust/v1"}', source="trust.json")
    with pytest.raises(ManifestError, match=r"^release\.json: duplicate key\(s\) \['schema'\]"):
        parse_manifest('{"schema": "x", "schema": "y"}', source="release.json")
