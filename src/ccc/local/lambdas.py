"""The stack's Lambda functions, run locally in one process and fed the events AWS would send.

Why a process of their own: on AWS the handlers run in Lambda, apart from the fleet; here they run
as the real handler functions (`functions.*.handler.handler`) with the same environment variables
the CDK stack sets, their AWS clients pointed at moto, and the same event shapes:

* job_events  <- EventBridge "Object Created" events (the rules target a local queue; each message
                 body is the event) -> jobs table status;
* dead_letters <- SQS event batches built from the work DLQ, as an event source mapping would
                 (ReportBatchItemFailures: only records not reported as failures are deleted);
* jobs_api    <- API Gateway proxy events from a local HTTP server that verifies SigV4 first
                 (`ccc.local.api_server`), as API Gateway's IAM authorisation does;
* scaler      <- a schedule (every `scaler_tick_s`, faster than AWS's minute) and a wake-up event
                 whenever a new job arrives (the local equivalent of job_events invoking it), only
                 when autoscaling is on.

    python -m ccc.local.lambdas --config run/lambdas.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from opentelemetry import trace

from ccc.atomic_files import write_json_atomic
from ccc.local.api_server import Caller, LocalJobsApiServer
from ccc.telemetry.stack_sampler import StackSampler
from ccc_common.contracts import lambda_env
from ccc_common.contracts.scaler_wake import wake_payload
from ccc_core.identity import NamingError, parse_failure_key, parse_inbox_key, parse_result_key
from ccc_core.redaction import safe_attributes
from ccc_core.telemetry.names import ATTR_JOB_ID, ATTR_TENANT, SPAN_FN_JOB_EVENTS
from ccc_core.telemetry.propagation import job_context
from ccc_core.telemetry.setup import setup_telemetry

log = logging.getLogger("ccc.local.lambdas")
RECEIVE_WAIT_S = 1
ERROR_PAUSE_S = 1.0


@dataclass(frozen=True)
class LambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = ""

    @classmethod
    def for_call(cls, function_name: str, account: str, region: str) -> LambdaContext:
        return cls(
            function_name=function_name,
            invoked_function_arn=f"arn:aws:lambda:{region}:{account}:function:{function_name}",
            aws_request_id=str(uuid.uuid4()),
        )


@dataclass(frozen=True)
class LambdasConfig:
    env: Mapping[str, str]
    account: str
    region: str
    job_events_queue_url: str
    dlq_url: str
    dlq_arn: str
    function_names: Mapping[str, str]
    scaler_enabled: bool
    scaler_tick_s: float
    ready_file: str | None = None
    # The jobs API's HTTP front (SigV4 in front of the handler): who may call it, and where it listens.
    identities: Sequence[Mapping[str, str]] = ()
    api_port: int = 0

    @classmethod
    def load(cls, path: Path) -> LambdasConfig:
        data = json.loads(Path(path).read_text())
        return cls(**data)


def scheduled_event(account: str, region: str, rule_name: str) -> dict[str, Any]:
    """The EventBridge schedule event a rate() rule delivers to its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule_name}"],
        "detail": {},
    }


