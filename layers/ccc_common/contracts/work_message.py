"""The work message: an S3 "object created" event, in every envelope AWS delivers it in.

Writers: AWS, not this repository. S3 sends "Object Created" events to EventBridge, whose rules
put them on the work queue (the parent agent's) and hand them to the job-events Lambda; the local
stack does the same with moto. ``encode_eventbridge_object_created`` and ``encode_s3_notification``
build the same shapes for tests and tools, so they and the readers agree on one definition.
Readers: the parent agent and the dead-letters Lambda (``parse_work_message``: an SQS body) and
the job-events Lambda (``parse_eventbridge_s3``: an event already decoded by Lambda).

Accepted envelopes: the full EventBridge event (what an EventBridge rule with an SQS target
sends), a classic S3 notification (``{"Records": [...]}``, keys URL-encoded, plus the one-off
``s3:TestEvent`` sent when a notification is configured), or either wrapped in an SNS
notification.

Versions: every envelope names its version and a reader refuses one it does not know
(``WorkMessageError`` with reason ``unknown-version``): EventBridge ``version`` "0" and the S3
``detail.version`` "0"; S3 notification records ``eventVersion`` "2.x". Why not refuse unknown
fields too, as the formats this repository writes do: AWS owns these shapes and documents them as
growing *within* a version (S3 bumps only the minor ``eventVersion`` when it adds fields; replayed
EventBridge events gain ``replay-name``; moto writes ``eTag`` where S3 writes ``etag``). Refusing
them would park every job in the dead-letter queue the day AWS adds a field. So this contract is
strict about the version, the types of every field it reads, the sizes, and the key scheme, and
ignores fields it does not read.

Everything arriving here is untrusted text: sizes, nesting and types are checked, and anything
unexpected raises ``EventError`` with a machine-readable ``reason`` (never a KeyError/TypeError).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from ccc_common.errors import CommonError
from ccc_core.identity import JobRef, NamingError, parse_inbox_key

# SQS allows 1 MiB bodies; an S3 event for one object is ~1-2 KiB. Anything bigger is not ours.
MAX_MESSAGE_CHARS = 256 * 1024
MAX_RECORDS = 100
MAX_KEY_BYTES = 1024
MAX_BUCKET_CHARS = 63

EVENTBRIDGE_VERSION = "0"  # the EventBridge envelope's version
S3_DETAIL_VERSION = "0"  # the version of the S3 "detail" inside it
S3_NOTIFICATION_VERSION = re.compile(r"^2\.\d{1,3}$")  # major 2; minors only add fields
S3_SOURCE = "aws.s3"
OBJECT_CREATED = "Object Created"


class EventError(CommonError, ValueError):
    """An event or message that cannot be understood. ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class WorkMessageError(EventError):
    """A work-queue message body that is not a usable S3 event for the inbox."""


@dataclass(frozen=True)
class Ignored:
    """A well-formed event that carries no work (S3 test event, a deletion, another bucket...)."""

    reason: str


class EnvelopeKind(StrEnum):
    EVENTBRIDGE = "eventbridge"
    S3_NOTIFICATION = "s3-notification"


@dataclass(frozen=True)
class S3ObjectCreated:
    """One created object, independent of the envelope it arrived in. ``key`` is decoded.

    ``canonical``: the key arrived exactly as AWS writes it. Job keys use only characters that S3
    never escapes, so a job key that arrived escaped (``%61`` for ``a``) was not written by S3, and
    readers refuse it rather than map it onto a job (``parse_work_message``, ``domain.events``)."""

    bucket: str
    key: str
    size: int | None
    event_time: datetime | None
    envelope: EnvelopeKind
    event_id: str | None = None
    canonical: bool = True


# ------------------------------------------------------------------------------------- decoding


def _fail(reason: str, detail: str, error: type[EventError] = EventError) -> EventError:
    return error(reason, detail)


