"""Model-agnostic cat counting: detector spec, safe image loading, ONNX inference, post-processing.

Public API (stable; the enclave server uses it):

    from ccc_enclave.counting import CatCounter, resolve_spec, ImageError
    counter = CatCounter(resolve_spec())          # default model card, or resolve_spec(Path("spec.json"))
    result = counter.count_bytes(image_bytes)     # raises ImageError(reason) for bad images
    result.cats, result.detections, result.timings, counter.model.sha256

Heavy imports (onnxruntime) happen only when a counter is created.
"""

from __future__ import annotations

from ccc_enclave.counting.counter import CatCounter, CountResult, Detection, ModelInfo, Timings
from ccc_enclave.counting.decoders import DecodeError
from ccc_enclave.counting.images import ImageError, load_image
from ccc_enclave.counting.session import ModelError
from ccc_enclave.counting.spec import (
    DetectorSpec,
    SpecError,
    default_card_path,
    default_model_dir,
    load_model_card,
    load_spec_file,
    resolve_spec,
)

__all__ = [
    "CatCounter",
    "CountResult",
    "DecodeError",
    "Detection",
    "DetectorSpec",
    "ImageError",
    "ModelError",
    "ModelInfo",
    "SpecError",
    "Timings",
    "default_card_path",
    "default_model_dir",
    "load_image",
    "load_model_card",
    "load_spec_file",
    "resolve_spec",
]
