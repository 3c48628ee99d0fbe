"""The leak scanner finds planted leaks in every encoding it claims, and stays quiet on clean data.

A scanner that cannot fail proves nothing, so most tests here plant a leak and require a finding.
"""

from __future__ import annotations

import base64
import json
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.telemetry.leakscan import GRAM, LeakScanner, encoded_forms, gram_fingerprints, repr_escaped

JOB = "0123456789abcdef0123456789abcdef"
OTHER_JOB = "fedcba9876543210fedcba9876543210"


def _image(seed: int = 1, size: int = 5000) -> bytes:
    return random.Random(seed).randbytes(size)


def _scanner(image: bytes) -> LeakScanner:
    scanner = LeakScanner()
    scanner.add_blob("image", image)
    return scanner


def _result(cats: int = 3) -> bytes:
    return json.dumps({"cats": cats, "detections": [{"box": [1.0, 2.0, 30.5, 40.0], "score": 0.91}] * cats,
                       "format": "ccc-result/1", "job_id": JOB, "model": {"name": "m", "sha256": "ab" * 32},
                       "tenant": "tenant-a"}, sort_keys=True, separators=(",", ":")).encode()


def _noise(n: int = 20_000) -> bytes:
    return os.urandom(n)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=5000 - 47), st.integers(min_value=0, max_value=300))
def test_any_raw_copy_of_the_guaranteed_length_is_found_wherever_it_starts(start, pad):
    image = _image()
    scanner = _scanner(image)
    assert scanner.guaranteed_length == 47
    leak = image[start : start + scanner.guaranteed_length]
    haystack = os.urandom(pad) + leak + os.urandom(50)
    leaks = scanner.scan_bytes("log", haystack)
    assert [found.encoding for found in leaks] == ["raw"]
    assert pad <= leaks[0].offset < pad + scanner.guaranteed_length


@pytest.mark.parametrize("start", [0, 1, 2, 3, 1000, 1001])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_copies_are_found_at_any_alignment(start, encode):
    image = _image()
    haystack = b'{"event": "debug", "blob": "' + encode(image[start:]) + b'"}\n'
    leaks = _scanner(image).scan_bytes("telemetry", haystack)
    assert any(found.encoding.startswith("base64") for found in leaks)


def test_mime_wrapped_base64_is_found():
    image = _image()
    encoded = base64.encodebytes(image)  # 76-character lines
    assert b"\n" in encoded
    leaks = _scanner(image).scan_bytes("mail", encoded)
    assert any(found.encoding == "base64" for found in leaks)


def test_json_escaped_line_breaks_do_not_hide_base64():
    image = _image()
    haystack = json.dumps({"x": base64.encodebytes(image).decode()}).encode()
    assert b"\\n" in haystack
    assert _scanner(image).scan_bytes("json", haystack)


@pytest.mark.parametrize("upper", [False, True])
def test_hex_copies_are_found(upper):
    image = _image()
    text = image[100:900].hex()
    haystack = b"payload=" + (text.upper() if upper else text).encode()
    leaks = _scanner(image).scan_bytes("log", haystack)
    assert any(found.encoding in ("hex", "HEX") for found in leaks)


def test_python_repr_of_bytes_is_found_plain_and_inside_json():
    image = _image()
    plain = f"oops data={image[40:2000]!r}".encode()
    assert any(found.encoding == "repr" for found in _scanner(image).scan_bytes("log", plain))
    in_json = json.dumps({"event": "oops", "data": str(image[40:2000])}).encode()
    assert any(found.encoding == "repr/json" for found in _scanner(image).scan_bytes("log", in_json))


def test_decrypted_result_document_is_found_raw_and_encoded():
    result = _result()
    scanner = LeakScanner()
    scanner.add_result(JOB, result)
    for haystack in (result, base64.b64encode(b"xx" + result), result.hex().encode()):
        leaks = scanner.scan_bytes("s3://bucket/key", _noise(100) + haystack + _noise(100))
        assert any(found.encoding.startswith("document/") for found in leaks), haystack[:40]


