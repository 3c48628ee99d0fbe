"""One onnxruntime session per (model, options) per process, verified, optimised and warmed up.

Creating a session parses and optimises the graph (tens to hundreds of ms) and the first run
allocates buffers, so the enclave must not pay that per image: sessions are cached at module level
and warmed up once. The model bytes are read once, hashed and handed to onnxruntime from memory,
so the SHA-256 reported with every count is the hash of exactly the bytes that run (no window
between hashing a file and loading it).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

from ccc_enclave.counting.spec import DetectorSpec
from ccc_enclave.errors import EnclaveError

SessionProfile = Literal["tuned", "default"]


class ModelError(EnclaveError, RuntimeError):
    """The model file is missing, unreadable, not the expected bytes, or does not match its spec."""


@dataclass(frozen=True)
class LoadedModel:
    session: Any  # onnxruntime.InferenceSession (imported lazily: it is heavy)
    sha256: str
    input_name: str
    output_names: tuple[str, ...]
    profile: SessionProfile
    threads: int | None
    spinning: bool  # onnxruntime's intra-op threads spin-wait between parallel sections (`session_options`)
    batched: bool  # the input's batch axis is dynamic: all views of an image go in one run
    startup_ms: dict[str, float]  # read, hash, create (parse + optimise), warm_up: `ccc bench coldstart`
    # One run at a time on this session: each run already uses every CPU (intra-op threads), so two
    # concurrent jobs' runs would only fight over the cores (measured with two threads counting JPEGs at
    # once: 11.5 images/s with this lock, 9.8 without); the other job meanwhile decrypts or encrypts.
    run_lock: Any = field(default_factory=threading.Lock, compare=False, repr=False)


_CACHE: dict[tuple[str, int, int, int | None, SessionProfile, bool], LoadedModel] = {}
_LOCK = threading.Lock()


def session_options(profile: SessionProfile, threads: int | None, *, spinning: bool = False) -> Any:
    """`default`: onnxruntime's own defaults (the baseline of `ccc bench count`).

    `tuned`: full graph optimisation, sequential execution (the graph is a chain, parallel
    execution only adds scheduling), memory-pattern planning on, intra-op threads as given (None:
    one per CPU this process may use, `available_cpus`), and spin-waiting only if `spinning`.
    Measured both ways (docs/counting.md): one image at a time, spinning made inference 5-10 %
    faster; with two jobs counting at once (what the enclave does) throughput was the same or
    better without it, at 8 % less CPU per image (157 vs 170 ms), because the spinning threads take
    the CPU the other job needs to decrypt, decode or encrypt. So the caller decides from how many
    jobs share the CPUs (`CatCounter(concurrent_jobs=...)`).
    """

    options = ort.SessionOptions()
    if profile == "tuned":
        threads = threads or available_cpus()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_mem_pattern = True
        options.enable_cpu_mem_arena = True
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    elif threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    return options


def available_cpus() -> int:
    """CPUs this process may run on (the enclave's vCPUs there).

    onnxruntime's own default is one thread per *physical* core; an enclave's vCPUs are often
    hyper-threads of fewer cores, which would leave half of them idle during inference.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def views_per_image(spec: DetectorSpec) -> int:
    """Model inputs per image at most: the whole image and its tiles, twice if mirrored."""
    views = 1 + (spec.tile_grid**2 if spec.tile_grid > 1 else 0)
    return views * (2 if spec.mirror_views else 1)


def _read_model(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model file not found: {path} (build it with `make model` or fix the spec)") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from None


def _check_input(session: Any, spec: DetectorSpec) -> str:
    inputs = session.get_inputs()
    if spec.input_name is None:
        chosen = inputs[0]
    else:
        matches = [item for item in inputs if item.name == spec.input_name]
        if not matches:
            raise ModelError(f"model has no input {spec.input_name!r} (inputs: {[item.name for item in inputs]})")
        chosen = matches[0]
    width, height = spec.input_wh
    expected = (1, 3, height, width) if spec.layout == "NCHW" else (1, height, width, 3)
    shape = chosen.shape
    if len(shape) != 4 or any(isinstance(dim, int) and dim != want for dim, want in zip(shape, expected, strict=True)):
        raise ModelError(f"model input {chosen.name!r} has shape {shape}, spec implies {list(expected)}")
    return str(chosen.name)


def load_model(
    spec: DetectorSpec,
    *,
    threads: int | None = None,
    profile: SessionProfile = "tuned",
    warm_up_batch: int = 1,
    spinning: bool = False,
) -> LoadedModel:
    """The cached, warmed-up session for `spec.model_path` with these options (created on first use).

    `warm_up_batch`: how many views the first run carries when the model takes a batch (the
    optimised counter sends all views of an image at once, so its buffers are sized for that).
    """
    if threads is not None and threads < 1:
        raise ValueError("threads must be >= 1")
    path = Path(spec.model_path).resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ModelError(f"model file not found: {path} (build it with `make model` or fix the spec)") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from None
    spinning = spinning and profile == "tuned"  # `default` keeps onnxruntime's own setting
    key = (str(path), stat.st_size, stat.st_mtime_ns, threads, profile, spinning)
    with _LOCK:
        loaded = _CACHE.get(key)
        if loaded is None:
            started = time.perf_counter()
            data = _read_model(path)
            read = time.perf_counter()
            digest = hashlib.sha256(data).hexdigest()
            hashed = time.perf_counter()
            _check_digest(path, digest, spec)
            loaded = _create(data, digest, spec, threads, profile, warm_up_batch, spinning)
            loaded.startup_ms.update(read=(read - started) * 1000, hash=(hashed - read) * 1000)
            _CACHE[key] = loaded
        else:
            _check_digest(path, loaded.sha256, spec)
            _check_input(loaded.session, spec)
        return loaded


def _check_digest(path: Path, digest: str, spec: DetectorSpec) -> None:
    if spec.sha256 is not None and digest != spec.sha256:
        raise ModelError(f"model file {path} has sha256 {digest}, the spec expects {spec.sha256}")


def _create(
    data: bytes,
    digest: str,
    spec: DetectorSpec,
    threads: int | None,
    profile: SessionProfile,
    warm_up_batch: int,
    spinning: bool,
) -> LoadedModel:
    started = time.perf_counter()
    try:
        session = ort.InferenceSession(
            data, sess_options=session_options(profile, threads, spinning=spinning), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types for invalid graphs
        raise ModelError(f"onnxruntime cannot load the model: {exc}") from None
    input_name = _check_input(session, spec)
    output_names = tuple(str(item.name) for item in session.get_outputs())
    batch_dim = next(item.shape[0] for item in session.get_inputs() if item.name == input_name)
    batched = not isinstance(batch_dim, int)
    width, height = spec.input_wh
    batch = max(1, warm_up_batch) if batched else 1
    shape = (batch, 3, height, width) if spec.layout == "NCHW" else (batch, height, width, 3)
    created = time.perf_counter()
    session.run(None, {input_name: np.zeros(shape, dtype=np.float32)})  # warm-up: allocate buffers once
    warmed = time.perf_counter()
    startup = {"create": (created - started) * 1000, "warm_up": (warmed - created) * 1000}
    return LoadedModel(session, digest, input_name, output_names, profile, threads, spinning, batched, startup)


def clear_cache() -> None:
    """Forget cached sessions (tests and benchmarks that compare fresh sessions)."""
    with _LOCK:
        _CACHE.clear()
