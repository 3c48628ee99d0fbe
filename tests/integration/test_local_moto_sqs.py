"""moto's SQS answers the same with `ccc.local.moto_sqs` as without it (moto in-process).

Every scenario runs twice, on stock moto and on the patched one, and asserts what an SQS user
relies on: retention, visibility timeouts, delays, old receipt handles and queue attributes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sqs import models

from ccc.local.moto_sqs import make_sqs_backlog_constant

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(params=["stock moto", "patched moto"])
def sqs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for owner, name in (
        (models.Message, "visible"),
        (models.Message, "delayed"),
        (models.Message, "had_receipt_handle"),
        (models.SQSBackend, "is_message_valid_based_on_retention_period"),
        (models.SQSBackend, "get_queue_attributes"),
    ):
        monkeypatch.setattr(owner, name, owner.__dict__[name])  # restored after the test
    monkeypatch.setattr(models.SQSBackend, "_ccc_backlog_constant", False, raising=False)
    if request.param == "patched moto":
        make_sqs_backlog_constant()
        make_sqs_backlog_constant()  # idempotent
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def _queue(sqs: Any, name: str, **attributes: str) -> tuple[str, models.Queue]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, models.sqs_backends[ACCOUNT][REGION].get_queue(name)


def _receive(sqs: Any, url: str, **kwargs: Any) -> list[dict[str, Any]]:
    return list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **kwargs).get("Messages", []))


def test_a_message_past_the_retention_period_is_never_delivered(sqs: Any) -> None:
    url, queue = _queue(sqs, "retained", MessageRetentionPeriod="60")
    sqs.send_message(QueueUrl=url, MessageBody="old")
    queue._messages[0].sent_timestamp -= 61_000  # sent 61 s ago: past its 60 s retention
    assert _receive(sqs, url) == []
    sqs.send_message(QueueUrl=url, MessageBody="new")
    assert [m["Body"] for m in _receive(sqs, url)] == ["new"]


def test_a_received_message_stays_hidden_until_its_visibility_timeout_ends(sqs: Any) -> None:
    url, queue = _queue(sqs, "visibility")
    sqs.send_message(QueueUrl=url, MessageBody="job")
    first = _receive(sqs, url, VisibilityTimeout=30)
    assert [m["Body"] for m in first] == ["job"]
    assert _receive(sqs, url) == []
    queue._messages[0].visible_at = time.time() * 1000 - 1  # its timeout has just ended
    second = _receive(sqs, url)
    assert [m["Body"] for m in second] == ["job"]
    assert second[0]["ReceiptHandle"] != first[0]["ReceiptHandle"]
    # moto accepts a handle the message had before (AWS may too, within the visibility window)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    queue_attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert queue_attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert queue._messages == []


def test_a_delayed_message_is_delivered_only_after_its_delay(sqs: Any) -> None:
    url, queue = _queue(sqs, "delayed")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert _receive(sqs, url) == []
    queue._messages[0].delayed_until = time.time() * 1000 - 1
    assert [m["Body"] for m in _receive(sqs, url)] == ["later"]


def test_changing_visibility_to_zero_makes_a_message_receivable_again(sqs: Any) -> None:
    url, _queue_model = _queue(sqs, "back")
    sqs.send_message(QueueUrl=url, MessageBody="retry")
    (message,) = _receive(sqs, url, VisibilityTimeout=30)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    assert [m["Body"] for m in _receive(sqs, url)] == ["retry"]
    with pytest.raises(ClientError) as unknown:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle="not-a-handle", VisibilityTimeout=0)
    assert unknown.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"


def test_queue_attributes_count_visible_in_flight_and_delayed_messages(sqs: Any) -> None:
    url, _queue_model = _queue(sqs, "counted", VisibilityTimeout="45")
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.send_message(QueueUrl=url, MessageBody="d", DelaySeconds=60)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "VisibilityTimeout",
    ]
    some = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    assert some == {
        "ApproximateNumberOfMessages": "2",
        "ApproximateNumberOfMessagesNotVisible": "1",
        "ApproximateNumberOfMessagesDelayed": "1",
        "VisibilityTimeout": "45",
    }
    everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert {name: everything[name] for name in names} == some
    assert "Policy" not in everything and "QueueArn" in everything
    with pytest.raises(ClientError) as invalid:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])
    assert invalid.value.response["Error"]["Code"] == "InvalidAttributeName"
