"""The result document contract (`ccc_core.result_document`): the enclave writes it, the client reads it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.client.crypto import parse_result
from ccc.client.errors import VerificationError
from ccc_core.identity import JobRef
from ccc_core.result_document import (
    MAX_BOX_COORDINATE,
    MAX_CATS,
    MAX_RESULT_DETECTIONS,
    MAX_RESULT_DOCUMENT_BYTES,
    RESULT_DOCUMENT_BYTES,
    RESULT_FORMAT,
    Detection,
    DocumentError,
    ModelInfo,
    ResultDocument,
    decode_result_document,
    encode_result_document,
)
from ccc_enclave.pipeline import result_document
from ccc_enclave.ports import CatDetection, CountOutcome

JOB = JobRef(tenant="tenant-a", job_id="0123456789abcdef0123456789abcdef")
MODEL = ModelInfo(name="nanodet-g", sha256="ab" * 32)
INPUT_SHA256 = "cd" * 32

coordinates = st.floats(min_value=0, max_value=100_000, allow_nan=False, allow_infinity=False)
detections = st.builds(
    Detection,
    box=st.tuples(coordinates, coordinates, coordinates, coordinates),
    score=st.floats(min_value=0, max_value=1),
)


@st.composite
def documents(draw: st.DrawFn) -> ResultDocument:
    listed = tuple(draw(st.lists(detections, max_size=20)))
    truncated = draw(st.booleans())
    return ResultDocument(
        job_id=draw(st.from_regex(r"[0-9a-f]{32}", fullmatch=True)),
        tenant=draw(st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)),
        input_sha256=draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
        cats=len(listed) + (draw(st.integers(min_value=1, max_value=500)) if truncated else 0),
        detections=listed,
        detections_truncated=truncated,
        model=draw(st.builds(ModelInfo, name=st.text("abcxyz-019.", min_size=1, max_size=20),
                             sha256=st.from_regex(r"[0-9a-f]{64}", fullmatch=True))),
    )


def _document(**changes: object) -> dict[str, object]:
    base = json.loads(encode_result_document(ResultDocument(
        job_id=JOB.job_id, tenant=JOB.tenant, input_sha256=INPUT_SHA256, cats=1,
        detections=(Detection(box=(1, 2, 3, 4), score=0.5),), detections_truncated=False, model=MODEL,
    )))
    base.update(changes)
    return base


@settings(max_examples=80, deadline=None)
@given(documents())
def test_encode_then_decode_is_the_identity_and_the_size_is_fixed(document: ResultDocument) -> None:
    encoded = encode_result_document(document)
    assert len(encoded) == RESULT_DOCUMENT_BYTES
    assert decode_result_document(encoded) == document
    assert decode_result_document(encoded, job=document.job) == document


def test_the_wire_shape_is_canonical_json_with_the_format_tag() -> None:
    encoded = encode_result_document(ResultDocument(job_id=JOB.job_id, tenant=JOB.tenant, input_sha256=INPUT_SHA256,
                                                    cats=0, detections=(), detections_truncated=False, model=MODEL))
    text = encoded.rstrip(b" ").decode()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert json.loads(text)["format"] == RESULT_FORMAT == ResultDocument.model_fields["format"].default


@pytest.mark.parametrize("tag", ["ccc-result/1", "ccc-result/3", "ccc-result/0", "", 1, None])
def test_unknown_formats_are_refused_by_name(tag: object) -> None:
    # ccc-result/1 had no input binding: a client must not accept a result it cannot tie to its upload.
    with pytest.raises(DocumentError) as info:
        decode_result_document(json.dumps(_document(format=tag)).encode())
    assert info.value.reason == "unknown-format" and "ccc-result/2" in str(info.value)
    untagged = _document()
    del untagged["format"]
    with pytest.raises(DocumentError, match="no 'format' tag") as info:
        decode_result_document(json.dumps(untagged).encode())
    assert info.value.reason == "unknown-format"


@pytest.mark.parametrize(
    "changes",
    [
        {"extra": 1},
        {"detections": [{"box": [1, 2, 3, 4], "score": 0.5, "label": "cat"}]},
        {"model": {"name": "m", "sha256": "ab" * 32, "version": "2"}},
    ],
)
def test_unknown_fields_are_refused_at_every_level(changes: dict[str, object]) -> None:
    with pytest.raises(DocumentError, match="Extra inputs") as info:
        decode_result_document(json.dumps(_document(**changes)).encode())
    assert info.value.reason == "malformed"


@pytest.mark.parametrize(
    "changes",
    [{"cats": "2"}, {"cats": True}, {"cats": -1}, {"cats": 1.0}, {"job_id": "nope"}, {"tenant": "Tenant A"},
     {"detections": [{"box": [1, 2, 3], "score": 0.5}]}, {"detections": [{"box": [1, 2, 3, 4], "score": 2}]},
     {"model": {"name": "m", "sha256": "short"}}, {"input_sha256": "AB" * 32}, {"input_sha256": None},
     {"detections_truncated": True}, {"cats": 0}, {"detections_truncated": "no"},
     {"detections": [{"box": [-1, 2, 3, 4], "score": 0.5}]}, {"detections": [{"box": [1, 2, 3, 1e9], "score": 0.5}]},
     {"cats": 400, "detections": [{"box": [1, 2, 3, 4], "score": 0.5}] * 301, "detections_truncated": True}],
)
def test_wrong_types_and_values_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(DocumentError) as info:
        decode_result_document(json.dumps(_document(**changes)).encode())
    assert info.value.reason == "malformed"


def test_size_json_and_job_are_checked_before_anything_is_believed() -> None:
    with pytest.raises(DocumentError) as info:
        decode_result_document(b" " * (MAX_RESULT_DOCUMENT_BYTES + 1))
    assert info.value.reason == "too-large"
    for raw in (b"not json", b"\xff\xfe", b"[" * 10_000, b'{"cats": NaN}'):
        with pytest.raises(DocumentError) as info:
            decode_result_document(raw)
        assert info.value.reason == "invalid-json"
    other = JobRef(tenant="tenant-b", job_id=JOB.job_id)
    with pytest.raises(DocumentError, match="tenant") as info:
        decode_result_document(json.dumps(_document()).encode(), job=other)
    assert info.value.reason == "wrong-job"


def test_what_the_enclave_writes_the_client_reads() -> None:
    outcome = CountOutcome(cats=2, detections=(CatDetection((12.345, 4.5, 100.04, 99.96), 0.91234),
                                               CatDetection((1.0, 2.0, 3.0, 4.0), 0.5)))
    plaintext = result_document(JOB, outcome, MODEL, INPUT_SHA256)
    read = parse_result(plaintext, job=JOB)
    assert read.cats == 2 and read.model == MODEL and read.input_sha256 == INPUT_SHA256
    assert read.detections_truncated is False
    assert read.detections[0] == Detection(box=(12.3, 4.5, 100.0, 100.0), score=0.9123)


def test_the_client_refuses_an_unknown_format_with_a_verification_error_not_a_traceback() -> None:
    newer = json.dumps(_document(format="ccc-result/3", confidence="high")).encode()
    with pytest.raises(VerificationError, match="ccc-result/3.*ccc-result/2"):
        parse_result(newer, job=JOB)


def _outcome(n: int, coordinate: float, score: float = 0.123456) -> CountOutcome:
    return CountOutcome(
        cats=n,
        detections=tuple(CatDetection((coordinate, coordinate - 0.05, coordinate * 0.999, coordinate), score)
                         for _ in range(n)),
    )


@pytest.mark.parametrize(
    ("outcome", "listed", "truncated"),
    [
        (_outcome(0, 0.0), 0, False),
        (_outcome(MAX_RESULT_DETECTIONS, 1.0), MAX_RESULT_DETECTIONS, False),
        # the cap, at the widest coordinates a document may carry (a 1 x 40 M pixel image is narrower)
        (_outcome(MAX_RESULT_DETECTIONS, MAX_BOX_COORDINATE - 0.11), MAX_RESULT_DETECTIONS, False),
        # far above the cap, wide and beyond-bound coordinates (clamped), scores of every length
        (_outcome(5_000, 987_654_321.987), MAX_RESULT_DETECTIONS, True),
    ],
)
def test_every_result_document_has_one_size_whatever_the_count(outcome: CountOutcome, listed: int,
                                                               truncated: bool) -> None:
    worst_model = ModelInfo(name="\U0001f431" * 128, sha256="ab" * 32)  # each escapes to 12 bytes of JSON
    job = JobRef(tenant="t" * 63, job_id=JOB.job_id)
    plaintext = result_document(job, outcome, worst_model, INPUT_SHA256)
    assert len(plaintext) == RESULT_DOCUMENT_BYTES
    read = parse_result(plaintext, job=job)
    assert read.cats == len(outcome.detections)  # the true count, even when boxes were dropped
    assert len(read.detections) == listed and read.detections_truncated is truncated


def test_the_cap_keeps_the_best_scoring_boxes() -> None:
    outcome = CountOutcome(cats=MAX_RESULT_DETECTIONS + 2, detections=tuple(
        CatDetection((1.0, 1.0, 2.0, 2.0), score) for score in [0.1, 0.2] + [0.5] * MAX_RESULT_DETECTIONS))
    read = parse_result(result_document(JOB, outcome, MODEL, INPUT_SHA256), job=JOB)
    assert {d.score for d in read.detections} == {0.5} and read.cats == MAX_RESULT_DETECTIONS + 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.builds(CatDetection, box=st.tuples(*[st.floats(allow_nan=False)] * 4),
                          score=st.floats(min_value=0, max_value=1)), max_size=400))
def test_any_counter_outcome_encodes_to_the_one_size(found: list[CatDetection]) -> None:
    plaintext = result_document(JOB, CountOutcome(cats=len(found), detections=tuple(found)), MODEL, INPUT_SHA256)
    assert len(plaintext) == RESULT_DOCUMENT_BYTES
    assert parse_result(plaintext, job=JOB).cats == len(found)


def test_a_document_that_cannot_fit_is_refused_by_the_writer_not_sent_larger() -> None:
    too_big = ResultDocument.model_construct(
        format=RESULT_FORMAT, job_id=JOB.job_id, tenant=JOB.tenant, input_sha256=INPUT_SHA256, cats=1,
        detections=(Detection(box=(1, 2, 3, 4), score=0.5),) * 2_000, detections_truncated=False, model=MODEL,
    )
    with pytest.raises(DocumentError) as info:
        encode_result_document(too_big)
    assert info.value.reason == "too-large"


def test_the_largest_valid_document_fits_the_one_size() -> None:
    """Every field at its longest: 300 boxes at the coordinate bound, the largest count, the longest
    tenant, a 128-character model name that JSON escapes to 12 bytes a character."""
    largest = ResultDocument(
        job_id=JOB.job_id, tenant="t" * 63, input_sha256=INPUT_SHA256, cats=MAX_CATS,
        detections=(Detection(box=(MAX_BOX_COORDINATE,) * 4, score=0.1235),) * MAX_RESULT_DETECTIONS,
        detections_truncated=True, model=ModelInfo(name="\U0001f431" * 128, sha256="ab" * 32),
    )
    encoded = encode_result_document(largest)
    assert len(encoded) == RESULT_DOCUMENT_BYTES and len(encoded.rstrip(b" ")) > RESULT_DOCUMENT_BYTES - 1024
    assert decode_result_document(encoded) == largest
