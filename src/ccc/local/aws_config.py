"""AWS shared config/credentials files that point botocore at a local stack.

Why files: the AWS Encryption SDK builds its own KMS clients from a botocore session and offers
no endpoint parameter. botocore's public answer is configuration: a profile whose `services`
section sets `endpoint_url` per service. With these files, the ESDK, boto3, the AWS CLI and the
official `aws-encryption-cli` all reach moto (S3, SQS, DynamoDB, ...) and the attested-KMS
gateway (KMS) without code changes or process-wide environment variables.
"""

from __future__ import annotations

import configparser
import io
import os
from collections.abc import Iterable
from pathlib import Path

import botocore.session

from ccc.local.state import IdentityRecord, StackInfo

SERVICES_SECTION = "ccc-local"


def profile_name(identity: str) -> str:
    return f"ccc-local-{identity}"


def render_config(region: str, endpoint_url: str, kms_endpoint_url: str, identities: Iterable[str]) -> str:
    config = configparser.ConfigParser(interpolation=None)
    for name in identities:
        config[f"profile {profile_name(name)}"] = {
            "region": region,
            "endpoint_url": endpoint_url,
            "services": SERVICES_SECTION,
        }
    # botocore reads nested service settings from an indented sub-block.
    config[f"services {SERVICES_SECTION}"] = {"kms": f"\nendpoint_url = {kms_endpoint_url}"}
    buffer = io.StringIO()
    config.write(buffer)
    return buffer.getvalue()


def render_credentials(identities: Iterable[IdentityRecord]) -> str:
    config = configparser.ConfigParser(interpolation=None)
    for identity in identities:
        config[profile_name(identity.name)] = {
            "aws_access_key_id": identity.access_key_id,
            "aws_secret_access_key": identity.secret_access_key,
        }
    buffer = io.StringIO()
    config.write(buffer)
    return buffer.getvalue()


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def write_aws_files(
    directory: Path,
    *,
    region: str,
    endpoint_url: str,
    kms_endpoint_url: str,
    identities: Iterable[IdentityRecord],
) -> tuple[Path, Path]:
    """Write `config` and `credentials` (0600) under `directory`; returns their paths."""
    records = list(identities)
    config_path, credentials_path = directory / "config", directory / "credentials"
    _write_private(config_path, render_config(region, endpoint_url, kms_endpoint_url, (r.name for r in records)))
    _write_private(credentials_path, render_credentials(records))
    return config_path, credentials_path


def botocore_session(info: StackInfo, identity: str):  # type: ignore[no-untyped-def]
    """A botocore session as `identity`, whose clients reach the stack (KMS -> gateway, rest -> moto)."""

    record = info.identity(identity)
    session = botocore.session.Session()
    session.set_config_variable("config_file", info.aws_config_file)
    session.set_config_variable("credentials_file", info.aws_credentials_file)
    session.set_config_variable("profile", profile_name(identity))
    session.set_config_variable("region", info.region)
    session.set_credentials(record.access_key_id, record.secret_access_key)
    return session


def environment(info: StackInfo, identity: str) -> dict[str, str]:
    """Environment variables that point the AWS CLI / SDKs at the stack as `identity`."""
    record = info.identity(identity)
    return {
        "AWS_ACCESS_KEY_ID": record.access_key_id,
        "AWS_SECRET_ACCESS_KEY": record.secret_access_key,
        "AWS_REGION": info.region,
        "AWS_DEFAULT_REGION": info.region,
        "AWS_ENDPOINT_URL": info.endpoint_url,
        "AWS_ENDPOINT_URL_KMS": info.kms_endpoint_url,
    }
