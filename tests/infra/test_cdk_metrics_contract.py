"""The dashboard and alarms read only metrics that something publishes, under the same names and
dimensions (ccc_core.telemetry.metric_registry), and the hosts are set up to publish the parent's (EMF)."""

from __future__ import annotations

import json
import re
from typing import Any

from ccc.telemetry.emf import CLOUDWATCH_NAMES
from ccc_core.telemetry import metric_registry as m
from cdk import monitoring as observability
from cdk.enclave_fleet import EMF_LOG_GROUP, EMF_TARGET
from cdk.user_data import render
from tests.infra.conftest import REPO_ROOT
from tests.infra.iam_helpers import as_list, grants, role_statements
from tests.infra.test_cdk_user_data import _heredoc, _host

CONSTANTS = {
    value: attr
    for attr in dir(m)
    if attr.isupper() and isinstance(value := getattr(m, attr), str) and value in m.REGISTRY
}


def _flatten(value: Any) -> str:
    """A CloudFormation string expression as text, tokens replaced by a placeholder."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_flatten(part) for part in parts)
    return "TOKEN"


def _dashboard_metrics(synth: Any) -> list[tuple[str, str, dict[str, str]]]:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(_flatten(dashboard["Properties"]["DashboardBody"]))
    found = []
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            plain = [item for item in row if isinstance(item, str)]
            if plain and plain[0] != "...":
                namespace, name, *dims = plain
                found.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True))))
    return found


def _alarm_metrics(synth: Any) -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for alarm in synth.of_type("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        metrics = (
            [props]
            if "MetricName" in props
            else [q["MetricStat"]["Metric"] for q in props.get("Metrics", []) if "MetricStat" in q]
        )
        for metric in metrics:
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            found.append((metric["Namespace"], metric["MetricName"], dims))
    return found


def _custom(synth: Any) -> list[tuple[str, dict[str, str]]]:
    namespace = synth.stack.config.names.metrics_namespace
    everything = _dashboard_metrics(synth) + _alarm_metrics(synth)
    assert len(everything) >= 10  # the parsers found the widgets and alarms, not nothing
    return [(name, dims) for ns, name, dims in everything if ns == namespace]


def test_namespace_is_the_shared_one(synth: Any) -> None:
    assert synth.stack.config.names.metrics_namespace == m.NAMESPACE


def test_every_custom_metric_read_is_registered_with_its_dimensions(synth: Any) -> None:
    custom = _custom(synth)
    read = {name for name, _ in custom}
    assert read == set(observability.METRICS)
    assert m.ATTESTATION_FAILURES in {name for _, name, _ in _alarm_metrics(synth)}
    for name, dims in custom:
        spec = m.spec(name)
        assert tuple(dims) == spec.dimensions == (m.STAGE_DIMENSION,), name
        assert dims[m.STAGE_DIMENSION] == synth.stage


def test_every_metric_read_is_emitted_by_a_registered_emitter() -> None:
    for name in observability.METRICS:
        emitters = m.spec(name).emitters
        assert emitters, name
        for emitter in emitters:
            if emitter is m.Emitter.PARENT:
                assert name in CLOUDWATCH_NAMES.values(), f"the EMF exporter does not publish {name}"
            else:
                source = (REPO_ROOT / "functions" / emitter.value / "handler.py").read_text()
                assert re.search(rf"\bm\.{CONSTANTS[name]}\b", source), f"{emitter} does not emit {name}"


def test_lambda_handlers_use_only_registered_names() -> None:
    for emitter in m.Emitter:
        if emitter is m.Emitter.PARENT:
            continue
        source = (REPO_ROOT / "functions" / emitter.value / "handler.py").read_text()
        assert "add_metric(" not in source and "add_dimension(" not in source  # only telemetry.count
        used = set(re.findall(r"\bm\.([A-Z_]+)\b", source))
        allowed = {CONSTANTS[name] for name in m.emitted_by(emitter)}
        assert used and used <= allowed, (emitter, used - allowed)
        assert allowed <= used, (emitter, allowed - used)  # the registry lists nothing it never emits


def test_parent_publishes_emf_to_the_host_agent(synth: Any) -> None:
    from enclave_worker.parent.agent_config import parse_config

    telemetry = synth.stack.fleet.parent_config["telemetry"]
    assert telemetry == {"emf": EMF_TARGET, "namespace": m.NAMESPACE}
    host = _host()
    document = json.loads(_heredoc(render(host), "/etc/ccc/parent.json"))
    config = parse_config({**document, "telemetry": telemetry}, origin="cdk")
    assert config.telemetry.emf == EMF_TARGET


def test_cloudwatch_agent_listens_for_emf_and_still_ships_the_logs() -> None:
    script = render(_host())
    agent = json.loads(_heredoc(script, "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"))
    assert agent["logs"]["metrics_collected"] == {"emf": {}}
    files = agent["logs"]["logs_collected"]["files"]["collect_list"]
    assert {f["file_path"] for f in files} == {"/var/log/ccc/parent.log", "/var/log/ccc-bootstrap.log"}
    assert EMF_TARGET.endswith(":25888")  # the agent's EMF listener port


def test_host_role_may_write_emf_to_the_agents_log_group(synth: Any) -> None:
    role_id = synth.logical_id(synth.stack.identities.parent_role)
    statements = role_statements(synth.resources, role_id)
    emf = [s for s in statements if grants(s, "logs:PutLogEvents") and EMF_LOG_GROUP in json.dumps(s["Resource"])]
    assert len(emf) == 1
    (statement,) = emf
    assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= set(as_list(statement["Action"]))
    resources = json.dumps(statement["Resource"])
    assert f"log-group:{EMF_LOG_GROUP}" in resources and '"*"' not in resources
