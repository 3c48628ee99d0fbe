"""`python -m enclave_worker.parent --config FILE.json`: run the parent agent until SIGTERM (then drain)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from ccc_core.logs import configure_logging, log_event
from enclave_worker.parent.agent_config import AgentConfigError, ParentConfig, load_config

_LOG = logging.getLogger("ccc.parent")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m enclave_worker.parent", description=__doc__)
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON config file (else $CCC_PARENT_CONFIG, else $CCC_PARENT_CONFIG_JSON)")
    parser.add_argument("--enclave", default=None, help="override enclave.uri (vsock://CID:PORT, tcp://, unix://)")
    parser.add_argument("--workers", type=int, default=None, help="override workers")
    parser.add_argument("--max-jobs", type=int, default=None, help="stop after receiving this many messages")
    parser.add_argument("--once", action="store_true", help="one receive call, finish those messages, exit")
    parser.add_argument("--ready-file", type=Path, default=None,
                        help="touched once the enclave answers health checks and polling starts")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="local stack state dir: spans/metrics as JSON Lines under <dir>/telemetry")
    return parser


def build_agent(
    config: ParentConfig, *, on_ready: Any = None, metrics: Any = None, enclave_spans: Any = None
) -> tuple[Any, Any]:
    """The agent wired to real boto3 clients, the socket enclave client and a credentials provider."""
    import boto3
    from botocore.config import Config

    from ccc_common.aws.job_leases import DynamoJobLeases
    from ccc_common.aws.jobs_dal import DynamoJobStore
    from ccc_enclave.protocol.job_messages import KmsTarget
    from enclave_worker.parent.agent import AgentSettings, ParentAgent
    from enclave_worker.parent.enclave_client import SocketEnclaveClient
    from enclave_worker.parent.imds import (
        AwsCredentials,
        ImdsClient,
        ImdsCredentialsProvider,
        StaticCredentialsProvider,
    )

    limits = config.settings.limits
    client_kwargs: dict[str, Any] = {"region_name": config.region}
    if config.aws.endpoint_url:
        client_kwargs["endpoint_url"] = config.aws.endpoint_url
    imds = ImdsClient(config.imds.url, token_ttl_s=config.imds.token_ttl_s, timeout_s=config.imds.timeout_s)
    static = config.aws.credentials
    credentials: Any
    if static is not None:
        creds = AwsCredentials(
            access_key_id=static.access_key_id,
            secret_access_key=static.secret_access_key.get_secret_value(),
            session_token=static.session_token.get_secret_value() if static.session_token else None,
        )
        credentials = StaticCredentialsProvider(creds)
        client_kwargs.update(aws_access_key_id=creds.access_key_id, aws_secret_access_key=creds.secret_access_key,
                             aws_session_token=creds.session_token)
    else:
        credentials = ImdsCredentialsProvider(imds)
    # Long polls must not be cut by the read timeout.
    boto_config = Config(read_timeout=config.effective_wait_time_s + 30, retries={"mode": "standard"})
    session = boto3.session.Session()
    sqs = session.client("sqs", config=boto_config, **client_kwargs)
    s3 = session.client("s3", config=boto_config, **client_kwargs)
    settings = AgentSettings(
        queue_url=config.queue_url,
        inbox_bucket=config.inbox_bucket,
        results_bucket=config.results_bucket,
        kms=KmsTarget(region=config.kms_region, endpoint_url=config.kms.endpoint_url),
        workers=config.workers,
        wait_time_s=config.effective_wait_time_s,
        visibility_timeout_s=config.effective_visibility_timeout_s,
        enclave_timeout_s=config.enclave_timeout_s,
        max_ciphertext_bytes=limits.max_ciphertext_bytes,
        backoff_base_s=config.backoff.base_s,
        backoff_max_s=config.backoff.max_s,
        max_jobs=config.max_jobs,
        health_interval_s=config.enclave.health_interval_s,
        lease_s=config.lease_s,
    )
    leases = jobs = None
    if config.jobs_table is not None:
        dynamodb = session.client("dynamodb", config=boto_config, **client_kwargs)
        leases = DynamoJobLeases(dynamodb, config.jobs_table, config.settings.job_ttl_days)
        # GetItem (a missing input's upload window) and UpdateItem (failing it after the window):
        # the two actions the instance role already has on the table for the leases.
        jobs = DynamoJobStore(dynamodb, config.jobs_table, config.settings.job_ttl_days)
    enclave = SocketEnclaveClient(config.enclave.uri, connect_timeout_s=config.enclave.connect_timeout_s,
                                  max_frame_bytes=limits.max_frame_bytes)
    agent = ParentAgent(sqs=sqs, s3=s3, enclave=enclave, credentials=credentials, settings=settings,
                        on_ready=on_ready, metrics=metrics, leases=leases, jobs=jobs, enclave_spans=enclave_spans)
    watcher = None
    if config.lifecycle is not None:
        from ccc_common.domain.drain import DrainSettings
        from enclave_worker.parent.drain_hook import LifecycleWatcher

        lc = config.lifecycle
        watcher = LifecycleWatcher(
            agent, imds, session.client("autoscaling", config=boto_config, **client_kwargs),
            group_name=lc.group_name, hook_name=lc.hook_name, poll_s=lc.poll_s,
            settings=DrainSettings(heartbeat_interval_s=lc.heartbeat_s, max_drain_s=lc.max_drain_s),
        )
    return agent, watcher


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, overrides={
            "enclave_uri": args.enclave, "workers": args.workers, "max_jobs": args.max_jobs,
            "ready_file": str(args.ready_file) if args.ready_file else None,
            "state_dir": str(args.state_dir) if args.state_dir else None,
        })
    except AgentConfigError as exc:
        configure_logging("parent")
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging("parent", config.log_level)
    ready_file = config.ready_file

    def on_ready() -> None:
        if ready_file is not None:
            ready_file.parent.mkdir(parents=True, exist_ok=True)
            ready_file.write_text("ready\n")
        log_event(_LOG, logging.INFO, "parent agent polling", enclave=config.enclave.uri)

    from ccc.telemetry.emf import EmfMetricExporter, sink_for
    from ccc_core.telemetry.setup import otlp_relay_provider, setup_telemetry
    from enclave_worker.parent.agent_metrics import ParentMetrics
    from enclave_worker.parent.enclave_client import SocketEnclaveClient
    from enclave_worker.parent.enclave_spans import EnclaveSpanRelay
    from enclave_worker.parent.monitor import EnclaveMonitor

    tele = config.telemetry
    # The local stack's supervisor hands its state dir to every child in CCC_STATE_DIR.
    state_dir = config.state_dir or (Path(os.environ["CCC_STATE_DIR"]) if os.environ.get("CCC_STATE_DIR") else None)
    try:
        emf = ([EmfMetricExporter(sink_for(tele.emf), namespace=tele.namespace, stage=config.stage)]
               if tele.emf else [])
        telemetry = setup_telemetry("parent", state_dir=state_dir, metric_exporters=emf)
        metrics = ParentMetrics(telemetry.meter())
        enclave_spans = EnclaveSpanRelay(otlp_relay_provider("enclave"))
        agent, watcher = build_agent(config, on_ready=on_ready, metrics=metrics, enclave_spans=enclave_spans)
    except Exception as exc:
        log_event(_LOG, logging.ERROR, "parent agent start failed", error_type=type(exc).__name__,
                  error=str(exc)[:250])
        return 1
    monitor = EnclaveMonitor(
        SocketEnclaveClient(config.enclave.uri, connect_timeout_s=config.enclave.connect_timeout_s),
        metrics, health_interval_s=tele.effective_health_interval_s(config.stage),
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        agent.stop()  # stop polling; run() returns once in-flight jobs are finished

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if watcher is not None:
        watcher.start()
    monitor.start()
    try:
        agent.run(once=args.once)
    finally:
        monitor.stop()
        enclave_spans.shutdown()
        telemetry.shutdown()
        if watcher is not None:
            watcher.finish()
            watcher.close()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