def _as_mapping(value: Any, what: str, error: type[EventError]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail("malformed", f"{what} must be a JSON object", error)
    return value


def _as_str(value: Any, what: str, error: type[EventError], max_len: int = 1024) -> str:
    if not isinstance(value, str) or not value:
        raise _fail("malformed", f"{what} must be a non-empty string", error)
    if len(value) > max_len:
        raise _fail("malformed", f"{what} is longer than {max_len} characters", error)
    return value


def _version(value: Any, what: str, known: str | re.Pattern[str], error: type[EventError]) -> None:
    """Missing or not text: malformed. Text but not a version this reader knows: unknown-version."""
    text = _as_str(value, what, error, max_len=16)
    ok = known.fullmatch(text) is not None if isinstance(known, re.Pattern) else text == known
    if not ok:
        expected = known.pattern if isinstance(known, re.Pattern) else repr(known)
        raise _fail("unknown-version", f"{what} is {text!r}; this reader knows {expected}", error)


def _size(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None  # size is informational only; a weird value is dropped, not trusted
    return value


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_ESCAPED_SLASH = re.compile("%2f", re.IGNORECASE)


def _decode_key(raw: Any, error: type[EventError], *, url_encoded: bool) -> tuple[str, bool]:
    """The key and whether it arrived canonical, decoded exactly as the envelope encodes it.

    Classic S3 notifications URL-encode keys ("red flower" -> "red+flower"): decoded once. The
    EventBridge event carries the key as stored (AWS's examples and moto): never decoded, so a
    literal ``%37`` in an uploaded key stays ``%37`` and cannot alias the job whose id has a 7
    there. Keys of our scheme contain only [a-z0-9-./], which no encoding escapes, so both readings
    agree on every job key; a job key is only accepted if decoding left it unchanged, but for the
    "/" that some encoders escape (moto writes ``%2F``; S3's own events leave it).
    """
    text = _as_str(raw, "object key", error, max_len=3 * MAX_KEY_BYTES)
    key = unquote_plus(text) if url_encoded else text
    if not key or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise _fail("malformed", "object key is empty or longer than 1024 bytes", error)
    return key, _ESCAPED_SLASH.sub("/", text) == key if url_encoded else True


def _bucket(raw: Any, error: type[EventError]) -> str:
    return _as_str(raw, "bucket name", error, max_len=MAX_BUCKET_CHARS)


def _from_eventbridge(event: Mapping[str, Any], error: type[EventError]) -> S3ObjectCreated | Ignored:
    if event.get("source") != S3_SOURCE:
        return Ignored(f"EventBridge event from source {str(event.get('source'))[:64]!r}, not aws.s3")
    _version(event.get("version"), "EventBridge version", EVENTBRIDGE_VERSION, error)
    if event.get("detail-type") != OBJECT_CREATED:
        return Ignored(f"S3 event of type {str(event.get('detail-type'))[:64]!r}, not Object Created")
    detail = _as_mapping(event.get("detail"), "detail", error)
    _version(detail.get("version"), "detail.version", S3_DETAIL_VERSION, error)
    bucket = _as_mapping(detail.get("bucket"), "detail.bucket", error)
    obj = _as_mapping(detail.get("object"), "detail.object", error)
    event_id = event.get("id")
    key, canonical = _decode_key(obj.get("key"), error, url_encoded=False)
    return S3ObjectCreated(
        bucket=_bucket(bucket.get("name"), error),
        key=key,
        canonical=canonical,
        size=_size(obj.get("size")),
        event_time=_time(event.get("time")),
        envelope=EnvelopeKind.EVENTBRIDGE,
        event_id=event_id if isinstance(event_id, str) and len(event_id) <= 128 else None,
    )


def parse_eventbridge_s3(event: Any) -> S3ObjectCreated | Ignored:
    """An EventBridge event as delivered to a Lambda (already a dict)."""
    return _from_eventbridge(_as_mapping(event, "event", EventError), EventError)


def _from_notification(message: Mapping[str, Any], error: type[EventError]) -> list[S3ObjectCreated] | Ignored:
    if message.get("Event") == "s3:TestEvent":
        return Ignored("s3:TestEvent (sent once when the bucket notification is configured)")
    records = message.get("Records")
    if not isinstance(records, list):
        raise _fail("malformed", "Records must be a list", error)
    if len(records) > MAX_RECORDS:
        raise _fail("too-many-records", f"{len(records)} records (limit {MAX_RECORDS})", error)
    created: list[S3ObjectCreated] = []
    for index, record_value in enumerate(records):
        record = _as_mapping(record_value, f"Records[{index}]", error)
        if record.get("eventSource") != "aws:s3":
            raise _fail("malformed", f"Records[{index}] is not an S3 event", error)
        _version(record.get("eventVersion"), f"Records[{index}].eventVersion", S3_NOTIFICATION_VERSION, error)
        name = record.get("eventName")
        if not isinstance(name, str) or not name.startswith("ObjectCreated:"):
            continue  # deletions, restores, replication...: not work
        s3 = _as_mapping(record.get("s3"), f"Records[{index}].s3", error)
        bucket = _as_mapping(s3.get("bucket"), f"Records[{index}].s3.bucket", error)
        obj = _as_mapping(s3.get("object"), f"Records[{index}].s3.object", error)
        key, canonical = _decode_key(obj.get("key"), error, url_encoded=True)
        created.append(
            S3ObjectCreated(
                bucket=_bucket(bucket.get("name"), error),
                key=key,
                canonical=canonical,
                size=_size(obj.get("size")),
                event_time=_time(record.get("eventTime")),
                envelope=EnvelopeKind.S3_NOTIFICATION,
            )
        )
    if not created:
        return Ignored("no ObjectCreated records")
    return created


def _loads(text: str, error: type[EventError]) -> Any:
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise _fail("invalid-json", "nested too deeply", error) from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _fail("invalid-json", f"not JSON ({exc.__class__.__name__})", error) from exc


def parse_s3_message(body: Any) -> list[S3ObjectCreated] | Ignored:
    """Every created object a work-queue message body describes (any envelope, any bucket)."""
    error = WorkMessageError
    if not isinstance(body, str):
        raise _fail("malformed", "message body must be text", error)
    if len(body) > MAX_MESSAGE_CHARS:
        raise _fail("too-large", f"{len(body)} characters (limit {MAX_MESSAGE_CHARS})", error)
    message = _as_mapping(_loads(body, error), "message body", error)
    if message.get("Type") == "Notification" and "TopicArn" in message:  # S3 -> SNS -> SQS
        inner = _as_str(message.get("Message"), "SNS Message", error, max_len=MAX_MESSAGE_CHARS)
        message = _as_mapping(_loads(inner, error), "SNS Message", error)
    if "detail-type" in message or "detail" in message:
        single = _from_eventbridge(message, error)
        return single if isinstance(single, Ignored) else [single]
    if "Records" in message or "Event" in message:
        return _from_notification(message, error)
    raise _fail("unknown-shape", "neither an EventBridge event nor an S3 notification", error)


def parse_work_message(body: Any, *, inbox_bucket: str | None = None) -> list[JobRef] | Ignored:
    """The jobs a work-queue message asks for, in order, without duplicates.

    Raises WorkMessageError when the message cannot be understood, names an object outside the
    inbox key scheme, or (if ``inbox_bucket`` is given) another bucket: such a message cannot
    become a job, so the caller should let it go to the dead-letter queue (where it is archived).
    """
    parsed = parse_s3_message(body)
    if isinstance(parsed, Ignored):
        return parsed
    refs: list[JobRef] = []
    for obj in parsed:
        if inbox_bucket is not None and obj.bucket != inbox_bucket:
            raise WorkMessageError("wrong-bucket", f"object in bucket {obj.bucket!r}, expected the inbox")
        try:
            ref = parse_inbox_key(obj.key)
        except NamingError as exc:
            raise WorkMessageError("bad-key", str(exc)) from exc
        if not obj.canonical:
            raise WorkMessageError("bad-key", f"object key {obj.key!r} arrived escaped; S3 escapes no job key")
        if ref not in refs:
            refs.append(ref)
    return refs


# ------------------------------------------------------------------------------------- encoding


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_eventbridge_object_created(
    bucket: str,
    key: str,
    *,
    size: int,
    account: str,
    region: str,
    time: datetime,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The EventBridge "Object Created" event S3 emits for ``bucket``/``key`` (the key is not
    URL-encoded in this envelope). An SQS target receives it as the JSON text of this dict."""
    return {
        "version": EVENTBRIDGE_VERSION,
        "id": event_id or str(uuid.uuid4()),
        "detail-type": OBJECT_CREATED,
        "source": S3_SOURCE,
        "account": account,
        "time": _iso(time),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": S3_DETAIL_VERSION,
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size},
            "reason": "PutObject",
        },
    }


def encode_s3_notification(
    objects: Iterable[tuple[str, str]], *, region: str, time: datetime, event_name: str = "ObjectCreated:Put"
) -> dict[str, Any]:
    """A classic S3 notification (``{"Records": [...]}``) for ``(bucket, key)`` pairs, keys URL-encoded
    as S3 encodes them."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": event_name,
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
            }
            for bucket, key in objects
        ]
    }


def encode_work_message(event: Mapping[str, Any]) -> str:
    """The SQS body for an event built above (what EventBridge or S3 put on the queue)."""
    return json.dumps(event, separators=(",", ":"))


__all__ = [
    "MAX_MESSAGE_CHARS",
    "EnvelopeKind",
    "EventError",
    "Ignored",
    "S3ObjectCreated",
    "WorkMessageError",
    "encode_eventbridge_object_created",
    "encode_s3_notification",
    "encode_work_message",
    "parse_eventbridge_s3",
    "parse_s3_message",
    "parse_work_message",
]
