"""S3 event parsing in every envelope: EventBridge, classic notification, SNS-wrapped; hostile input."""

from __future__ import annotations

import contextlib
import json
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_common.contracts.work_message import (
    MAX_MESSAGE_CHARS,
    EnvelopeKind,
    EventError,
    Ignored,
    WorkMessageError,
    parse_eventbridge_s3,
    parse_s3_message,
    parse_work_message,
)
from ccc_common.domain.events import JobObject, ObjectKind, classify_object
from ccc_core.identity import JobRef
from tests.conftest import load_event

INBOX = "ccc-local-inbox-111122223333-eu-west-1"
RESULTS = "ccc-local-results-111122223333-eu-west-1"
REF = JobRef(tenant="tenant-a", job_id="0123456789abcdef0123456789abcdef")

tenants = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
job_ids = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
refs = st.builds(JobRef, tenant=tenants, job_id=job_ids)


def eventbridge_body(ref: JobRef, bucket: str = INBOX) -> str:
    event = load_event("s3_object_created_inbox.json")
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = ref.inbox_key
    return json.dumps(event)


def classic_body(keys: list[str], bucket: str = INBOX, event_name: str = "ObjectCreated:Put") -> str:
    template = load_event("sqs_work_message_classic_s3.json")["Records"][0]
    records = []
    for key in keys:
        record = json.loads(json.dumps(template))
        record["eventName"] = event_name
        record["s3"]["bucket"]["name"] = bucket
        record["s3"]["object"]["key"] = quote_plus(key)
        records.append(record)
    return json.dumps({"Records": records})


def test_sample_events_parse() -> None:
    obj = parse_eventbridge_s3(load_event("s3_object_created_inbox.json"))
    assert not isinstance(obj, Ignored)
    assert obj.bucket == INBOX and obj.key == REF.inbox_key and obj.size == 48213
    assert obj.envelope is EnvelopeKind.EVENTBRIDGE and obj.event_time is not None
    classic = json.dumps(load_event("sqs_work_message_classic_s3.json"))
    assert parse_work_message(classic, inbox_bucket=INBOX) == [REF]  # URL-encoded key decoded
    assert isinstance(parse_work_message(json.dumps(load_event("sqs_s3_test_event.json"))), Ignored)


@given(refs)
def test_eventbridge_body_round_trips(ref: JobRef) -> None:
    assert parse_work_message(eventbridge_body(ref), inbox_bucket=INBOX) == [ref]


@given(st.lists(refs, min_size=1, max_size=5))
def test_classic_body_round_trips_in_order_without_duplicates(items: list[JobRef]) -> None:
    body = classic_body([r.inbox_key for r in items + items])
    expected: list[JobRef] = []
    for r in items:
        if r not in expected:
            expected.append(r)
    assert parse_work_message(body) == expected


@given(refs)
def test_sns_wrapped_notification(ref: JobRef) -> None:
    wrapped = json.dumps(
        {"Type": "Notification", "TopicArn": "arn:aws:sns:eu-west-1:111122223333:t", "Message": eventbridge_body(ref)}
    )
    assert parse_work_message(wrapped) == [ref]


def test_deletions_and_other_sources_are_ignored() -> None:
    assert isinstance(parse_work_message(classic_body([REF.inbox_key], event_name="ObjectRemoved:Delete")), Ignored)
    scheduled = json.dumps(load_event("scheduled_event.json"))
    assert isinstance(parse_work_message(scheduled), Ignored)
    deleted = load_event("s3_object_created_inbox.json")
    deleted["detail-type"] = "Object Deleted"
    assert isinstance(parse_work_message(json.dumps(deleted)), Ignored)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "invalid-json"),
        ("[1, 2]", "malformed"),
        ('{"hello": 1}', "unknown-shape"),
        ('{"Records": "x"}', "malformed"),
        ('{"Records": [1]}', "malformed"),
        ('{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}', "malformed"),
        ("[" * 100_000, "invalid-json"),
        ("x" * (MAX_MESSAGE_CHARS + 1), "too-large"),
        (json.dumps({"Records": [{}] * 101}), "too-many-records"),
    ],
)
def test_bad_bodies_raise_typed_errors(body: str, reason: str) -> None:
    with pytest.raises(WorkMessageError) as info:
        parse_work_message(body)
    assert info.value.reason == reason


def test_keys_outside_the_scheme_and_wrong_bucket_are_errors() -> None:
    for key in ["jobs/tenant-a/../../etc/passwd.ccc", "results/tenant-a/" + REF.job_id + ".ccc", "jobs/x.ccc"]:
        with pytest.raises(WorkMessageError) as info:
            parse_work_message(classic_body([key]))
        assert info.value.reason == "bad-key"
    with pytest.raises(WorkMessageError) as info:
        parse_work_message(eventbridge_body(REF, bucket="someone-elses-bucket"), inbox_bucket=INBOX)
    assert info.value.reason == "wrong-bucket"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
envelope_keys = st.sampled_from(["Records", "detail", "detail-type", "source", "Event", "Type", "TopicArn", "Message"])


@given(st.dictionaries(envelope_keys, json_values, max_size=5))
def test_arbitrary_envelopes_never_crash(message: dict) -> None:
    try:
        result = parse_work_message(json.dumps(message))
    except WorkMessageError as exc:
        assert exc.reason
        return
    assert isinstance(result, Ignored | list)


@given(st.text(max_size=500))
def test_arbitrary_text_never_crashes(text: str) -> None:
    with contextlib.suppress(WorkMessageError):
        parse_work_message(text)


@given(json_values)
def test_eventbridge_parser_never_crashes(value) -> None:
    with contextlib.suppress(EventError):
        parse_eventbridge_s3(value)


def test_event_error_carries_reason_and_detail() -> None:
    with pytest.raises(EventError) as info:
        parse_s3_message("{")
    assert info.value.reason == "invalid-json" and "not JSON" in str(info.value)


def classify(name: str) -> JobObject | Ignored:
    obj = parse_eventbridge_s3(load_event(name))
    assert not isinstance(obj, Ignored)
    return classify_object(obj, inbox_bucket=INBOX, results_bucket=RESULTS)


def test_classification_of_the_bucket_objects() -> None:
    inbox = classify("s3_object_created_inbox.json")
    assert isinstance(inbox, JobObject) and inbox.kind is ObjectKind.INPUT and inbox.ref == REF
    result = classify("s3_object_created_result.json")
    assert isinstance(result, JobObject) and result.kind is ObjectKind.RESULT and result.ref == REF
    failure = classify("s3_object_created_failure_record.json")
    assert isinstance(failure, JobObject) and failure.kind is ObjectKind.FAILURE_RECORD
    assert isinstance(classify("s3_object_created_attestation.json"), Ignored)


@given(st.text(max_size=80), st.sampled_from([INBOX, RESULTS, "other"]))
def test_classification_never_crashes_and_only_accepts_scheme_keys(key: str, bucket: str) -> None:
    event = load_event("s3_object_created_inbox.json")
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    try:
        obj = parse_eventbridge_s3(event)
    except EventError:
        return
    assert not isinstance(obj, Ignored)
    classified = classify_object(obj, inbox_bucket=INBOX, results_bucket=RESULTS)
    if isinstance(classified, JobObject):
        assert obj.key in {
            classified.ref.inbox_key,
            classified.ref.result_key,
            classified.ref.failure_key,
        }
