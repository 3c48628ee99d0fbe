"""THE confidentiality test: a real local run leaves no plaintext anywhere outside client and enclave.

One stack of its own. Distinctive images (random high-entropy pixels with a real cat pasted in, as
PNG and JPEG, so every 32-byte run is unmistakable) go through both upload paths (jobs API +
presigned PUT, and S3-direct with trace metadata), plus a job that fails in the enclave (not an
image) and one whose ciphertext names another job. Then every log line and telemetry record of
every process and every object of every bucket (and every jobs-table item) is scanned with
`ccc.telemetry.leakscan` for: image byte runs of the encoded files and of the decoded pixel
buffers (raw, base64 at every alignment, hex, repr), the decrypted result documents, and a result
(cats/count/detections) in the same record as a job id. Zero findings. The scanner is shown to
find a planted copy of these very secrets first, so a clean scan means something. Finally, no
telemetry metric carries a tenant or a count at all.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ccc.client import CccClient, check_image, local_target
from ccc.client.crypto import encrypt_stream
from ccc.client.job_runner import JobTicket
from ccc.telemetry.leakscan import LeakScanner, merge
from ccc_core.identity import JobRef

pytestmark = pytest.mark.slow
JOB_TIMEOUT_S = 90.0
TENANT = "tenant-a"


def _distinctive_images(directory: Path, cat_photo: Path) -> list[Path]:
    """Noise canvases (every run unique) with the cat photo pasted in: PNG (lossless) and JPEG."""
    cat = Image.open(cat_photo).convert("RGB")
    paths = []
    for index, (size, fmt) in enumerate([((480, 360), "PNG"), ((640, 480), "JPEG"), ((400, 400), "PNG")]):
        rng = np.random.default_rng(1000 + index)
        canvas = Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))
        scale = 0.5 + 0.15 * index
        pasted = cat.resize((int(size[0] * scale), int(size[0] * scale * cat.height / cat.width)))
        canvas.paste(pasted, (size[0] // 8, size[1] // 8))
        path = directory / f"distinctive-{index}.{fmt.lower()}"
        canvas.save(path, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        paths.append(path)
    return paths


def _pixels(path: Path) -> bytes:
    return np.asarray(Image.open(path).convert("RGB")).tobytes()


def _ccc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ccc", *args], capture_output=True, text=True, timeout=240,
                          check=False)


def _decrypted_result(client: CccClient, job: JobRef) -> bytes:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import CommitmentPolicy

    body = client.s3.get_object(Bucket=client.target.results_bucket, Key=job.result_key)["Body"].read()
    sdk = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    plaintext, _ = sdk.decrypt(source=body, key_provider=client.provider)
    return bytes(plaintext)


def _admin(stack, service: str):
    import boto3

    admin = stack.info.identity("admin")
    session = boto3.session.Session(aws_access_key_id=admin.access_key_id,
                                    aws_secret_access_key=admin.secret_access_key, region_name=stack.info.region)
    return session.client(service, endpoint_url=stack.info.endpoint_url)


def _stored_objects(stack) -> list[tuple[str, bytes]]:
    s3 = _admin(stack, "s3")
    objects = []
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                head = s3.head_object(Bucket=bucket, Key=item["Key"])
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                metadata = json.dumps(head.get("Metadata", {}), sort_keys=True).encode()
                objects.append((f"s3://{bucket}/{item['Key']}", metadata + b"\n" + body))
    dynamodb = _admin(stack, "dynamodb")
    items = dynamodb.scan(TableName=stack.info.jobs_table)["Items"]
    objects.append((f"dynamodb://{stack.info.jobs_table}", json.dumps(items, sort_keys=True).encode()))
    return objects


def test_a_full_run_leaves_no_plaintext_in_logs_telemetry_or_storage(stack, samples, tmp_path):
    cat_photo = next(p for p in samples if p.name.startswith("chelsea"))
    images = _distinctive_images(tmp_path, cat_photo)
    scanner = LeakScanner()
    indexing = time.perf_counter()
    for path in images:
        scanner.add_blob(f"file {path.name}", path.read_bytes())
        scanner.add_blob(f"pixels {path.name}", _pixels(path))
    indexing = time.perf_counter() - indexing

    # Path 1: the CLI (jobs API, presigned PUT), waiting for verified results.
    piped = _ccc("submit", "--wait", "--json", "--state-dir", str(stack.state_dir), *map(str, images[:2]))
    assert piped.returncode == 0, piped.stdout + piped.stderr
    reports = [json.loads(line) for line in piped.stdout.splitlines()]
    client = CccClient(local_target(stack.state_dir), TENANT, show_progress=False)
    direct = CccClient(dataclasses.replace(local_target(stack.state_dir), api_url=None), TENANT, show_progress=False)
    # Path 2: S3-direct upload (carries x-amz-meta-traceparent).
    submitted = direct.submit(check_image(images[2], direct.target.limits.max_image_bytes))
    report = direct.wait(submitted.job, timeout=JOB_TIMEOUT_S, started=submitted.started)
    assert report.ok, report
    done = [JobRef(TENANT, r["job_id"]) for r in reports] + [submitted.job]
    assert all(r["status"] == "done" and r["verified"] for r in reports), reports
    cats = {r["job_id"]: r["cats"] for r in reports} | {submitted.job.job_id: report.cats}

    # Failure paths: plaintext that is not an image (fails inside the enclave), and a ciphertext
    # bound to another job (fails the context check). Their plaintexts are secrets too.
    not_an_image = random.Random(7).randbytes(4096)
    scanner.add_blob("not-an-image plaintext", not_an_image)
    failures = []
    for plaintext, bound_to in ((not_an_image, None), (images[0].read_bytes(), JobRef(TENANT, uuid.uuid4().hex))):
        job = JobRef(TENANT, uuid.uuid4().hex)
        sealed = io.BytesIO()
        encrypt_stream(io.BytesIO(plaintext), sealed, provider=direct.provider,
                       context=(bound_to or job).input_context())
        direct.upload(JobTicket(job=job, upload=None), io.BytesIO(sealed.getvalue()), len(sealed.getvalue()))
        failed = direct.wait(job, timeout=JOB_TIMEOUT_S)
        assert failed.status == "failed", failed
        failures.append(job)

    for job in done:
        scanner.add_result(job.job_id, _decrypted_result(client, job))
    for job in failures:
        scanner.add_job_id(job.job_id)

    # The scanner must see these very secrets when they are there (a blind scanner proves nothing).
    planted = [("planted/raw", images[0].read_bytes()[5000:6200]),
               ("planted/b64", base64.b64encode(_pixels(images[1])[30_001:40_000])),
               ("planted/result", b'{"job_id": "%s", "cats": %d}' % (done[0].job_id.encode(), cats[done[0].job_id]))]
    assert {leak.source for leak in scanner.scan_objects(planted).leaks} == {name for name, _ in planted}

    # Let the parents export the DP releases, then collect storage while moto still runs.
    deadline = time.monotonic() + 30
    telemetry = stack.state_dir / "telemetry"
    while time.monotonic() < deadline and b"ccc.dp.cats_per_day" not in b"".join(
            p.read_bytes() for p in telemetry.glob("parent.metrics.jsonl")):
        time.sleep(0.5)
    stored = _stored_objects(stack)
    names_stored = [name for name, _ in stored]
    for job in done + failures:  # the inbox ciphertexts and the results/failure records are all scanned
        assert any(name.endswith(job.inbox_key) for name in names_stored), job
        assert any(job.job_id in name and "/results/" in name for name in names_stored), job
    stack.stop()  # every process flushes its telemetry on SIGTERM

    began = time.perf_counter()
    files = scanner.scan_tree(stack.state_dir, patterns=("logs/*", "telemetry/*", "*.log", "run/*.json"))
    objects = scanner.scan_objects(stored)
    report_all = merge(files, objects)
    elapsed = time.perf_counter() - began
    print(f"\nconfidentiality scan: {report_all.summary()} (wall {elapsed:.2f}s; {len(stored)} stored objects, "
          f"{sum(len(b) for _, b in stored)} bytes; index built in {indexing:.2f}s)")
    assert files.sources >= 8 and any("telemetry" in str(p) for p in telemetry.iterdir())
    assert report_all.clean, "\n".join(str(leak) for leak in report_all.leaks[:20])

    # No per-tenant number in telemetry at all: no metric carries a tenant (the per-tenant DP
    # releases are gone; a host could replay jobs into them), and none is named after content.
    records = [json.loads(line) for path in telemetry.glob("*.jsonl") for line in path.read_text().splitlines()]
    metrics = [r for r in records if r.get("kind") == "metric"]
    assert metrics, "no metric was exported"
    assert not [r for r in metrics if "ccc.tenant" in r.get("attributes", {})]
    assert not [r for r in metrics if "cats" in r["name"] or r["name"].startswith("ccc.dp.")]
    for record in records:
        if record.get("kind") == "span":
            assert not any("cats" in key or key.rsplit(".", 1)[-1] == "count" for key in record["attributes"]), record
