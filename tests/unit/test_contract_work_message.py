"""The work-message contract (`ccc_common.contracts.work_message`): AWS (moto locally) writes the
S3 events, the parent agent and the dead-letters Lambda (`parse_work_message`) and the job-events
Lambda (`parse_eventbridge_s3`) read them.

Envelope parsing in depth (hostile input, every envelope) is tests/unit/test_events.py; this file
pins the contract: encoders and decoders agree, versions are checked, and the one deliberate
leniency (fields AWS adds within a version) stays deliberate.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_common.contracts.work_message import (
    EnvelopeKind,
    EventError,
    Ignored,
    WorkMessageError,
    encode_eventbridge_object_created,
    encode_s3_notification,
    encode_work_message,
    parse_eventbridge_s3,
    parse_s3_message,
    parse_work_message,
)
from ccc_common.domain.events import classify_object
from ccc_core.identity import JobRef
from tests.conftest import load_event

INBOX = "ccc-local-inbox-111122223333-eu-west-1"
WHEN = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
refs = st.builds(JobRef, tenant=st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True),
                 job_id=st.from_regex(r"[0-9a-f]{32}", fullmatch=True))


def _eventbridge(ref: JobRef, **changes: object) -> dict:
    event = encode_eventbridge_object_created(INBOX, ref.inbox_key, size=48213, account="111122223333",
                                              region="eu-west-1", time=WHEN)
    event.update(changes)
    return event


@given(refs, st.integers(min_value=0, max_value=2**40))
def test_an_encoded_eventbridge_event_decodes_for_every_reader(ref: JobRef, size: int) -> None:
    event = encode_eventbridge_object_created(INBOX, ref.inbox_key, size=size, account="111122223333",
                                              region="eu-west-1", time=WHEN)
    body = encode_work_message(event)
    assert parse_work_message(body, inbox_bucket=INBOX) == [ref]  # parent agent
    created = parse_eventbridge_s3(event)  # job-events Lambda
    assert not isinstance(created, Ignored)
    assert (created.bucket, created.key, created.size, created.event_time, created.envelope) == (
        INBOX, ref.inbox_key, size, WHEN, EnvelopeKind.EVENTBRIDGE
    )


@given(st.lists(st.text(min_size=1, max_size=60).filter(lambda k: len(k.encode()) <= 1024), min_size=1, max_size=5))
def test_classic_notifications_url_encode_keys_and_decode_them_back(keys: list[str]) -> None:
    body = encode_work_message(encode_s3_notification([(INBOX, k) for k in keys], region="eu-west-1", time=WHEN))
    parsed = parse_s3_message(body)
    assert not isinstance(parsed, Ignored)
    assert [o.key for o in parsed] == keys and {o.envelope for o in parsed} == {EnvelopeKind.S3_NOTIFICATION}


def test_the_sample_events_aws_and_moto_send_are_accepted() -> None:
    for name in ("s3_object_created_inbox.json", "s3_object_created_result.json", "sqs_work_message_classic_s3.json"):
        parsed = parse_s3_message(json.dumps(load_event(name)))
        assert isinstance(parsed, list) and len(parsed) == 1


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda e: e.update(version="1"), "unknown-version"),
        (lambda e: e["detail"].update(version="1"), "unknown-version"),
        (lambda e: e.pop("version"), "malformed"),
        (lambda e: e["detail"].pop("version"), "malformed"),
        (lambda e: e.update(version=0), "malformed"),
    ],
)
def test_eventbridge_versions_are_checked(edit, reason: str) -> None:
    event = _eventbridge(JobRef("tenant-a", "ab" * 16))
    edit(event)
    with pytest.raises(WorkMessageError) as info:
        parse_work_message(encode_work_message(event))
    assert info.value.reason == reason
    with pytest.raises(EventError) as info:
        parse_eventbridge_s3(event)
    assert info.value.reason == reason


@pytest.mark.parametrize(("version", "ok"), [("2.0", True), ("2.1", True), ("2.3", True), ("3.0", False),
                                             ("1.0", False), ("2", False)])
def test_s3_notification_versions_are_checked_by_major(version: str, ok: bool) -> None:
    message = encode_s3_notification([(INBOX, JobRef("tenant-a", "ab" * 16).inbox_key)], region="eu-west-1", time=WHEN)
    message["Records"][0]["eventVersion"] = version
    if ok:
        assert parse_work_message(encode_work_message(message)) == [JobRef("tenant-a", "ab" * 16)]
    else:
        with pytest.raises(WorkMessageError) as info:
            parse_work_message(encode_work_message(message))
        assert info.value.reason == "unknown-version"


def test_fields_aws_adds_within_a_version_are_tolerated_deliberately() -> None:
    """AWS owns these envelopes and grows them without a version change (a replayed event gains
    `replay-name`; moto writes `eTag` where S3 writes `etag`): refusing them would send every job to
    the dead-letter queue. Every field the readers use is still type-checked."""
    ref = JobRef("tenant-a", "ab" * 16)
    event = _eventbridge(ref, **{"replay-name": "replay-1"})
    event["detail"]["object"].update({"eTag": "x", "version-id": "v", "sequencer": "s"})
    event["detail"]["source-storage-class"] = "STANDARD"
    assert parse_work_message(encode_work_message(event)) == [ref]
    event["detail"]["object"]["key"] = 42
    with pytest.raises(WorkMessageError) as info:
        parse_work_message(encode_work_message(event))
    assert info.value.reason == "malformed"


# Issue 13: a literal "%37" in an uploaded key must not alias the job whose id has a "7" there.
ALIASED = JobRef(tenant="tenant-a", job_id="7" + "a" * 31)
ALIAS_KEY = f"jobs/tenant-a/%37{'a' * 31}.ccc"


def test_an_eventbridge_key_is_taken_as_stored_and_never_aliases_another_job() -> None:
    event = encode_eventbridge_object_created(INBOX, ALIAS_KEY, size=10, account="111122223333", region="eu-west-1",
                                              time=WHEN)
    created = parse_eventbridge_s3(event)
    assert not isinstance(created, Ignored) and created.key == ALIAS_KEY  # not decoded to ALIASED's key
    with pytest.raises(WorkMessageError) as refused:
        parse_work_message(encode_work_message(event), inbox_bucket=INBOX)
    assert refused.value.reason == "bad-key"
    assert isinstance(classify_object(created, inbox_bucket=INBOX, results_bucket="results"), Ignored)


def test_a_classic_notification_decodes_once_so_the_alias_key_stays_literal() -> None:
    # S3 escapes the "%" of the uploaded key: "%2537..."; decoding once gives the literal key back.
    body = encode_work_message(encode_s3_notification([(INBOX, ALIAS_KEY)], region="eu-west-1", time=WHEN))
    assert "%2537" in body
    with pytest.raises(WorkMessageError) as refused:
        parse_work_message(body, inbox_bucket=INBOX)
    assert refused.value.reason == "bad-key"


def test_a_job_key_that_arrived_escaped_is_refused_not_mapped_onto_the_job() -> None:
    # S3 never escapes [a-z0-9-./]; "%37" in a notification is a forged spelling of ALIASED's key.
    event = encode_s3_notification([(INBOX, ALIASED.inbox_key)], region="eu-west-1", time=WHEN)
    event["Records"][0]["s3"]["object"]["key"] = ALIAS_KEY
    parsed = parse_s3_message(encode_work_message(event))
    assert not isinstance(parsed, Ignored) and parsed[0].key == ALIASED.inbox_key and not parsed[0].canonical
    with pytest.raises(WorkMessageError) as refused:
        parse_work_message(encode_work_message(event), inbox_bucket=INBOX)
    assert refused.value.reason == "bad-key"
    assert isinstance(classify_object(parsed[0], inbox_bucket=INBOX, results_bucket="results"), Ignored)
    # The canonical spelling still names the job, in both envelopes.
    assert parse_work_message(encode_work_message(encode_s3_notification([(INBOX, ALIASED.inbox_key)],
                                                                         region="eu-west-1", time=WHEN)),
                              inbox_bucket=INBOX) == [ALIASED]
