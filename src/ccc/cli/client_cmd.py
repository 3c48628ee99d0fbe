"""`ccc submit` and `ccc result`: encrypt images, send them to the enclave pipeline, verify results.

Both verify only against the tenant's trust file (`--trust`, `$CCC_TRUST_FILE`, or the per-user
default; `ccc.trust`) and refuse to run without one. The stack options say where to send jobs and
whose credentials to use, nothing more. Every string that came from the pipeline is printed through
`ccc.client.untrusted_text.printable`.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 24 * 3600.0


def _timeout(text: str) -> float:
    """Seconds to wait: finite and positive. `nan` waited for ever (every comparison with it is
    false) and busy-polled; a negative value was accepted silently."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0 and at most {MAX_TIMEOUT_S:.0f}")
    return value


def _tenant(text: str) -> str:
    """A tenant id by the naming rules; "" no longer silently means the default tenant."""
    from ccc_core.identity import NamingError, validate_tenant

    try:
        return validate_tenant(text)
    except NamingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--state-dir", type=Path, default=None, help="local stack state dir (default .ccc/local)")
    where.add_argument("--stack", metavar="NAME", help="a deployed CloudFormation stack (AWS tiers)")
    parser.add_argument("--region", help="AWS region of --stack (default: your AWS configuration)")
    parser.add_argument("--trust", type=Path, metavar="FILE",
                        help="your trust file (default: $CCC_TRUST_FILE, else ~/.config/ccc/trust.json)")
    parser.add_argument("--tenant", type=_tenant, help="tenant id (default: the trust file's; must match it)")
    parser.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT_S, help="seconds to wait for each result")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    submit = subparsers.add_parser("submit", help="encrypt images and submit them to the confidential pipeline")
    submit.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    submit.add_argument("--wait", action="store_true", help="wait for each result, verify and decrypt it")
    submit.add_argument("--queue", action="store_true",
                        help="no network: seal the images in the local outbox; `ccc sync` submits them later")
    _add_target_options(submit)
    submit.set_defaults(func=run_submit)

    sync = subparsers.add_parser("sync", help="submit the images `ccc submit --queue` put in the outbox")
    sync.add_argument("--wait", action="store_true", help="wait for each result, verify and decrypt it")
    _add_target_options(sync)
    sync.set_defaults(func=run_sync)

    result = subparsers.add_parser("result", help="fetch, verify and decrypt the result of a job")
    result.add_argument("job_id", metavar="JOB_ID")
    result.add_argument("--wait", action="store_true", help="wait until the job has finished")
    _add_target_options(result)
    result.set_defaults(func=run_result)


def _target(args: argparse.Namespace) -> Any:
    from ccc.client import cloudformation_target, local_target

    if args.stack:
        return cloudformation_target(args.stack, region=args.region)
    from ccc.local.state import DEFAULT_STATE_DIR

    return local_target(args.state_dir or DEFAULT_STATE_DIR)


def _say(text: str, *, error: bool = False) -> None:
    """The one way these commands print: every line through `printable` (it may quote the pipeline)."""
    from ccc.client.untrusted_text import printable

    print(printable(text), file=sys.stderr if error else sys.stdout, flush=True)


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        print(report.to_json(), flush=True)  # json.dumps escapes every control character
        return
    label = report.image or report.job_id
    if report.status == "done" and report.verified:
        noun = "cat" if report.cats == 1 else "cats"
        elapsed = "" if report.elapsed_ms is None else f"{report.elapsed_ms} ms; "  # `ccc result` measured none
        release = f"release {report.release}; " if getattr(report, "release", None) else ""
        _say(f"{label}: {report.cats} {noun}  (verified; {release}PCR0 {report.pcr0[:16]}…; {elapsed}"
             f"job {report.job_id})")
    elif report.status == "done":
        _say(f"{label}: result NOT VERIFIED: {report.error} (job {report.job_id})")
    elif report.status == "failed":
        _say(f"{label}: job failed: {report.error} (job {report.job_id})")
    else:
        suffix = f": {report.error}" if report.error else ""
        _say(f"{label}: pending{suffix} (job {report.job_id})")


def _trust(args: argparse.Namespace) -> Any:
    """The tenant's trust file, or TrustError (NoTrustFile says how to make one)."""
    from ccc.trust import load_tenant_trust

    return load_tenant_trust(args.trust)


def _start_telemetry(args: argparse.Namespace) -> Any:
    """Client spans: JSON Lines in the local stack's state dir (if it exists), else OTLP/none."""
    from ccc_core.telemetry.setup import setup_telemetry

    state_dir = None
    if not args.stack:
        from ccc.local.state import DEFAULT_STATE_DIR

        candidate = Path(args.state_dir or DEFAULT_STATE_DIR)
        state_dir = candidate if candidate.is_dir() else None
    return setup_telemetry("client", state_dir=state_dir)


def run_submit(args: argparse.Namespace) -> int:
    telemetry = _start_telemetry(args)
    try:
        return _run_submit(args)
    finally:
        telemetry.shutdown()