def sqs_event_records(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS event source mapping's event for a batch of received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": dict(m.get("MessageAttributes", {})),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class LocalLambdas:
    """Pumps events into the handlers until stopped."""

    def __init__(self, config: LambdasConfig) -> None:
        self.config = config
        os.environ.update(config.env)  # before the handlers' modules read their environment
        # Import every handler here, after the environment is set (their modules build Powertools
        # loggers from it at import) and in one thread: concurrent first imports of Powertools
        # deadlock or see half-initialised modules. The only imports not at the top of this module.
        import functions.dead_letters.handler
        import functions.job_events.handler
        import functions.jobs_api.handler
        import functions.scaler.handler  # noqa: F401

        self._sqs = boto3.client("sqs", region_name=config.region)
        self._telemetry = _start_telemetry(config, self._sqs)
        self._stop = threading.Event()
        self._api: Any = None
        self._wake = threading.Event()
        self._pending_wakes: list[str] = []
        self._lock = threading.Lock()

    def _context(self, function: str) -> LambdaContext:
        return LambdaContext.for_call(self.config.function_names[function], self.config.account, self.config.region)

    # ----- job_events --------------------------------------------------------------------
    def pump_job_events(self) -> None:
        from functions.job_events.handler import handler

        inbox = self.config.env.get(lambda_env.INBOX_BUCKET)
        while not self._stop.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=self.config.job_events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=RECEIVE_WAIT_S
                )
            except Exception as exc:  # moto restarting / stopping: retry shortly
                log.warning("job-events receive failed: %s", type(exc).__name__)
                self._stop.wait(ERROR_PAUSE_S)
                continue
            for message in response.get("Messages", []):
                try:
                    event = json.loads(message["Body"])
                    with _job_event_span(event):
                        handler(event, self._context("job_events"))
                except Exception as exc:  # left in the queue: redelivered after the visibility timeout
                    log.warning("job_events failed on message %s: %s", message.get("MessageId"), type(exc).__name__)
                    continue
                self._sqs.delete_message(
                    QueueUrl=self.config.job_events_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                detail = event.get("detail", {}) if isinstance(event, dict) else {}
                if detail.get("bucket", {}).get("name") == inbox:
                    self._request_wake(str(detail.get("object", {}).get("key", "")))

    def _request_wake(self, key: str) -> None:
        with self._lock:
            self._pending_wakes.append(key)
        self._wake.set()

    # ----- dead_letters ------------------------------------------------------------------
    def pump_dead_letters(self) -> None:
        from functions.dead_letters.handler import handler

        while not self._stop.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=self.config.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=RECEIVE_WAIT_S,
                    AttributeNames=["All"], MessageAttributeNames=["All"],
                )
            except Exception as exc:
                log.warning("dead-letter receive failed: %s", type(exc).__name__)
                self._stop.wait(ERROR_PAUSE_S)
                continue
            messages = response.get("Messages", [])
            if not messages:
                continue
            event = sqs_event_records(messages, self.config.dlq_arn, self.config.region)
            try:
                result = handler(event, self._context("dead_letters")) or {}
            except Exception as exc:
                log.warning("dead_letters failed on a batch of %d: %s", len(messages), type(exc).__name__)
                continue
            failed = {item.get("itemIdentifier") for item in result.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] not in failed:
                    self._sqs.delete_message(QueueUrl=self.config.dlq_url, ReceiptHandle=message["ReceiptHandle"])

    # ----- scaler ------------------------------------------------------------------------
    def run_scaler(self) -> None:
        from functions.scaler.handler import handler

        rule = f"{self.config.function_names['scaler']}-schedule"
        next_tick = 0.0
        while not self._stop.is_set():
            woken = self._wake.wait(max(0.0, next_tick - time.monotonic()))
            if self._stop.is_set():
                return
            event: dict[str, Any]
            if woken:
                self._wake.clear()
                with self._lock:
                    arrivals, self._pending_wakes = len(self._pending_wakes), []
                event = wake_payload(uuid.uuid4().hex, pending_jobs=max(1, arrivals))
            else:
                event = scheduled_event(self.config.account, self.config.region, rule)
                next_tick = time.monotonic() + self.config.scaler_tick_s
            try:
                handler(event, self._context("scaler"))
            except Exception as exc:
                log.warning("scaler failed: %s: %s", type(exc).__name__, str(exc)[:200])

    # ----- jobs API ----------------------------------------------------------------------
    def start_api(self) -> str:
        from functions.jobs_api.handler import handler

        callers = {
            i["access_key_id"]: Caller(i["name"], i["principal_arn"], i["access_key_id"])
            for i in self.config.identities
        }
        secrets = {i["access_key_id"]: i["secret_access_key"] for i in self.config.identities}
        self._api = LocalJobsApiServer(
            handler, lambda: self._context("jobs_api"), callers, secrets,
            region=self.config.region, account=self.config.account, port=self.config.api_port,
        ).start()
        return str(self._api.url)

    # ----- lifecycle ---------------------------------------------------------------------
    def run(self) -> None:
        targets: list[Callable[[], None]] = [self.pump_job_events, self.pump_dead_letters]
        if self.config.scaler_enabled:
            targets.append(self.run_scaler)
        threads = [threading.Thread(target=t, name=t.__name__, daemon=True) for t in targets]
        for thread in threads:
            thread.start()
        api_url = self.start_api()
        if self.config.ready_file:
            write_json_atomic(Path(self.config.ready_file), {"pid": os.getpid(), "api_url": api_url}, mode=0o644)
        log.info("local lambdas running: %s", ", ".join(t.name for t in threads))
        self._stop.wait()
        self._wake.set()
        self._api.stop()
        for thread in threads:
            thread.join(timeout=RECEIVE_WAIT_S + 5)
        if self._telemetry is not None:
            self._telemetry.shutdown()

    def stop(self) -> None:
        self._stop.set()


def _start_telemetry(config: LambdasConfig, sqs: Any) -> Any:
    """With CCC_STATE_DIR (set by the supervisor): spans of the handlers and the stack's queue/fleet
    gauges (`ccc.telemetry.stack_sampler`) as JSON Lines under <state-dir>/telemetry."""
    state_dir = os.environ.get("CCC_STATE_DIR")
    if not state_dir:
        return None
    telemetry = setup_telemetry("lambdas", state_dir=Path(state_dir), export_interval_ms=1_000)
    StackSampler(
        telemetry.meter(), sqs=sqs, queue_url=config.env.get(lambda_env.WORK_QUEUE_URL, ""), dlq_url=config.dlq_url,
        fleet_file=Path(state_dir) / "fleet.json", autoscaling=boto3.client("autoscaling", region_name=config.region),
        fleet_group=config.env.get(lambda_env.FLEET_GROUP),
    )
    return telemetry


def _job_event_span(event: Any) -> Any:
    """A `ccc.fn.job_events` span in the job's trace (the job id is in the object key)."""
    key = str(((event.get("detail") or {}).get("object") or {}).get("key", "")) if isinstance(event, dict) else ""
    for parse in (parse_inbox_key, parse_result_key, parse_failure_key):
        try:
            ref = parse(key)
        except NamingError:
            continue
        attributes = safe_attributes({ATTR_JOB_ID: ref.job_id, ATTR_TENANT: ref.tenant,
                                      "ccc.object.kind": parse.__name__.removeprefix("parse_").removesuffix("_key")})
        return trace.get_tracer("ccc.local.lambdas").start_as_current_span(
            SPAN_FN_JOB_EVENTS, context=job_context(ref.job_id), attributes=attributes, record_exception=False)
    return contextlib.nullcontext()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccc.local.lambdas")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        lambdas = LocalLambdas(LambdasConfig.load(args.config))
    except (OSError, ValueError, TypeError) as exc:
        print(f"local lambdas: bad config {args.config}: {exc}", file=sys.stderr)
        return 2

    def _on_signal(signum: int, _frame: object) -> None:
        lambdas.stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    lambdas.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
