"""Deterministic SHA-384 "PCR" measurements of the enclave code and model, for the local tier.

On AWS, PCR0/1/2 are measured by the Nitro hypervisor from the EIF. Locally there is no EIF, so
the simulated NSM reports these measurements instead; they follow the same rules that make
PCRs useful for a key policy: any change to the enclave's code (or model) changes PCR0, and
the same inputs always give the same values. The exact recipe is documented in
docs/attestation.md; it is versioned by the domain-separation labels below.

Extend semantics, as a PCR register: PCR = SHA-384(previous PCR (48 zero bytes at boot) || digest).
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Iterable
from pathlib import Path

PCR_BYTES = 48
_CODE_LABEL = b"ccc.enclave.code.v1\x00"
_MODEL_LABEL = b"ccc.enclave.model.v1\x00"
_PINS_LABEL = b"ccc.enclave.pins.v1\x00"
_IMAGE_LABEL = b"ccc.enclave.image.v1\x00"
_BOOTSTRAP_LABEL = b"ccc.enclave.bootstrap.v1\x00"
_APPLICATION_LABEL = b"ccc.enclave.application.v1\x00"
BOOTSTRAP_ID = "ccc-enclave-bootstrap/1"
_CHUNK = 1 << 20


def pcr_extend(previous: bytes, digest: bytes) -> bytes:
    """The NSM's extend operation: SHA-384(previous || digest)."""
    if len(previous) != PCR_BYTES:
        raise ValueError("a PCR is 48 bytes")
    return hashlib.sha384(previous + digest).digest()


def measure_enclave(
    code_root: Path | Iterable[Path], model_path: Path | None = None, *, pins_path: Path | None = None
) -> dict[int, bytes]:
    """PCR0 (image = code + pins + model), PCR1 (Python runtime + bootstrap id), PCR2 (code + pins).

    `pins_path` is the distribution's pinned requirements file: a changed dependency version
    changes PCR0 and PCR2 just as changed code does (48 zero bytes stand in when it is absent).

    `code_root` is one directory or several (e.g. the enclave_worker and ccc package dirs);
    every `*.py` file under them is measured under the path `<root dir name>/<relative path>`,
    so the result depends neither on where the checkout lives nor on the order of the roots.
    """
    roots = [Path(code_root)] if isinstance(code_root, str | os.PathLike) else [Path(r) for r in code_root]
    code_digest = _code_digest(roots)
    model_digest = _model_digest(Path(model_path)) if model_path is not None else bytes(PCR_BYTES)
    pins_digest = _pins_digest(Path(pins_path)) if pins_path is not None else bytes(PCR_BYTES)
    zero = bytes(PCR_BYTES)
    image = hashlib.sha384(_IMAGE_LABEL + code_digest + pins_digest + model_digest).digest()
    runtime = f"{platform.python_implementation()} {platform.python_version()} {BOOTSTRAP_ID}".encode()
    bootstrap = hashlib.sha384(_BOOTSTRAP_LABEL + runtime).digest()
    application = hashlib.sha384(_APPLICATION_LABEL + code_digest + pins_digest).digest()
    return {0: pcr_extend(zero, image), 1: pcr_extend(zero, bootstrap), 2: pcr_extend(zero, application)}


def enclave_code_files(roots: Iterable[Path]) -> list[tuple[str, Path]]:
    """`(logical path, file)` for every *.py under `roots`, sorted by logical path."""
    files: dict[str, Path] = {}
    root_list = list(roots)
    if not root_list:
        raise ValueError("measure_enclave needs at least one code root")
    for root in root_list:
        if not root.is_dir():
            raise ValueError(f"code root {root} is not a directory")
        for directory, subdirs, names in os.walk(root, followlinks=False):
            subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
            for name in names:
                if not name.endswith(".py"):
                    continue
                path = Path(directory) / name
                logical = f"{root.name}/{path.relative_to(root).as_posix()}"
                if logical in files:
                    raise ValueError(f"two code roots both provide {logical}")
                files[logical] = path
    if not files:
        raise ValueError(f"no *.py files under {[str(r) for r in root_list]}")
    return sorted(files.items())


def _code_digest(roots: list[Path]) -> bytes:
    digest = hashlib.sha384(_CODE_LABEL)
    for logical, path in enclave_code_files(roots):
        name = logical.encode()
        content = path.read_bytes()
        digest.update(len(name).to_bytes(4, "big") + name)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.digest()


def _model_digest(model_path: Path) -> bytes:
    if not model_path.is_file():
        raise ValueError(f"model {model_path} is not a file")
    digest = hashlib.sha384(_MODEL_LABEL)
    digest.update(model_path.stat().st_size.to_bytes(8, "big"))
    with model_path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


def _pins_digest(pins_path: Path) -> bytes:
    if not pins_path.is_file():
        raise ValueError(f"pinned requirements {pins_path} is not a file")
    content = pins_path.read_bytes()
    return hashlib.sha384(_PINS_LABEL + len(content).to_bytes(8, "big") + content).digest()
