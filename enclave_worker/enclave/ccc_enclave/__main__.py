"""`python -m ccc_enclave`: boot the enclave server (model, key pair, NSM) and serve."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ccc_core.limits import LIMITS
from ccc_core.logs import configure_logging, log_event
from ccc_enclave.cpus import ENCLAVE_CPUS_ENV, CpuListError, parse_cpu_list, pin_this_process

if TYPE_CHECKING:
    from ccc_enclave.server import EnclaveServer

_LOG = logging.getLogger("ccc.enclave")


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m ccc_enclave", description=__doc__)
    parser.add_argument("--listen", default=env("CCC_ENCLAVE_LISTEN"),
                        help="vsock://any:PORT, tcp://HOST:PORT or unix:///path (env CCC_ENCLAVE_LISTEN)")
    parser.add_argument("--model-dir", type=Path, default=env("CCC_MODEL_DIR"),
                        help="directory holding the model card nanodet-g.json and its ONNX (env CCC_MODEL_DIR)")
    parser.add_argument("--spec", type=Path, default=None, help="a detector spec file instead of the model card")
    parser.add_argument("--nsm", default=env("CCC_ENCLAVE_NSM", "device"),
                        help="'device' (/dev/nsm) or 'simulated:<ca_dir>' (env CCC_ENCLAVE_NSM)")
    parser.add_argument("--kms-endpoint", default=env("CCC_ENCLAVE_KMS_ENDPOINT"),
                        help="the only KMS endpoint jobs may use (local gateway URL); default: the region's "
                             "public endpoint over TLS, as on AWS (env CCC_ENCLAVE_KMS_ENDPOINT)")
    parser.add_argument("--concurrency", type=int, default=int(env("CCC_ENCLAVE_CONCURRENCY", "2")),
                        help="jobs processed at once; more are answered 'busy' (env CCC_ENCLAVE_CONCURRENCY)")
    parser.add_argument("--max-connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None,
                        help="onnxruntime intra-op threads per session (default: one per CPU this process may use)")
    parser.add_argument("--cpus", default=env(ENCLAVE_CPUS_ENV),
                        help="run on these CPUs only, e.g. 1 or 2-3: the local stand-in for an enclave's dedicated "
                             f"vCPUs (env {ENCLAVE_CPUS_ENV}; default: wherever the host schedules it)")
    parser.add_argument("--log-level", default=env("CCC_LOG_LEVEL", "INFO"))
    parser.add_argument("--state-dir", type=Path, default=env("CCC_STATE_DIR"),
                        help="local stack state dir: spans/metrics as JSON Lines under <dir>/telemetry "
                             "(env CCC_STATE_DIR; default: OTLP if configured, else none)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("enclave", args.log_level)
    if not args.listen:
        print("error: --listen (or CCC_ENCLAVE_LISTEN) is required", file=sys.stderr)
        return 2
    if args.cpus:
        # Before the model loads: onnxruntime sizes its thread pool to the CPUs this process may use,
        # and every thread started from here on inherits the set.
        try:
            pin_this_process(parse_cpu_list(args.cpus))
        except CpuListError as exc:
            print(f"error: --cpus: {exc}", file=sys.stderr)
            return 2
    try:
        server = boot(args)
    except Exception as exc:  # a boot failure is fatal and must say why (but never print secrets)
        log_event(_LOG, logging.ERROR, "enclave boot failed", error_type=type(exc).__name__, error=str(exc)[:250])
        return 1

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from ccc_core.telemetry.setup import setup_telemetry

    telemetry = setup_telemetry("enclave", state_dir=args.state_dir)
    try:
        server.serve_forever()
    finally:
        telemetry.shutdown()
    return 0


def boot(args: argparse.Namespace) -> EnclaveServer:
    """Load and warm the model, create the boot key pair, set up the NSM, bind the listener."""
    from ccc_enclave.attester import NsmAttester, build_nsm
    from ccc_enclave.esdk_crypto import AttestedEsdkCrypto
    from ccc_enclave.kms.recipient import EnclaveKeyPair
    from ccc_enclave.onnx_counter import OnnxCounter, load_spec
    from ccc_enclave.pipeline import JobProcessor
    from ccc_enclave.server import EnclaveServer, ServerSettings
    from ccc_enclave.transport import listen

    limits = LIMITS
    start = time.perf_counter()
    counter = OnnxCounter(load_spec(args.model_dir, args.spec), threads=args.threads,
                          max_pixels=limits.max_image_pixels)
    model_ms = round((time.perf_counter() - start) * 1000, 1)
    keypair = EnclaveKeyPair.generate()
    nsm = build_nsm(args.nsm, counter.model_path)
    attester = NsmAttester(nsm, keypair.public_key_der)
    crypto = AttestedEsdkCrypto(nsm, keypair, kms_endpoint_url=args.kms_endpoint or None)
    processor = JobProcessor(crypto, counter, attester)
    settings = ServerSettings(
        concurrency=args.concurrency, max_connections=args.max_connections,
        shutdown_grace_s=float(limits.job_timeout_s), max_frame_bytes=limits.max_frame_bytes,
        max_ciphertext_bytes=limits.max_ciphertext_bytes,
    )
    listener = listen(args.listen)
    log_event(_LOG, logging.INFO, "enclave booted", model_name=counter.model_name, model_sha256=counter.model_sha256,
              pcr0=attester.pcr0_hex, model_load_ms=model_ms, endpoint=listener.endpoint.uri)
    return EnclaveServer(listener, processor, model_name=counter.model_name, model_sha256=counter.model_sha256,
                         pcr0_hex=attester.pcr0_hex, settings=settings)


if __name__ == "__main__":
    raise SystemExit(main())
