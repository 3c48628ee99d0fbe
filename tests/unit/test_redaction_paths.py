"""One redaction rule on every path: the Lambdas' Powertools logger masks, the JSON-lines logs of the
parent and the enclave refuse, span attributes refuse; the same payload-like fields fail on all of
them, and the same metadata passes on all of them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from ccc_common.lambda_observability import telemetry_for
from ccc_core.logs import JsonLineFormatter, log_event
from ccc_core.redaction import REDACTED, UnsafeAttributeError, safe_attributes
from ccc_core.telemetry.setup import setup_telemetry

SECRET_TEXT = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg"
PAYLOAD_FIELDS = [
    ("body", SECRET_TEXT),
    ("ccc.result", SECRET_TEXT),
    ("plaintext", SECRET_TEXT),
    ("CiphertextBlob", SECRET_TEXT),
    ("image_bytes", SECRET_TEXT),  # a size qualifier makes a content key metadata only for a number
    ("aws.secret_access_key", SECRET_TEXT),
    ("session_token", SECRET_TEXT),
    ("ccc.job_id", SECRET_TEXT.encode()),  # raw bytes: never metadata, whatever the key
]
METADATA = {"ccc.job_id": "ab" * 16, "result_key": "results/t/j.ccc", "image_bytes": 1234, "infer_ms": 12.5}


def _lambda_log(fields: dict[str, object]) -> str:
    telemetry = telemetry_for("unit")
    stream = io.StringIO()
    telemetry.logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    telemetry.logger.info("event", extra=fields)
    return stream.getvalue()


def _json_lines_log(fields: dict[str, object]) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter("test"))
    logger = logging.getLogger("tests.redaction_paths")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        log_event(logger, logging.INFO, "event", **fields)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize(("key", "value"), PAYLOAD_FIELDS)
def test_lambda_logger_masks_the_field(key: str, value: object) -> None:
    line = json.loads(_lambda_log({key: value}))
    assert line[key] == REDACTED or line[key] == f"{REDACTED} {len(value)} bytes"  # type: ignore[arg-type]
    assert SECRET_TEXT not in json.dumps(line)


@pytest.mark.parametrize(("key", "value"), PAYLOAD_FIELDS)
def test_json_lines_log_refuses_the_field(key: str, value: object) -> None:
    with pytest.raises(UnsafeAttributeError):
        _json_lines_log({key: value})


@pytest.mark.parametrize(("key", "value"), PAYLOAD_FIELDS)
def test_span_attributes_refuse_the_field(tmp_path, key: str, value: object) -> None:
    handle = setup_telemetry("redaction-test", state_dir=tmp_path, set_global=False)
    with (
        pytest.raises(UnsafeAttributeError),
        handle.tracer().start_as_current_span("op", attributes=safe_attributes({key: value})),
    ):
        pass
    handle.shutdown()
    spans = tmp_path / "telemetry" / "redaction-test.spans.jsonl"
    assert not spans.exists() or SECRET_TEXT not in spans.read_text()


def test_metadata_passes_every_path_unchanged(tmp_path) -> None:
    assert {k: v for k, v in json.loads(_lambda_log(METADATA)).items() if k in METADATA} == METADATA
    assert {k: v for k, v in json.loads(_json_lines_log(METADATA)).items() if k in METADATA} == METADATA
    handle = setup_telemetry("redaction-test", state_dir=tmp_path, set_global=False)
    with handle.tracer().start_as_current_span("op", attributes=safe_attributes(METADATA)):
        pass
    handle.shutdown()
    spans = (tmp_path / "telemetry" / "redaction-test.spans.jsonl").read_text().splitlines()
    (span,) = [json.loads(line) for line in spans]
    assert {k: v for k, v in span["attributes"].items() if k in METADATA} == METADATA
