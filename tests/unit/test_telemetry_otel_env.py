"""The standard OTEL_* environment, as every CCC process reads it (docs/observability.md).

Each case is a configuration an SRE sets on a host or a laptop and the behaviour they rely on:
export to their backend, keep the local report, turn telemetry off, or run under
`opentelemetry-instrument` without CCC replacing its provider.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccc_core.telemetry.otel_env import GRPC, HTTP_PROTOBUF, OtelConfigError, settings_from_environ
from tests.support.otlp_receiver import OtlpReceiver

REPO = Path(__file__).resolve().parents[2]


def test_nothing_set_means_local_only() -> None:
    settings = settings_from_environ({})
    assert not settings.disabled and not settings.any_otlp
    assert settings.namespace == "ccc"


def test_an_endpoint_turns_on_otlp_http_for_both_signals() -> None:
    settings = settings_from_environ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert settings.traces.enabled and settings.metrics.enabled
    assert settings.traces.protocol == settings.metrics.protocol == HTTP_PROTOBUF


def test_per_signal_endpoint_exporter_and_protocol() -> None:
    settings = settings_from_environ(
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4320/v1/traces",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
        }
    )
    assert settings.traces.enabled and settings.traces.protocol == GRPC
    assert not settings.metrics.enabled


def test_traces_exporter_none_wins_over_an_endpoint() -> None:
    settings = settings_from_environ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"})
    assert not settings.traces.enabled and settings.metrics.enabled


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_sdk_disabled_turns_everything_off(value: str) -> None:
    settings = settings_from_environ({"OTEL_SDK_DISABLED": value, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert settings.disabled and not settings.any_otlp


def test_service_name_names_the_deployment_not_the_process() -> None:
    assert settings_from_environ({"OTEL_SERVICE_NAME": "cats-prod"}).namespace == "cats-prod"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin", "zipkin"),
        ("OTEL_METRICS_EXPORTER", "prometheus", "prometheus"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "http/json"),
    ],
)
def test_unsupported_values_are_refused_by_name(variable: str, value: str, named: str) -> None:
    with pytest.raises(OtelConfigError, match=named.replace("/", "/")):
        settings_from_environ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", variable: value})


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter per case: the OpenTelemetry API allows one global provider per process.
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**base, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _emit_script(state_dir: Path, prelude: str = "", after: str = "") -> str:
    """A process that sets up CCC telemetry as the parent agent does and emits one span and one metric."""
    head = """
        from pathlib import Path
        from opentelemetry import trace
        from ccc_core.telemetry.setup import setup_telemetry
    """
    body = f"""
        handle = setup_telemetry("parent", state_dir=Path({str(state_dir)!r}))
        with trace.get_tracer("t").start_as_current_span("ccc.test.span"):
            pass
        handle.meter().create_counter("ccc.test.counter").add(1)
        handle.shutdown()
    """
    return "\n".join(textwrap.dedent(part) for part in (head, prelude, body, after))


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    started = OtlpReceiver().start()
    yield started
    started.stop()


def test_state_dir_and_otlp_both_receive_the_spans(tmp_path: Path, receiver: OtlpReceiver) -> None:
    result = _run(
        _emit_script(tmp_path),
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "cats-staging",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging",
        },
    )
    assert result.returncode == 0, result.stderr
    spans = [s for s in receiver.snapshot() if s.name == "ccc.test.span"]
    assert len(spans) == 1
    assert spans[0].service == "parent"
    assert spans[0].resource["service.namespace"] == "cats-staging"
    assert spans[0].resource["deployment.environment"] == "staging"
    assert ("parent", "ccc.test.counter") in receiver.metric_names
    local = [json.loads(line) for line in (tmp_path / "telemetry" / "parent.spans.jsonl").read_text().splitlines()]
    assert [r["name"] for r in local] == ["ccc.test.span"]


def test_sdk_disabled_writes_and_sends_nothing(tmp_path: Path, receiver: OtlpReceiver) -> None:
    result = _run(
        _emit_script(tmp_path),
        {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SDK_DISABLED": "true"},
    )
    assert result.returncode == 0, result.stderr
    assert receiver.snapshot() == [] and receiver.metric_names == []
    assert not (tmp_path / "telemetry").exists()


def test_a_bad_value_is_one_line_and_the_process_still_runs(tmp_path: Path) -> None:
    result = _run(
        _emit_script(tmp_path),
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_EXPORTER": "zipkin"},
    )
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    assert "OTEL_TRACES_EXPORTER='zipkin'" in result.stderr
    assert (tmp_path / "telemetry" / "parent.spans.jsonl").exists()


def test_an_installed_provider_is_extended_not_replaced(tmp_path: Path) -> None:
    # What `opentelemetry-instrument` does before our code runs: install an SDK provider with its
    # own exporter. CCC must add its local JSON Lines beside it and leave it global.
    prelude = """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    installed = TracerProvider()
    memory = InMemorySpanExporter()
    installed.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(installed)
    """
    after = """
    assert trace.get_tracer_provider() is installed
    assert [s.name for s in memory.get_finished_spans()] == ["ccc.test.span"]
    """
    result = _run(_emit_script(tmp_path, prelude, after), {})
    assert result.returncode == 0, result.stderr
    assert "Overriding of current TracerProvider" not in result.stderr
    local = (tmp_path / "telemetry" / "parent.spans.jsonl").read_text()
    assert "ccc.test.span" in local
