"""`make demo` / `python -m ccc.demo`: the whole confidential pipeline on this machine, end to end.

Writes sample images (no cat, one cat, several cats), starts the local stack (moto, attested-KMS
gateway, one parent agent + simulated enclave), makes the demo tenant's trust file the way a tenant
would (`ccc trust init --local-stack ... --yes`: the proposal is printed, then accepted), submits
every image encrypted to the pinned key, waits for each result, verifies it against that trust file
only and decrypts it, prints a table, and stops the stack.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

_EXPECTED_RE = re.compile(r"-(\d+)cats?$")


def expected_cats(path: Path) -> int | None:
    """The sample writer encodes the true count in the name (`composite-3cats.jpg`)."""
    match = _EXPECTED_RE.search(path.stem)
    return int(match.group(1)) if match else None


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join("{:<" + str(w) + "}" for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccc.demo", description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=None, help="where images and stack state go (default: temp)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each result")
    args = parser.parse_args(argv)

    from ccc.cli import main as ccc_main
    from ccc.client import CccClient, InputRecord, check_images, local_target
    from ccc.evaluation.samples import write_samples
    from ccc.local.stack import LocalStack, StackError
    from ccc.trust import load_trust

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ccc-demo-") as temporary:
        work = args.work_dir.resolve() if args.work_dir else Path(temporary)
        images = write_samples(work / "images")
        print(f"demo: wrote {len(images)} sample images to {work / 'images'}", flush=True)
        print("demo: starting the local stack (moto, attested-KMS gateway, parent agent + enclave)...", flush=True)
        try:
            stack = LocalStack.start(work / "stack", workers=1)
        except StackError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
        with stack:
            print(
                f"demo: stack ready in {stack.info.ready_seconds:.1f}s; expected enclave PCR0 "
                f"{stack.info.expected_pcrs['0'][:16]}…",
                flush=True,
            )
            trust_path = work / "trust-tenant-a.json"
            trust_path.unlink(missing_ok=True)
            init = ["trust", "init", "--out", str(trust_path), "--local-stack", str(stack.state_dir),
                    "--tenant", "tenant-a", "--yes"]
            print(f"demo: ccc {' '.join(init)}", flush=True)
            if ccc_main(init) != 0:
                print("demo: could not make the tenant's trust file", file=sys.stderr)
                return 1
            target = local_target(stack.state_dir)
            client = CccClient(target, "tenant-a", trust=load_trust(trust_path),
                               inputs=InputRecord(work / "client-state"), show_progress=False)
            checked = check_images(images, target.limits.max_image_bytes)
            submitted = [client.submit(image) for image in checked]
            print(f"demo: submitted {len(submitted)} jobs as tenant-a, encrypted to the pinned key; waiting for "
                  "results (verified against the trust file only)", flush=True)
            reports = [
                client.wait(job.job, timeout=args.timeout, image=job.image, started=job.started) for job in submitted
            ]
        rows: list[list[str]] = []
        ok = True
        for report in reports:
            expected = expected_cats(Path(report.image or ""))
            counted = "-" if report.cats is None else str(report.cats)
            rows.append(
                [
                    Path(report.image or "").name,
                    "?" if expected is None else str(expected),
                    counted,
                    "yes" if report.verified else "NO",
                    (report.pcr0 or "-")[:12],
                    str(report.elapsed_ms or "-"),
                    report.error or "",
                ]
            )
            ok = ok and report.ok
        print()
        print(_table(rows, ["image", "expected", "counted", "verified", "pcr0", "ms", "error"]))
        print()
        print(f"demo: {'all results verified' if ok else 'SOME JOBS FAILED'} in {time.monotonic() - began:.1f}s total")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
