"""The enclave host's boot script and systemd units (rendered from repo files at synth time)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from ccc_common.domain.settings import stage_settings
from cdk import contract
from cdk.user_data import (
    PARENT_CONFIG_PATH,
    START_SCRIPT_PATH,
    START_UNIT,
    UNITS,
    HostSettings,
    read_units,
    render,
    render_start,
)
from tests.infra.conftest import REPO_ROOT


def _host(**overrides: Any) -> HostSettings:
    values: dict[str, Any] = {
        "region": "eu-west-1",
        "artifacts_bucket": "ccc-dev-artifacts-123456789012-eu-west-1",
        "release_id": "0123456789abcdef",
        "log_group": "/ccc/dev/hosts",
        "enclave_cpu_count": 2,
        "enclave_memory_mib": 4096,
        "environment": {contract.AWS_REGION: "eu-west-1", contract.STAGE: "dev"},
        "parent_config": {
            "stage": "dev",
            "region": "eu-west-1",
            "queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/ccc-dev-work",
            "inbox_bucket": "ccc-dev-inbox-123456789012-eu-west-1",
            "results_bucket": "ccc-dev-results-123456789012-eu-west-1",
            "jobs_table": "ccc-dev-jobs",
            "enclave": {"uri": f"vsock://{contract.ENCLAVE_CID_VALUE}:{contract.ENCLAVE_PORT_VALUE}"},
            "kms": {"region": "eu-west-1"},
            "lifecycle": {"group_name": "ccc-dev-enclave-fleet", "hook_name": "ccc-dev-drain"},
            "log_level": "INFO",
        },
        "fleet_group": "ccc-dev-enclave-fleet",
        "launch_hook": "ccc-dev-drain-launch",
    }
    values.update(overrides)
    return HostSettings(**values)


def test_script_is_valid_bash() -> None:
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run([bash, "-n"], input=render(_host()), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_vsock_proxy_may_reach_only_the_regional_kms_endpoint() -> None:
    script = render(_host())
    allowlist = script.split("/etc/nitro_enclaves/vsock-proxy.yaml <<EOF_CCC\n", 1)[1].split("EOF_CCC", 1)[0]
    assert allowlist.strip().splitlines() == ["allowlist:", "- {address: kms.$REGION.amazonaws.com, port: 443}"]
    assert "REGION=eu-west-1" in script


def test_allocator_is_sized_from_the_config() -> None:
    script = render(_host(enclave_cpu_count=4, enclave_memory_mib=6144))
    assert "memory_mib: 6144\ncpu_count: 4\n" in script
    assert "CCC_ENCLAVE_CPUS=4" in script and "CCC_ENCLAVE_MEMORY_MIB=6144" in script


def test_release_is_fetched_from_the_artifacts_bucket_and_run_under_systemd() -> None:
    script = render(_host())
    release = "s3://ccc-dev-artifacts-123456789012-eu-west-1/release/0123456789abcdef"
    assert f"RELEASE={release}" in script
    for name in (contract.EIF_NAME, contract.AGENT_BUNDLE_NAME, contract.MEASUREMENTS_NAME):
        assert f'"$RELEASE/{name}"' in script
    assert "dnf install -y aws-nitro-enclaves-cli" in script
    # The units are started by the start script only (never enabled at boot: a warm-pool instance
    # being parked must not serve); start itself is enabled for every boot.
    assert f"systemctl start {' '.join(UNITS)}" in render_start(_host())
    assert not [u for u in UNITS if re.search(rf"systemctl enable[^\n]*{re.escape(u)}", script)]
    assert f"systemctl enable {START_UNIT}" in script
    assert f"ExecStart={START_SCRIPT_PATH}" in script


def test_install_runs_once_and_start_installs_nothing() -> None:
    install, start = render(_host()), render_start(_host())
    assert start.strip() in install  # install writes start verbatim
    assert "dnf install" not in start and "useradd" not in start
    # Start downloads the release only when the installed one differs from the target.
    fetch = start.index('aws s3 cp --region "$REGION" "$RELEASE/')
    assert start.rindex('if [ "$(cat /opt/ccc/release.installed', 0, fetch) < fetch < start.index("\nfi\n", fetch)


def _run_start(tmp_path: Any, target: str, installed: str | None) -> tuple[list[str], list[str]]:
    """Run the start script with IMDS, aws and systemctl stubbed; return (aws calls, systemctl calls)."""
    bash = shutil.which("bash")
    assert bash
    root = tmp_path / "root"
    (root / "etc/ccc").mkdir(parents=True)
    (root / "opt/ccc").mkdir(parents=True)
    (root / "var/log").mkdir(parents=True)
    (root / "etc/ccc/release.target").write_text("s3://bucket/release/r2\n")
    if installed is not None:
        (root / "opt/ccc/release.installed").write_text(installed + "\n")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls"
    stub_bodies = {
        "curl": f'case "$*" in *api/token*) echo token;; *instance-id*) echo i-0abc;; '
        f'*target-lifecycle-state*) echo "{target}";; *) exit 22;; esac',
        "aws": f'echo "aws $*" >> {log}',
        "systemctl": f'echo "systemctl $*" >> {log}',
        "sleep": "true",
    }
    for name, body in stub_bodies.items():
        (stubs / name).write_text(f"#!/bin/bash\n{body}\n")
        (stubs / name).chmod(0o755)
    script = render_start(_host())
    for path in ("/etc/ccc", "/opt/ccc", "/var/log"):
        script = script.replace(path, f"{root}{path}")
    result = subprocess.run(
        [bash, "-c", script], capture_output=True, text=True, env={"PATH": f"{stubs}:/usr/bin:/bin"}, timeout=30
    )
    assert result.returncode == 0, result.stderr + (root / "var/log/ccc-bootstrap.log").read_text()
    calls = log.read_text().splitlines() if log.exists() else []
    return [c for c in calls if c.startswith("aws")], [c for c in calls if c.startswith("systemctl")]


COMPLETE = (
    "aws autoscaling complete-lifecycle-action --region eu-west-1 --auto-scaling-group-name ccc-dev-enclave-fleet "
    "--lifecycle-hook-name ccc-dev-drain-launch --instance-id i-0abc --lifecycle-action-result CONTINUE"
)


def test_start_parks_a_new_warm_pool_instance_without_starting_anything(tmp_path: Any) -> None:
    aws, systemctl = _run_start(tmp_path, "Warmed:Stopped", installed="s3://bucket/release/r2")
    assert aws == [COMPLETE]
    assert systemctl == []


def test_start_on_resume_starts_the_units_and_releases_the_launch_hook(tmp_path: Any) -> None:
    aws, systemctl = _run_start(tmp_path, "InService", installed="s3://bucket/release/r2")
    assert aws == [COMPLETE]  # no S3 download: the release is already installed
    assert systemctl == [f"systemctl start {' '.join(UNITS)}"]


def test_units_run_the_agreed_entry_points_and_never_debug_mode() -> None:
    units = read_units()
    assert "ExecStart=/opt/ccc/venv/bin/python -m enclave_worker.parent" in units["ccc-parent.service"]
    assert "nitro-cli run-enclave" in units["ccc-enclave.service"]
    assert "--enclave-cid ${CCC_ENCLAVE_CID}" in units["ccc-enclave.service"]
    assert "vsock-proxy ${CCC_KMS_PROXY_PORT} kms.${AWS_REGION}.amazonaws.com 443" in units["ccc-vsock-proxy.service"]
    for text in units.values():
        assert not re.search(r"^[^#]*--debug-mode", text, flags=re.MULTILINE)


def test_parent_stop_timeout_lets_a_job_finish() -> None:
    unit = read_units()["ccc-parent.service"]
    (timeout,) = re.findall(r"^TimeoutStopSec=(\d+)$", unit, flags=re.MULTILINE)
    for stage in ("dev", "prod"):
        assert int(timeout) >= stage_settings(stage).queue.visibility_timeout_s


def test_environment_values_that_systemd_would_misread_are_refused() -> None:
    with pytest.raises(ValueError, match="systemd"):
        render(_host(environment={contract.STAGE: 'dev"; rm -rf /'}))


def test_synthesised_hosts_get_every_parent_variable(synth: Any) -> None:
    script = synth.stack.fleet.user_data_script
    env_block = script.split("/etc/ccc/ccc.env <<'EOF_CCC'\n", 1)[1].split("EOF_CCC", 1)[0]
    names = {line.split("=", 1)[0] for line in env_block.splitlines()}
    assert set(contract.PARENT_ENV) <= names
    assert f"{contract.STAGE}={synth.stage}" in env_block
    assert f"{contract.FLEET_GROUP}={synth.stack.config.names.fleet_group}" in env_block
    assert f"{contract.LIFECYCLE_HOOK}={synth.stack.config.names.lifecycle_hook}" in env_block


def _heredoc(script: str, path: str) -> str:
    return script.split(f"{path} <<'EOF_CCC'\n", 1)[1].split("\nEOF_CCC", 1)[0]


def test_rendered_parent_config_is_accepted_by_the_parent_agent() -> None:
    from enclave_worker.parent.agent_config import parse_config

    script = render(_host())
    document = json.loads(_heredoc(script, PARENT_CONFIG_PATH))
    config = parse_config(document, origin="user data")
    assert config.stage == "dev" and config.lifecycle is not None
    assert config.jobs_table == "ccc-dev-jobs"  # leases on: the agent builds its DynamoJobLeases from this
    assert f"CCC_PARENT_CONFIG={PARENT_CONFIG_PATH}" in script


def test_synthesised_parent_config_has_the_stack_resources(synth: Any) -> None:
    from cdk.enclave_fleet import parent_config  # noqa: F401  (the function the stack used)

    document = synth.stack.fleet.parent_config
    names = synth.stack.config.names
    assert document["stage"] == synth.stage
    assert document["lifecycle"] == {"group_name": names.fleet_group, "hook_name": names.lifecycle_hook}
    resolved = synth.stack.resolve(document)
    assert resolved["queue_url"] == {"Ref": synth.logical_id(synth.stack.work_queue.queue)}
    assert resolved["inbox_bucket"] == {"Ref": synth.logical_id(synth.stack.storage.inbox)}
    assert resolved["results_bucket"] == {"Ref": synth.logical_id(synth.stack.storage.results)}
    assert resolved["jobs_table"] == {"Ref": synth.logical_id(synth.stack.orchestration.table)}


def test_parent_config_on_the_host_names_the_jobs_table(synth: Any) -> None:
    """What the host writes to /etc/ccc/parent.json (read from the launch template's user data, so the
    CloudFormation token really lands in the file) names the stack's jobs table: leases are on."""
    (template,) = synth.of_type("AWS::EC2::LaunchTemplate").values()
    user_data = template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    parts = user_data["Fn::Join"][1] if isinstance(user_data, dict) else [user_data]
    script = "".join(p if isinstance(p, str) else f"<<{json.dumps(p, sort_keys=True)}>>" for p in parts)
    document = _heredoc(script, PARENT_CONFIG_PATH)
    table_ref = json.dumps({"Ref": synth.logical_id(synth.stack.orchestration.table)}, sort_keys=True)
    assert f'"jobs_table": "<<{table_ref}>>"' in document


def test_enclave_image_ports_match_the_contract() -> None:
    dockerfile = (REPO_ROOT / "enclave_worker" / "Dockerfile").read_text()
    entry_script = (REPO_ROOT / "enclave_worker" / "image" / "ccc-enclave-entry").read_text()  # the boot script
    assert f"CCC_ENCLAVE_LISTEN=vsock://any:{contract.ENCLAVE_PORT_VALUE}" in dockerfile
    assert f"CCC_KMS_RELAY_TARGET=vsock://3:{contract.KMS_PROXY_PORT_VALUE}" in dockerfile
    assert "exec python -m ccc_enclave" in entry_script
    assert "--debug-mode" not in dockerfile + entry_script