@pytest.mark.parametrize(
    "line",
    [
        f'{{"job_id": "{JOB}", "cats": 4}}',
        f"job {JOB} done cats=4",
        f'{{"ccc.job_id": "{JOB}", "attributes": {{"count": 2}}}}',
        f"job={JOB} detections=[], \"detections\": [{{\"box\": [1]}}]",
        f"{JOB} 'cats': 0",
    ],
)
def test_a_result_next_to_its_job_id_is_found(line):
    scanner = LeakScanner()
    scanner.add_job_id(JOB)
    leaks = scanner.scan_bytes("parent.log", b"first line\n" + line.encode() + b"\nlast line\n")
    assert [found.encoding for found in leaks] == ["record"]
    assert leaks[0].offset == len(b"first line\n")


@pytest.mark.parametrize(
    "line",
    [
        f'{{"job_id": "{JOB}", "receive_count": 1, "outcome": "done", "infer_ms": 12.5}}',
        f'{{"job_id": "{OTHER_JOB}", "cats": 4}}',  # not a job of this run
        '{"name": "ccc.dp.cats_per_day", "value": 4.2}',  # no job id
        f'{{"job_id": "{JOB}", "metric": "ccc.dp.cats_per_day"}}',
    ],
)
def test_metadata_lines_are_not_reported(line):
    scanner = LeakScanner()
    scanner.add_job_id(JOB)
    assert scanner.scan_bytes("log", line.encode() + b"\n") == []


def test_clean_haystacks_give_no_findings_and_reports_never_quote_secrets(tmp_path):
    image = _image()
    scanner = _scanner(image)
    scanner.add_result(JOB, _result())
    (tmp_path / "logs").mkdir()
    line = b'{"event": "job done", "job_id": "%s", "infer_ms": 3}\n' % JOB.encode()
    (tmp_path / "logs" / "parent.log").write_bytes(line)
    (tmp_path / "blob.bin").write_bytes(_noise())
    report = scanner.scan_tree(tmp_path)
    assert report.clean and report.sources == 2 and report.bytes_scanned > 20_000
    (tmp_path / "logs" / "enclave.log").write_bytes(b"dump " + image[:300])
    report = scanner.scan_tree(tmp_path)
    assert not report.clean
    text = " ".join(str(leak) for leak in report.leaks) + report.summary()
    assert image[:32].hex() not in text and "enclave.log" in text


def test_short_or_uniform_secrets_and_bad_strides_are_refused():
    with pytest.raises(ValueError):
        LeakScanner(stride=0)
    with pytest.raises(ValueError):
        LeakScanner().add_blob("tiny", b"abc")
    with pytest.raises(ValueError):
        LeakScanner().add_blob("flat", b"\x00" * 4096)


def test_flat_regions_are_skipped_so_zero_padding_elsewhere_is_not_a_leak():
    image = b"\x00" * 3000 + _image(size=2000)  # a black band, then texture
    scanner = _scanner(image)
    assert scanner.scan_bytes("attestation", b"\x00" * 200) == []
    assert scanner.scan_bytes("log", image[3100:3900])


@settings(max_examples=80)
@given(st.binary(min_size=40, max_size=400), st.data())
def test_every_encoded_sub_range_is_a_substring_of_one_encoded_form(secret, data):
    start = data.draw(st.integers(0, len(secret) - 1))
    end = data.draw(st.integers(start + 1, len(secret)))
    prefix = data.draw(st.binary(max_size=5))
    part = secret[start:end]
    forms = encoded_forms(secret)
    b64 = base64.b64encode(prefix + part + b"tail")
    # Whole 4-character groups that encode only bytes of `part` lie inside one aligned form.
    first = -(-len(prefix) // 3) * 4
    last = (len(prefix) + len(part)) // 3 * 4
    if last > first:
        assert any(b64[first:last] in form for enc, form, _ in forms if enc == "base64")
    assert any(part.hex().encode() in form for enc, form, _ in forms if enc == "hex")
    if repr_escaped(part) != part:
        assert any(repr_escaped(part) in form for enc, form, _ in forms if enc == "repr")


@given(st.binary(min_size=GRAM, max_size=200))
def test_fingerprints_are_positional_and_identical_for_identical_grams(data):
    first, second = gram_fingerprints(data + data)
    n = len(data)
    assert len(first) == 2 * n - GRAM + 1
    assert first[0] == first[n] and second[0] == second[n]
