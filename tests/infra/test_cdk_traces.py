"""On AWS, the host's spans reach X-Ray through the CloudWatch agent's OTLP receiver (issue 15 §1).

What an SRE relies on: the agent listens for OTLP traces on the port the processes' standard
OTEL_* environment names, the host role may write to X-Ray and nothing more for it, an isolated
(`endpoints`) host can reach X-Ray, and metrics are not sent twice (EMF stays their only path).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ccc_core.telemetry.otel_env import settings_from_environ
from cdk.enclave_fleet import XRAY_WRITE_ACTIONS
from cdk.user_data import OTEL_ENVIRONMENT, OTLP_TRACES_HTTP, cloudwatch_agent_config, render
from tests.infra.iam_helpers import as_list, role_statements
from tests.infra.test_cdk_user_data import _heredoc, _host


def test_the_agent_receives_otlp_traces_where_the_processes_send_them() -> None:
    config = cloudwatch_agent_config("/ccc/dev/hosts")
    otlp = config["traces"]["traces_collected"]["otlp"]
    assert otlp["http_endpoint"] == OTLP_TRACES_HTTP
    endpoint = OTEL_ENVIRONMENT["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    assert endpoint == f"http://{otlp['http_endpoint']}/v1/traces"
    assert otlp["grpc_endpoint"] != otlp["http_endpoint"]  # each otlp section needs its own ports
    assert "otlp" not in config.get("metrics", {}).get("metrics_collected", {})
    assert config["logs"]["metrics_collected"] == {"emf": {}}


def test_the_host_environment_asks_for_otlp_traces_and_no_otlp_metrics() -> None:
    settings = settings_from_environ(OTEL_ENVIRONMENT)
    assert settings.traces.enabled and settings.traces.protocol == "http/protobuf"
    assert not settings.metrics.enabled  # EMF already carries them to CloudWatch


def test_the_rendered_host_writes_both_configurations() -> None:
    script = render(_host())
    env_file = _heredoc(script, "/etc/ccc/ccc.env")
    for name, value in OTEL_ENVIRONMENT.items():
        assert f"{name}={value}" in env_file.splitlines()
    agent = json.loads(_heredoc(script, "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"))
    assert agent == cloudwatch_agent_config("/ccc/dev/hosts")


def test_the_host_role_may_write_traces_and_isolated_hosts_reach_xray(synth: Any, endpoints_mode: Any) -> None:
    statements = role_statements(synth.resources, synth.logical_id(synth.stack.identities.parent_role))
    xray_actions = {str(a) for s in statements for a in as_list(s["Action"]) if str(a).startswith("xray:")}
    assert xray_actions == set(XRAY_WRITE_ACTIONS)  # write and sampling only: no trace is readable from a host
    services = {
        re.sub(r'["\]}]', "", json.dumps(e["Properties"]["ServiceName"]).rsplit(".", 1)[-1])
        for e in endpoints_mode.of_type("AWS::EC2::VPCEndpoint").values()
    }
    assert "xray" in services
