"""The enclave host's bootstrap (EC2 user data), rendered from repo files at synth time, in two parts.

*Install* runs once, when the instance is created (cloud-init runs user data on the first boot
only): packages, allocator and vsock-proxy configuration, the release (EIF + agent wheels), the
units and the *start* script. *Start* (`/opt/ccc/bin/ccc-start`, a oneshot unit enabled for every
boot) installs nothing: it reads the instance's Auto Scaling target state from IMDS and either
(a) hands a freshly installed instance to the warm pool (`Warmed:*`: start no service, complete
the launch lifecycle action so Auto Scaling stops it fully installed), or (b) serves
(`InService`): re-fetch the release only if the target release differs from the installed one,
start vsock-proxy, the enclave and the parent, then complete the launch action. A resumed warm-pool
instance therefore boots straight into (b). The units are not `enable`d: only start launches them,
so an instance never serves while it is being parked in the warm pool.

Why rendered here and not baked into an AMI: every value that ties a host to its stage (queue,
buckets, release of the EIF and agent, the regional KMS endpoint for the vsock-proxy allowlist)
comes from the stack, and the systemd units live in `enclave_worker/systemd/` as reviewable files.
A change of release or unit yields a new launch template version, and new instances boot it.

Values may be CloudFormation tokens (this stack is environment-agnostic); CDK turns the script
into `Fn::Join`, so nothing below may parse or validate them.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Token

from cdk import contract

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "enclave_worker" / "systemd"
UNITS = ("ccc-vsock-proxy.service", "ccc-enclave.service", "ccc-parent.service")
PARENT_CONFIG_PATH = "/etc/ccc/parent.json"
START_SCRIPT_PATH = "/opt/ccc/bin/ccc-start"
START_UNIT = "ccc-start.service"
PACKAGES = ("aws-nitro-enclaves-cli", "python3.11", "python3.11-pip", "amazon-cloudwatch-agent")
DISTRIBUTION = "confidential-cat-counter"
# The CloudWatch agent's OTLP receiver for traces (forwarded to X-Ray). Each otlp section of the
# agent needs its own ports; metrics have none: they leave as EMF (the dashboard's and the alarms'
# source), and OTLP metrics would only duplicate those series on the CloudWatch bill.
OTLP_TRACES_HTTP = "127.0.0.1:4318"
OTLP_TRACES_GRPC = "127.0.0.1:4317"
# The standard OpenTelemetry environment of the host's processes (ccc_core.telemetry.otel_env).
OTEL_ENVIRONMENT: Mapping[str, str] = {
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://{OTLP_TRACES_HTTP}/v1/traces",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    "OTEL_METRICS_EXPORTER": "none",
}


@dataclass(frozen=True)
class HostSettings:
    region: str
    artifacts_bucket: str
    release_id: str
    log_group: str
    enclave_cpu_count: int
    enclave_memory_mib: int
    environment: Mapping[str, str]  # written to /etc/ccc/ccc.env for the units
    parent_config: Mapping[str, Any]  # written to /etc/ccc/parent.json (enclave_worker.parent.agent_config format)
    fleet_group: str = ""  # the Auto Scaling group whose launch lifecycle action start completes
    launch_hook: str = ""  # the launch hook's name ("" = no launch hook: start completes nothing)


def read_units(directory: Path = SYSTEMD_DIR) -> dict[str, str]:
    units = {}
    for name in UNITS:
        text = (directory / name).read_text()
        if "EOF_CCC_UNIT" in text:
            raise ValueError(f"{name} contains the heredoc delimiter")
        units[name] = text
    return units


def _env_line(name: str, value: str) -> str:
    # systemd EnvironmentFile syntax: NAME=value; our values are ARNs, URLs, names and numbers.
    # CloudFormation tokens resolve to such values at deploy time and are not checkable here.
    if not Token.is_unresolved(value) and any(c in value for c in "\n\"'\\$"):
        raise ValueError(f"environment value for {name} contains a character systemd would misread")
    return f"{name}={value}"


def cloudwatch_agent_config(log_group: str) -> dict[str, Any]:
    """The CloudWatch agent's configuration: the parent's and the bootstrap's log files, the EMF
    listener (tcp/udp 127.0.0.1:25888) for the parent's metric documents, and the OTLP receiver
    for traces, which the agent forwards to X-Ray."""
    files = [
        {
            "file_path": "/var/log/ccc/parent.log",
            "log_group_name": log_group,
            "log_stream_name": "{instance_id}/parent",
            "retention_in_days": -1,
        },
        {
            "file_path": "/var/log/ccc-bootstrap.log",
            "log_group_name": log_group,
            "log_stream_name": "{instance_id}/bootstrap",
            "retention_in_days": -1,
        },
    ]
    return {
        "logs": {"metrics_collected": {"emf": {}}, "logs_collected": {"files": {"collect_list": files}}},
        "traces": {
            "traces_collected": {"otlp": {"http_endpoint": OTLP_TRACES_HTTP, "grpc_endpoint": OTLP_TRACES_GRPC}}
        },
    }


def _fetch_release_lines() -> str:
    """The release download + agent install from the local wheelhouse (install, and start on a release change)."""
    return f"""  aws s3 cp --region "$REGION" "$RELEASE/{contract.EIF_NAME}" /opt/ccc/{contract.EIF_NAME}
  aws s3 cp --region "$REGION" "$RELEASE/{contract.MEASUREMENTS_NAME}" /opt/ccc/{contract.MEASUREMENTS_NAME}
  aws s3 cp --region "$REGION" "$RELEASE/{contract.AGENT_BUNDLE_NAME}" /opt/ccc/{contract.AGENT_BUNDLE_NAME}
  rm -rf /opt/ccc/wheelhouse && install -d -m 0755 /opt/ccc/wheelhouse
  tar -xzf /opt/ccc/{contract.AGENT_BUNDLE_NAME} -C /opt/ccc/wheelhouse
  test -x /opt/ccc/venv/bin/python || python3.11 -m venv /opt/ccc/venv
  /opt/ccc/venv/bin/pip install --no-index --force-reinstall --find-links /opt/ccc/wheelhouse {DISTRIBUTION}
  echo "$RELEASE" > /opt/ccc/release.installed"""


def render_start(host: HostSettings) -> str:
    """The every-boot script (see the module docstring): decide warm pool vs serve, start, complete the hook."""
    complete = (
        f'aws autoscaling complete-lifecycle-action --region "$REGION" --auto-scaling-group-name {host.fleet_group} '
        f'--lifecycle-hook-name {host.launch_hook} --instance-id "$INSTANCE" --lifecycle-action-result CONTINUE '
        '|| echo "no launch lifecycle action pending"'
        if host.launch_hook
        else "true  # no launch hook"
    )
    return f"""#!/bin/bash
