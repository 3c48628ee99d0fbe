"""`ccc local up/down/env` and `ccc fleet status` as a user runs them (real processes, no workers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ccc.atomic_files import write_json_atomic
from ccc.local.stack import LocalStack
from ccc.local.state import StatePaths, pid_alive, read_stack_info

pytestmark = pytest.mark.slow


def _ccc(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ccc", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from ccc.local.components import ComponentError, resolve_model_path

    try:
        resolve_model_path(None)
    except ComponentError as exc:
        pytest.skip(f"the stack measures the model: {exc}")
    with LocalStack.start(tmp_path_factory.mktemp("state"), workers=0) as running:
        yield running


def test_stack_json_describes_a_reachable_stack(stack):
    info = stack.info
    assert info.endpoint_url.startswith("http://127.0.0.1:") and info.kms_endpoint_url.startswith("http://127.0.0.1:")
    assert set(info.identities) == {"admin", "parent", "lambdas", "tenant-a", "tenant-b"}
    assert {"moto", "kms-gateway", "lambdas"} <= set(info.pids)
    assert all(pid_alive(pid) for pid in info.pids.values())
    assert oct(StatePaths(stack.state_dir).stack_file.stat().st_mode & 0o777) == "0o600"


def test_second_up_on_a_running_state_dir_is_refused(stack):
    again = _ccc("local", "up", "--state-dir", str(stack.state_dir), "--workers", "0")
    assert again.returncode == 2  # nothing done: the documented "refused" status (ccc --help)
    assert "already running" in again.stderr
    assert read_stack_info(stack.state_dir).supervisor_pid == stack.process.pid  # untouched


def test_env_exports_work_with_the_aws_sdk(stack):
    shown = _ccc("local", "env", "--state-dir", str(stack.state_dir), "--identity", "tenant-b")
    assert shown.returncode == 0, shown.stderr
    lines = [line[len("export "):] for line in shown.stdout.splitlines() if line.startswith("export ")]
    exports = dict(line.split("=", 1) for line in lines)
    assert exports["AWS_ENDPOINT_URL_KMS"] == stack.info.kms_endpoint_url
    assert exports["AWS_ACCESS_KEY_ID"] == stack.info.identity("tenant-b").access_key_id
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | exports
    # The SDK reaches the stack as tenant-b, with tenant-b's IAM policy: its own results prefix, nothing else.
    probe = (
        "import boto3, botocore.exceptions as e; s3 = boto3.client('s3')\n"
        f"s3.list_objects_v2(Bucket='{stack.info.results_bucket}', Prefix='results/tenant-b/')\n"
        "try: s3.list_buckets()\n"
        "except e.ClientError as exc: print(exc.response['Error']['Code'])"
    )
    listed = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "AccessDenied"
    as_json = json.loads(_ccc("local", "env", "--state-dir", str(stack.state_dir), "--json").stdout)
    assert as_json["key_arn"] == stack.info.key_arn


def test_fleet_status_reports_an_empty_fixed_fleet(stack):
    shown = _ccc("fleet", "status", "--json", "--state-dir", str(stack.state_dir))
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert {k: status[k] for k in ("desired", "running", "backlog", "in_flight")} == {
        "desired": 0, "running": 0, "backlog": 0, "in_flight": 0
    }


def test_a_killed_gateway_is_restarted_at_the_same_url(stack):
    before = stack.refresh().pids["kms-gateway"]
    url = stack.info.kms_endpoint_url
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while stack.refresh().pids["kms-gateway"] == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.info.pids["kms-gateway"] != before
    assert stack.info.kms_endpoint_url == url
    import urllib.request

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # any HTTP answer means it listens again
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail("the restarted gateway does not listen on its old URL")


def test_down_stops_every_process_and_cleans_up(tmp_path):
    with LocalStack.start(tmp_path / "s", workers=0) as local:
        pids = local.info.pids
        stopped = _ccc("local", "down", "--state-dir", str(local.state_dir))
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        local.process.wait(timeout=30)
    assert not any(pid_alive(pid) for pid in pids.values())
    paths = StatePaths(tmp_path / "s")
    assert not paths.stack_file.exists() and not paths.pid_file.exists()
    again = _ccc("local", "down", "--state-dir", str(tmp_path / "s"))
    assert again.returncode == 0 and "no local stack" in again.stdout


def test_a_stale_pid_file_does_not_block_up(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    paths = StatePaths(tmp_path / "s")
    paths.prepare()
    write_json_atomic(paths.pid_file, {"pid": dead.pid, "start_ticks": 1})
    with LocalStack.start(tmp_path / "s", workers=0) as local:
        assert local.info.supervisor_pid == local.process.pid
