"""stack.json and the supervisor pid file: atomic writes, schema checks, liveness of recorded pids."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccc.atomic_files import write_json_atomic
from ccc.local.aws_config import environment, render_config
from ccc.local.state import (
    SCHEMA_VERSION,
    IdentityRecord,
    StackInfo,
    StackStateError,
    StatePaths,
    pid_alive,
    process_start_ticks,
    read_pid_file,
    read_stack_info,
    write_pid_file,
)


def _info(tmp_path) -> StackInfo:
    return StackInfo(
        state_dir=str(tmp_path), stage="local", account_id="123456789012", region="us-east-1",
        endpoint_url="http://127.0.0.1:1", kms_endpoint_url="http://127.0.0.1:2",
        inbox_bucket="i", results_bucket="r", artifacts_bucket="a", queue_url="q", dlq_url="d", jobs_table="t",
        key_arn="arn:aws:kms:us-east-1:123456789012:key/k", key_alias="alias/x",
        identities={
            "tenant-a": IdentityRecord("tenant-a", "arn:aws:iam::123456789012:role/t", "AKIAXXXXXXXXXXXXXXXX", "s" * 40)
        },
        attestation_root_pem=str(tmp_path / "root.pem"), expected_pcrs={"0": "ab" * 48}, workers=1,
    )


def test_stack_info_round_trips_through_stack_json(tmp_path):
    info = _info(tmp_path)
    write_json_atomic(StatePaths(tmp_path).stack_file, info.to_json())
    assert read_stack_info(tmp_path) == info
    assert oct(StatePaths(tmp_path).stack_file.stat().st_mode & 0o777) == "0o600"  # it holds credentials


def test_missing_foreign_or_torn_stack_json_is_a_clear_error(tmp_path):
    with pytest.raises(StackStateError, match="ccc local up"):
        read_stack_info(tmp_path)
    path = StatePaths(tmp_path).stack_file
    path.write_text("{not json")
    with pytest.raises(StackStateError, match="cannot read"):
        read_stack_info(tmp_path)
    data = _info(tmp_path).to_json()
    data["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(StackStateError, match="schema"):
        read_stack_info(tmp_path)
    del data["key_arn"]
    data["schema_version"] = SCHEMA_VERSION
    path.write_text(json.dumps(data))
    with pytest.raises(StackStateError, match="lacks the field 'key_arn'"):
        read_stack_info(tmp_path)


def test_unknown_identity_names_the_known_ones(tmp_path):
    with pytest.raises(StackStateError, match="tenant-a"):
        _info(tmp_path).identity("tenant-z")


def test_pid_file_tells_a_live_supervisor_from_a_dead_or_recycled_one(tmp_path):
    path = tmp_path / "supervisor.pid"
    assert read_pid_file(path) is None
    record = write_pid_file(path)
    assert record.pid == os.getpid() and read_pid_file(path).alive()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    # Same pid number but another start time = a recycled pid, not our supervisor.
    assert not pid_alive(os.getpid(), (process_start_ticks(os.getpid()) or 0) + 1)
    path.write_text("garbage")
    assert not read_pid_file(path).alive()


def test_env_exports_point_at_moto_and_the_kms_gateway(tmp_path):
    env = environment(_info(tmp_path), "tenant-a")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["AWS_ENDPOINT_URL_KMS"] == "http://127.0.0.1:2"
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAXXXXXXXXXXXXXXXX"


def test_botocore_reads_the_per_service_endpoints_from_the_generated_config(tmp_path, monkeypatch):
    import botocore.session

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text(render_config("us-east-1", "http://127.0.0.1:1111", "http://127.0.0.1:2222", ["tenant-a"]))
    session = botocore.session.Session(profile="ccc-local-tenant-a")
    session.set_config_variable("config_file", str(config))
    session.set_credentials("AKIAXXXXXXXXXXXXXXXX", "s" * 40)
    assert session.create_client("kms").meta.endpoint_url == "http://127.0.0.1:2222"
    assert session.create_client("s3").meta.endpoint_url == "http://127.0.0.1:1111"
    assert session.create_client("sqs").meta.endpoint_url == "http://127.0.0.1:1111"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_PYTHON_INTERNALS = ("__init__", "Traceback", "invalid literal", "codec", "Expecting value", "object has no",
                     "KeyError", "TypeError", "ValueError")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from([*StackInfo.__dataclass_fields__, "identities.tenant-a", "unknown"]), value=_JSON,
       drop=st.booleans())
def test_a_corrupted_stack_json_is_one_line_in_words_not_python_internals(tmp_path, field, value, drop) -> None:
    """Issue 13 §4: a damaged stack.json printed Python internals ("StackInfo.__init__() got an
    unexpected keyword argument", "invalid literal for int()")."""
    document = _info(tmp_path).to_json()
    if field.startswith("identities."):
        document["identities"]["tenant-a"] = value
    elif drop:
        document.pop(field, None)
    else:
        document[field] = value
    write_json_atomic(StatePaths(tmp_path).stack_file, document)
    try:
        read_stack_info(tmp_path)
    except StackStateError as exc:
        message = str(exc)
        assert "\n" not in message and not any(marker in message for marker in _PYTHON_INTERNALS), message
        assert "ccc local" in message, message  # says what to do


def test_tenant_key_arns_round_trip_and_must_be_strings(tmp_path) -> None:
    """Interface C: stack.json carries each tenant's own key ARN; anything else is a clear error."""
    arns = {"tenant-a": "arn:aws:kms:us-east-1:123456789013:key/a"}
    document = {**_info(tmp_path).to_json(), "tenant_key_arns": arns}
    write_json_atomic(StatePaths(tmp_path).stack_file, document)
    assert read_stack_info(tmp_path).tenant_key_arns == arns
    write_json_atomic(StatePaths(tmp_path).stack_file, {**document, "tenant_key_arns": {"tenant-a": 7}})
    with pytest.raises(StackStateError, match="tenant_key_arns"):
        read_stack_info(tmp_path)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"{not json", b"[" * 100_000])
def test_unreadable_stack_json_bytes_are_one_line(tmp_path, raw: bytes) -> None:
    StatePaths(tmp_path).stack_file.write_bytes(raw)
    with pytest.raises(StackStateError) as caught:
        read_stack_info(tmp_path)
    assert "\n" not in str(caught.value) and not any(m in str(caught.value) for m in _PYTHON_INTERNALS)