# CCC start (every boot; rendered by cdk/user_data.py). Installs nothing.
set -euo pipefail
exec >>/var/log/ccc-bootstrap.log 2>&1
echo "ccc start $(date -u +%FT%TZ)"
REGION={host.region}
RELEASE=$(cat /etc/ccc/release.target)
imds() {{
  local token
  token=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 60")
  curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}}
INSTANCE=$(imds instance-id)
# The target state appears shortly after boot; empty means "not in a group" (serve).
TARGET=""
for _ in $(seq 1 60); do
  TARGET=$(imds autoscaling/target-lifecycle-state || true)
  [ -n "$TARGET" ] && break
  sleep 2
done
case "$TARGET" in
  Warmed:*)
    echo "entering the warm pool ($TARGET): installed, nothing started"
    {complete}
    exit 0
    ;;
esac
if [ "$(cat /opt/ccc/release.installed 2>/dev/null || true)" != "$RELEASE" ]; then
  echo "release changed: fetching $RELEASE"
{_fetch_release_lines()}
fi
systemctl start {" ".join(shlex.quote(u) for u in UNITS)}
{complete}
echo "ccc start done $(date -u +%FT%TZ)"
"""


def render(host: HostSettings, units: Mapping[str, str] | None = None) -> str:
    units = dict(read_units() if units is None else units)
    release = f"s3://{host.artifacts_bucket}/{contract.RELEASE_PREFIX}{host.release_id}"
    env = {**OTEL_ENVIRONMENT, **host.environment}
    env["CCC_ENCLAVE_CPUS"] = str(host.enclave_cpu_count)
    env["CCC_ENCLAVE_MEMORY_MIB"] = str(host.enclave_memory_mib)
    env["CCC_PARENT_CONFIG"] = PARENT_CONFIG_PATH  # read by `python -m enclave_worker.parent`
    parent_json = json.dumps(host.parent_config, indent=2, sort_keys=True)
    if "EOF_CCC" in parent_json:
        raise ValueError("parent configuration contains the heredoc delimiter")
    env_file = "\n".join(_env_line(k, v) for k, v in sorted(env.items()))
    unit_blocks = "\n".join(
        f"cat > /etc/systemd/system/{name} <<'EOF_CCC_UNIT'\n{text.rstrip()}\nEOF_CCC_UNIT"
        for name, text in units.items()
    )
    return f"""#!/bin/bash
