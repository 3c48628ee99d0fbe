"""The enclave host's boot script (EC2 user data), rendered from repo files at synth time.

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
PACKAGES = ("aws-nitro-enclaves-cli", "python3.11", "python3.11-pip", "amazon-cloudwatch-agent")
DISTRIBUTION = "confidential-cat-counter"


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


def _cloudwatch_agent_config(log_group: str) -> str:
    # metrics_collected.emf: listen on tcp/udp 127.0.0.1:25888 for the parent's EMF documents.
    return (
        '{"logs": {"metrics_collected": {"emf": {}}, "logs_collected": {"files": {"collect_list": ['
        f'{{"file_path": "/var/log/ccc/parent.log", "log_group_name": "{log_group}", '
        '"log_stream_name": "{instance_id}/parent", "retention_in_days": -1},'
        f'{{"file_path": "/var/log/ccc-bootstrap.log", "log_group_name": "{log_group}", '
        '"log_stream_name": "{instance_id}/bootstrap", "retention_in_days": -1}'
        "]}}}}"
    )


def render(host: HostSettings, units: Mapping[str, str] | None = None) -> str:
    units = dict(read_units() if units is None else units)
    release = f"s3://{host.artifacts_bucket}/{contract.RELEASE_PREFIX}{host.release_id}"
    env = dict(host.environment)
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
# CCC enclave host bootstrap (rendered by cdk/user_data.py; units from enclave_worker/systemd/).
set -euo pipefail
exec >>/var/log/ccc-bootstrap.log 2>&1
echo "ccc bootstrap start $(date -u +%FT%TZ)"
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
aws s3 cp --region "$REGION" "$RELEASE/{contract.EIF_NAME}" /opt/ccc/{contract.EIF_NAME}
aws s3 cp --region "$REGION" "$RELEASE/{contract.MEASUREMENTS_NAME}" /opt/ccc/{contract.MEASUREMENTS_NAME}
aws s3 cp --region "$REGION" "$RELEASE/{contract.AGENT_BUNDLE_NAME}" /opt/ccc/{contract.AGENT_BUNDLE_NAME}
tar -xzf /opt/ccc/{contract.AGENT_BUNDLE_NAME} -C /opt/ccc/wheelhouse
python3.11 -m venv /opt/ccc/venv
/opt/ccc/venv/bin/pip install --no-index --find-links /opt/ccc/wheelhouse {DISTRIBUTION}

# 5. Configuration for the units (no secrets: credentials come from IMDSv2 at run time).
cat > /etc/ccc/ccc.env <<'EOF_CCC'
{env_file}
EOF_CCC
chmod 0644 /etc/ccc/ccc.env
cat > {PARENT_CONFIG_PATH} <<'EOF_CCC'
{parent_json}
EOF_CCC
chmod 0644 {PARENT_CONFIG_PATH}

# 6. Logs to CloudWatch (metadata only: the agent never logs plaintext).
cat > /opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json <<'EOF_CCC'
{_cloudwatch_agent_config(host.log_group)}
EOF_CCC
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \\
  -c file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json

# 7. The services: vsock-proxy, the enclave, the parent agent.
{unit_blocks}
systemctl daemon-reload
systemctl enable --now {" ".join(shlex.quote(u) for u in UNITS)}
echo "ccc bootstrap done $(date -u +%FT%TZ)"
"""
