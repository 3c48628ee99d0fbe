"""IAM on the real local stack (issue 12 §3): tenant-b, with its own credentials from `ccc local env`,
attacks tenant-a's finished job through the AWS SDK (read, list, overwrite, forge, copy, scan the
jobs table, take the work queue, go around the IAM gateway to moto). Every attempt is refused as
AWS's IAM would refuse it, and tenant-a's job still verifies afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# Runs in a child process with exactly the environment `ccc local env --identity tenant-b` prints.
_ATTACKS = r"""
import json, sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
a = json.loads(sys.argv[1])
cfg = Config(retries={"max_attempts": 1})
s3, ddb, sqs = (boto3.client(s, config=cfg) for s in ("s3", "dynamodb", "sqs"))
moto = boto3.client("s3", endpoint_url=a["moto"], config=cfg)
attacks = {
    "read result": lambda: s3.get_object(Bucket=a["results"], Key=a["result_key"]),
    "head result": lambda: s3.head_object(Bucket=a["results"], Key=a["result_key"]),
    "read input": lambda: s3.get_object(Bucket=a["inbox"], Key=a["inbox_key"]),
    "list results": lambda: s3.list_objects_v2(Bucket=a["results"], Prefix="results/tenant-a/"),
    "list inbox": lambda: s3.list_objects_v2(Bucket=a["inbox"], Prefix="jobs/"),
    "overwrite input": lambda: s3.put_object(Bucket=a["inbox"], Key=a["inbox_key"], Body=b"x"),
    "forge result": lambda: s3.put_object(Bucket=a["results"], Key=a["result_key"], Body=b"x"),
    "copy result": lambda: s3.copy_object(Bucket=a["inbox"], Key=a["own_key"],
                                          CopySource={"Bucket": a["results"], "Key": a["result_key"]}),
    "scan table": lambda: ddb.scan(TableName=a["table"]),
    "read job record": lambda: ddb.get_item(TableName=a["table"], Key={"job_id": {"S": a["job_id"]}}),
    "take work": lambda: sqs.receive_message(QueueUrl=a["queue"]),
    "moto directly": lambda: moto.get_object(Bucket=a["results"], Key=a["result_key"]),
}
codes = {}
for name, attack in attacks.items():
    try:
        attack()
        codes[name] = "ALLOWED"
    except ClientError as exc:
        codes[name] = exc.response["Error"]["Code"]
print(json.dumps(codes))
"""


def _ccc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ccc", *args], capture_output=True, text=True, timeout=180)


def test_another_tenant_can_neither_read_list_write_nor_scan_a_tenants_job(stack, samples) -> None:
    info = stack.info
    submitted = _ccc("submit", "--wait", "--json", "--state-dir", str(info.state_dir), str(samples[0]))
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    report = json.loads(submitted.stdout.splitlines()[0])
    assert report["status"] == "done" and report["verified"], report  # the normal path works under IAM
    job_id = report["job_id"]

    shown = _ccc("local", "env", "--state-dir", str(info.state_dir), "--identity", "tenant-b")
    assert shown.returncode == 0, shown.stderr
    exports = dict(
        line[len("export ") :].split("=", 1) for line in shown.stdout.splitlines() if line.startswith("export ")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | exports
    moto_url = json.loads((Path(info.state_dir) / "run" / "moto.json").read_text())["endpoint_url"]
    targets = {
        "results": info.results_bucket,
        "inbox": info.inbox_bucket,
        "result_key": f"results/tenant-a/{job_id}.ccc",
        "inbox_key": f"jobs/tenant-a/{job_id}.ccc",
        "own_key": f"jobs/tenant-b/{'0' * 32}.ccc",
        "table": info.jobs_table,
        "job_id": job_id,
        "queue": info.queue_url,
        "moto": moto_url,
    }
    attacked = subprocess.run(
        [sys.executable, "-c", _ATTACKS, json.dumps(targets)], env=env, capture_output=True, text=True, timeout=120
    )
    assert attacked.returncode == 0, attacked.stderr
    codes = json.loads(attacked.stdout)
    expected = dict.fromkeys(codes, "AccessDenied")
    expected["head result"] = "403"  # HEAD has no body: the SDK reports the status
    expected["scan table"] = expected["read job record"] = "AccessDeniedException"
    expected["moto directly"] = "InvalidAccessKeyId"  # moto knows only the IAM gateway's credential
    assert codes == expected

    again = _ccc("result", job_id, "--json", "--state-dir", str(info.state_dir))
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["verified"] is True  # untouched by the attempts