# CCC enclave host *install* (first boot only; rendered by cdk/user_data.py; units from
# enclave_worker/systemd/). Every boot then runs {START_SCRIPT_PATH} ({START_UNIT}).
set -euo pipefail
exec >>/var/log/ccc-bootstrap.log 2>&1
echo "ccc install start $(date -u +%FT%TZ)"
REGION={host.region}
RELEASE={release}

# 1. Nitro Enclaves tooling, Python for the agent, and the CloudWatch agent (from the AL2023
#    repositories, reached through the S3 gateway endpoint: the subnets have no internet).
dnf install -y {" ".join(PACKAGES)}

# 2. Enclave resources: the allocator reserves CPUs and memory for the enclave at boot.
cat > /etc/nitro_enclaves/allocator.yaml <<'EOF_CCC'
---
memory_mib: {host.enclave_memory_mib}
cpu_count: {host.enclave_cpu_count}
EOF_CCC
systemctl enable --now nitro-enclaves-allocator.service

# 3. The vsock-proxy may reach exactly one endpoint: the regional KMS API.
cat > /etc/nitro_enclaves/vsock-proxy.yaml <<EOF_CCC
allowlist:
- {{address: kms.$REGION.amazonaws.com, port: 443}}
EOF_CCC

# 4. The release: the measured EIF (its PCR0 is pinned in the key policy) and the agent wheels.
install -d -m 0755 /opt/ccc /opt/ccc/wheelhouse /etc/ccc
install -d -m 0750 /var/log/ccc
id ccc >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin ccc
chown ccc:ccc /var/log/ccc
echo "$RELEASE" > /etc/ccc/release.target
{_fetch_release_lines()}

# 5. Configuration for the units (no secrets: credentials come from IMDSv2 at run time).
cat > /etc/ccc/ccc.env <<'EOF_CCC'
{env_file}
EOF_CCC
chmod 0644 /etc/ccc/ccc.env
cat > {PARENT_CONFIG_PATH} <<'EOF_CCC'
{parent_json}
EOF_CCC
chmod 0644 {PARENT_CONFIG_PATH}

# 6. Logs and EMF metrics to CloudWatch, OTLP traces to X-Ray (metadata only: nothing carries plaintext).
cat > /opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json <<'EOF_CCC'
{json.dumps(cloudwatch_agent_config(host.log_group))}
EOF_CCC
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \\
  -c file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json

# 7. The services (vsock-proxy, the enclave, the parent agent) are started by start, never at boot.
{unit_blocks}

# 8. Start, on this and every later boot (a resumed warm-pool instance runs only this).
install -d -m 0755 /opt/ccc/bin
cat > {START_SCRIPT_PATH} <<'EOF_CCC_START'
{render_start(host).rstrip()}
EOF_CCC_START
chmod 0755 {START_SCRIPT_PATH}
cat > /etc/systemd/system/{START_UNIT} <<'EOF_CCC_UNIT'
[Unit]
Description=CCC start: serve or park in the warm pool (installs nothing)
Wants=network-online.target
After=network-online.target nitro-enclaves-allocator.service

[Service]
Type=oneshot
ExecStart={START_SCRIPT_PATH}

[Install]
WantedBy=multi-user.target
EOF_CCC_UNIT
systemctl daemon-reload
systemctl enable {START_UNIT}
echo "ccc install done $(date -u +%FT%TZ)"
systemctl start {START_UNIT}
"""
