"""The counter port backed by `ccc_enclave.counting.CatCounter` (ONNX model loaded and warmed at boot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccc_core.limits import LIMITS
from ccc_enclave.counting import CatCounter, ImageError, load_model_card, load_spec_file, resolve_spec
from ccc_enclave.ports import CatDetection, CountOutcome, JobError
from ccc_enclave.protocol.errors import ErrorCode

DEFAULT_CARD_NAME = "nanodet-g.json"


def load_spec(model_dir: Path | None, spec_file: Path | None = None) -> Any:
    """The detector spec: an explicit spec file, else the model card in `model_dir` (default card name)."""

    if spec_file is not None:
        return load_spec_file(spec_file)
    if model_dir is not None:
        return load_model_card(model_dir / DEFAULT_CARD_NAME)
    return resolve_spec()


class OnnxCounter:
    """`Counter` port: bad images become JobError(bad_image), which is final (retrying cannot help)."""

    def __init__(
        self,
        spec: Any,
        *,
        threads: int | None = None,
        max_pixels: int = LIMITS.max_image_pixels,
        concurrent_jobs: int = 2,
    ) -> None:
        # Loads and warms the onnxruntime session. `concurrent_jobs`: the enclave counts two jobs at
        # once by default (its --concurrency), so onnxruntime's threads must not spin-wait.
        self._counter = CatCounter(spec, threads=threads, concurrent_jobs=concurrent_jobs)
        self._max_pixels = max_pixels
        self.model_path = Path(spec.model_path)

    @property
    def model_name(self) -> str:
        return str(self._counter.model.name)

    @property
    def model_sha256(self) -> str:
        return str(self._counter.model.sha256)

    def count(self, image: bytes) -> CountOutcome:
        try:
            result = self._counter.count_bytes(image, max_pixels=self._max_pixels)
        except ImageError as exc:
            # The summary carries nothing derived from the image (not even its dimensions).
            raise JobError(ErrorCode.BAD_IMAGE, f"not a usable image: {exc.summary[:200]}") from None
        return CountOutcome(
            cats=result.cats,
            detections=tuple(CatDetection(box=d.box, score=d.score) for d in result.detections),
        )