def run_result(args: argparse.Namespace) -> int:
    telemetry = _start_telemetry(args)
    try:
        return _run_result(args)
    finally:
        telemetry.shutdown()


def _status_board(client: Any) -> Any:
    """Per-job status lines while --wait polls, on a terminal only (stderr; quiet in pipes)."""
    from ccc.client.progress import JobStatusBoard

    board = JobStatusBoard()
    client.on_status = lambda job, status: board.update(job.job_id, status)
    return board


def _queue(args: argparse.Namespace) -> int:
    """`ccc submit --queue`: check and seal each image into the outbox; no stack, key or network needed."""
    from ccc.client import ClientError, check_images
    from ccc.client.outbox import Outbox
    from ccc_core.limits import LIMITS

    outbox = Outbox()
    try:
        images = check_images(list(args.images), LIMITS.max_image_bytes)
        for image in images:
            outbox.add(image.path.name, image.path.read_bytes())
    except (ClientError, OSError) as exc:
        _say(f"ccc submit --queue: {exc}", error=True)
        return 2
    _say(f"queued {len(images)} image(s), sealed in {outbox.root}; `ccc sync` submits them")
    return 0


def run_sync(args: argparse.Namespace) -> int:
    telemetry = _start_telemetry(args)
    try:
        return _run_sync(args)
    finally:
        telemetry.shutdown()


def _run_sync(args: argparse.Namespace) -> int:
    from ccc.client import CccClient, ClientError, JobReport
    from ccc.client.outbox import Outbox
    from ccc.client.sync import sync_outbox
    from ccc.trust import TrustError

    try:
        client = CccClient(_target(args), args.tenant, trust=_trust(args))
        outcomes = sync_outbox(client, Outbox())
    except (ClientError, TrustError) as exc:
        _say(f"ccc sync: {exc}", error=True)
        return 2
    status = 0
    for outcome in outcomes:
        if outcome.status == "failed":
            _say(f"{outcome.name}: not submitted, still queued: {outcome.error}", error=True)
            status = 1
        elif not args.wait or outcome.job is None:
            report = JobReport(image=outcome.name, job_id=outcome.job_id or "", status="submitted",
                               tenant=client.tenant)
            line = f"{outcome.name}: {outcome.status} as job {outcome.job_id}"
            _print_report(report, args.json) if args.json else _say(line)
    if args.wait:
        for outcome in outcomes:
            if outcome.job is not None:
                job = outcome.job
                report = client.wait(job.job, timeout=args.timeout, image=job.image, started=job.started)
                _print_report(report, args.json)
                status = status or (0 if report.ok else 1)
    return status


def _run_submit(args: argparse.Namespace) -> int:
    from ccc.client import CccClient, ClientError, JobReport, check_images
    from ccc.trust import TrustError

    if args.queue:
        return _queue(args)
    try:
        trust = _trust(args)
        target = _target(args)
        client = CccClient(target, args.tenant, trust=trust)
        images = check_images(list(args.images), target.limits.max_image_bytes)
    except (ClientError, TrustError) as exc:
        _say(f"ccc submit: {exc}", error=True)
        return 2
    submitted = []
    for image in images:
        try:
            job = client.submit(image)
        except ClientError as exc:
            _say(f"ccc submit: {exc}", error=True)
            return 1
        except Exception as exc:  # botocore/ESDK failures: report them without a traceback
            _say(f"ccc submit: {image.path}: {type(exc).__name__}: {exc}", error=True)
            return 1
        submitted.append(job)
        if not args.wait:
            report = JobReport(image=job.image, job_id=job.job.job_id, status="submitted", tenant=job.job.tenant,
                               input_sha256=job.input_sha256)
            _print_report(report, args.json) if args.json else _say(f"{job.image}: submitted as job {job.job.job_id}")
    if not args.wait:
        return 0
    board = _status_board(client)
    for job in submitted:
        board.track(job.job.job_id, Path(job.image).name)
    status = 0
    for job in submitted:
        report = client.wait(job.job, timeout=args.timeout, image=job.image, started=job.started)
        _print_report(report, args.json)
        if not report.ok:
            status = 1
    return status


def _run_result(args: argparse.Namespace) -> int:
    from ccc.client import CccClient, ClientError, UnknownJob
    from ccc.trust import TrustError
    from ccc_core.identity import JobRef, NamingError

    try:
        trust = _trust(args)
        target = _target(args)
        client = CccClient(target, args.tenant, trust=trust)
        job = JobRef(tenant=client.tenant, job_id=args.job_id)
    except (ClientError, NamingError, TrustError) as exc:
        _say(f"ccc result: {exc}", error=True)
        return 2
    try:
        if args.wait:
            _status_board(client).track(job.job_id, "")
        report = client.wait(job, timeout=args.timeout) if args.wait else client.fetch(job)
    except UnknownJob as exc:
        _say(f"ccc result: {exc}", error=True)
        return 1
    except Exception as exc:
        _say(f"ccc result: {type(exc).__name__}: {exc}", error=True)
        return 1
    _print_report(report, args.json)
    return 0 if report.ok else 1
