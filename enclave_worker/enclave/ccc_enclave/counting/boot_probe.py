"""`python -m ccc_enclave.counting.boot_probe`: the enclave's boot steps, timed one by one.

`ccc bench coldstart` starts this in a fresh `.venv-enclave` interpreter (cold imports, cold
caches) and reads one JSON line: monotonic timestamps (CLOCK_MONOTONIC is system-wide on Linux,
so the parent can subtract its own launch time) and the duration of each step `boot()` in
`ccc_enclave.__main__` takes before the enclave can accept its first job: loading the spec, the
model (read, hash, session create, warm-up), the boot key pair, and the NSM with the boot
attestation. `--pipeline reference` loads the model the way the counter did before issue 16 (default
session, warm-up for one view), for the before/after comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ccc_enclave.attester import NsmAttester, build_nsm
from ccc_enclave.counting.counter import CatCounter
from ccc_enclave.kms.recipient import EnclaveKeyPair
from ccc_enclave.onnx_counter import load_spec


def probe(model_dir: Path, nsm_spec: str, pipeline: str) -> dict[str, object]:
    started = time.monotonic()
    steps: dict[str, float] = {}
    mark = time.perf_counter()

    def step(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        steps[name] = round((now - mark) * 1000, 2)
        mark = now

    spec = load_spec(model_dir)
    step("spec")
    reference = pipeline == "reference"
    # The enclave counts two jobs at once (`OnnxCounter`): the same session settings here.
    counter = (
        CatCounter(spec, profile="default", pipeline="reference") if reference else CatCounter(spec, concurrent_jobs=2)
    )
    step("model")
    keypair = EnclaveKeyPair.generate()
    step("key_pair")
    attester = NsmAttester(build_nsm(nsm_spec, Path(spec.model_path)), keypair.public_key_der)
    step("nsm_attest")
    return {
        "main_started_monotonic": started,
        "ready_monotonic": time.monotonic(),
        "steps_ms": steps,
        "model_ms": {name: round(value, 2) for name, value in counter.startup_ms.items()},
        "batched": counter.batched,
        "pcr0": attester.pcr0_hex,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccc_enclave.counting.boot_probe", description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--nsm", required=True, help="'simulated:<ca_dir>' (or 'device' inside an enclave)")
    parser.add_argument("--pipeline", choices=("optimised", "reference"), default="optimised")
    args = parser.parse_args(argv)
    print(json.dumps(probe(args.model_dir, args.nsm, args.pipeline)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
