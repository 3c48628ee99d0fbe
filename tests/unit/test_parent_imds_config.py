"""IMDSv2 over real HTTP (a local emulation of the metadata service), the config file, and drain on scale-in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ccc_common.domain.drain import DrainPhase, DrainSettings
from enclave_worker.parent.agent_config import AgentConfigError, load_config, parse_config
from enclave_worker.parent.drain_hook import LifecycleWatcher
from enclave_worker.parent.imds import ImdsClient, ImdsCredentialsProvider, ImdsError


class FakeImds:
    """State of the emulated metadata service."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.issued = 0
        self.ttls: list[str] = []
        self.role: str | None = "ccc-parent-role"
        self.lifecycle: str | None = "InService"
        self.credential_fetches = 0
        self.expiration = datetime.now(UTC) + timedelta(hours=6)
        self.requests: list[tuple[str, str]] = []


def _handler(state: FakeImds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            state.requests.append(("PUT", self.path))
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if self.path != "/latest/api/token" or ttl is None:
                return self._send(400)
            state.ttls.append(ttl)
            state.issued += 1
            token = f"token-{state.issued}"
            state.tokens.add(token)
            self._send(200, token)

        def do_GET(self) -> None:
            state.requests.append(("GET", self.path))
            if self.headers.get("X-aws-ec2-metadata-token") not in state.tokens:
                return self._send(401)
            if self.path == "/latest/meta-data/iam/security-credentials/":
                return self._send(200, state.role + "\n") if state.role else self._send(404)
            if state.role and self.path == f"/latest/meta-data/iam/security-credentials/{state.role}":
                state.credential_fetches += 1
                return self._send(200, json.dumps({
                    "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": f"ASIA{state.credential_fetches}",
                    "SecretAccessKey": "role-secret", "Token": "role-session-token",
                    "Expiration": state.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }))
            if self.path == "/latest/meta-data/autoscaling/target-lifecycle-state":
                return self._send(200, state.lifecycle) if state.lifecycle else self._send(404)
            if self.path == "/latest/meta-data/instance-id":
                return self._send(200, "i-0123456789abcdef0")
            self._send(404)

    return Handler


@pytest.fixture
def imds() -> Iterator[tuple[FakeImds, str]]:
    state = FakeImds()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_imdsv2_token_is_fetched_with_a_ttl_and_reused(imds: tuple[FakeImds, str]) -> None:
    state, url = imds
    client = ImdsClient(url, token_ttl_s=900)
    assert client.target_lifecycle_state() == "InService"
    assert client.instance_id() == "i-0123456789abcdef0"
    assert state.issued == 1 and state.ttls == ["900"]
    assert all(method == "GET" for method, _ in state.requests[1:])


def test_token_is_refreshed_when_it_expires_or_is_revoked(imds: tuple[FakeImds, str]) -> None:
    state, url = imds
    now = [0.0]
    client = ImdsClient(url, token_ttl_s=120, clock=lambda: now[0])
    client.target_lifecycle_state()
    now[0] = 100.0  # past ttl - refresh margin
    client.target_lifecycle_state()
    assert state.issued == 2
    state.tokens.clear()  # revoked: a 401 gets one fresh token
    assert client.target_lifecycle_state() == "InService"
    assert state.issued == 3


def test_role_credentials_are_cached_until_close_to_expiry(imds: tuple[FakeImds, str]) -> None:
    state, url = imds
    now = [datetime.now(UTC)]
    provider = ImdsCredentialsProvider(ImdsClient(url), now=lambda: now[0])
    first = provider.get()
    assert first.access_key_id == "ASIA1" and first.secret_access_key == "role-secret"
    assert first.session_token == "role-session-token" and first.expiration is not None
    assert "role-secret" not in repr(first) and "role-session-token" not in repr(first)
    assert provider.get() is first
    now[0] = state.expiration - timedelta(minutes=4)  # inside the refresh margin
    assert provider.get().access_key_id == "ASIA2"


def test_missing_role_lifecycle_and_unreachable_imds_are_clear(imds: tuple[FakeImds, str]) -> None:
    state, url = imds
    state.role = None
    state.lifecycle = None
    client = ImdsClient(url)
    with pytest.raises(ImdsError, match="no IAM role"):
        client.role_credentials()
    assert client.target_lifecycle_state() is None
    with pytest.raises(ImdsError, match="unreachable"):
        ImdsClient("http://127.0.0.1:9", timeout_s=0.5).target_lifecycle_state()


# ------------------------------------------------------------------------------------------ config

BASE = {
    "region": "us-east-1",
    "queue_url": "http://127.0.0.1:5000/123456789012/ccc-local-work",
    "inbox_bucket": "ccc-local-inbox-123456789012-us-east-1",
    "results_bucket": "ccc-local-results-123456789012-us-east-1",
    "enclave": {"uri": "tcp://127.0.0.1:5005"},
}


def test_minimal_config_takes_stage_defaults() -> None:
    config = parse_config(BASE)
    assert config.stage == "local" and config.workers == 2
    assert config.effective_wait_time_s == config.settings.queue.receive_wait_s
    assert config.effective_visibility_timeout_s == config.settings.queue.visibility_timeout_s
    assert config.kms_region == "us-east-1" and config.aws.credentials is None
    assert config.enclave_timeout_s > config.settings.limits.job_timeout_s


def test_config_file_env_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = {**BASE, "aws": {"endpoint_url": "http://127.0.0.1:5000",
                            "credentials": {"access_key_id": "AKID", "secret_access_key": "TOP-SECRET"}}}
    path = tmp_path / "parent.json"
    path.write_text(json.dumps(data))
    config = load_config(path, overrides={"enclave_uri": "unix:///tmp/e.sock", "workers": 4, "max_jobs": None})
    assert config.enclave.uri == "unix:///tmp/e.sock" and config.workers == 4
    assert config.aws.credentials is not None
    assert config.aws.credentials.secret_access_key.get_secret_value() == "TOP-SECRET"
    assert "TOP-SECRET" not in repr(config)
    monkeypatch.setenv("CCC_PARENT_CONFIG_JSON", json.dumps(BASE))
    assert load_config().inbox_bucket == BASE["inbox_bucket"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"enclave": {"uri": "http://nope"}}, "enclave.uri"),
        ({"inbox_bucket": "Bad_Bucket"}, "inbox_bucket"),
        ({"workers": 0}, "workers"),
        ({"surprise": 1}, "surprise"),
        ({"aws": {"credentials": {"access_key_id": "A", "secret_access_key": "TOP-SECRET", "x": 1}}}, "x"),
    ],
)
def test_bad_config_names_the_field_and_hides_secrets(change: dict[str, Any], field: str) -> None:
    with pytest.raises(AgentConfigError) as info:
        parse_config({**BASE, **change})
    assert field in str(info.value)
    assert "TOP-SECRET" not in str(info.value)


def test_no_config_at_all_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCC_PARENT_CONFIG", raising=False)
    monkeypatch.delenv("CCC_PARENT_CONFIG_JSON", raising=False)
    with pytest.raises(AgentConfigError, match="--config"):
        load_config()


# --------------------------------------------------------------------------------------- lifecycle


class FakeAgent:
    def __init__(self) -> None:
        self.stopped = False
        self.in_flight = 1

    def stop(self) -> None:
        self.stopped = True


class FakeAutoscaling:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def record_lifecycle_action_heartbeat(self, **kwargs: Any) -> None:
        self.calls.append(("heartbeat", kwargs))

    def complete_lifecycle_action(self, **kwargs: Any) -> None:
        self.calls.append(("complete", kwargs))


def test_scale_in_stops_polling_then_releases_the_instance_after_the_drain(imds: tuple[FakeImds, str]) -> None:
    state, url = imds
    agent, autoscaling = FakeAgent(), FakeAutoscaling()
    watcher = LifecycleWatcher(agent, ImdsClient(url), autoscaling, group_name="ccc-dev-enclave-fleet",  # type: ignore[arg-type]
                               hook_name="ccc-dev-drain", poll_s=0.05,
                               settings=DrainSettings(heartbeat_interval_s=3600, max_drain_s=3600))
    watcher.step("InService", 1)
    assert not agent.stopped and watcher.phase is DrainPhase.SERVING
    watcher.step("Terminated", 1)
    assert agent.stopped and watcher.phase is DrainPhase.DRAINING
    assert autoscaling.calls == []  # a job is still running
    watcher.finish()  # the agent has drained
    assert watcher.phase is DrainPhase.RELEASED
    assert autoscaling.calls == [("complete", {
        "LifecycleHookName": "ccc-dev-drain", "AutoScalingGroupName": "ccc-dev-enclave-fleet",
        "InstanceId": "i-0123456789abcdef0", "LifecycleActionResult": "CONTINUE"})]


def test_watcher_thread_reads_the_lifecycle_state(imds: tuple[FakeImds, str]) -> None:
    state, url = imds
    agent, autoscaling = FakeAgent(), FakeAutoscaling()
    agent.in_flight = 0
    watcher = LifecycleWatcher(agent, ImdsClient(url), autoscaling, group_name="g", hook_name="h",  # type: ignore[arg-type]
                               poll_s=0.05, settings=DrainSettings(heartbeat_interval_s=3600, max_drain_s=3600))
    watcher.start()
    state.lifecycle = "Terminated"
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while watcher.phase is not DrainPhase.RELEASED and datetime.now(UTC) < deadline:
        threading.Event().wait(0.05)
    watcher.close()
    assert agent.stopped and [name for name, _ in autoscaling.calls] == ["complete"]
