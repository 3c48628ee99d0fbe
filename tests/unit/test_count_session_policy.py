"""Spin-waiting follows how many jobs share the CPUs: one image at a time spins, the enclave does not.

onnxruntime's spinning threads are faster for a lone caller but take the CPU a second job needs
(docs/counting.md); the choice must reach the session, and the two settings must not share a
cached session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ccc.evaluation.testing import constant_detector, nanodet_outputs
from ccc_enclave.counting import CatCounter, DetectorSpec
from ccc_enclave.counting.session import session_options
from ccc_enclave.onnx_counter import OnnxCounter

SPIN = "session.intra_op.allow_spinning"


def spec_at(tmp_path: Path) -> DetectorSpec:
    model = tmp_path / "model.onnx"
    outputs = nanodet_outputs([(12, 20, 44, 36, 1, 0.9)], input_size=(64, 64), num_classes=3)
    model.write_bytes(constant_detector(outputs, input_name="input_1", input_shape=("batch", 3, 64, 64)))
    return DetectorSpec(model_path=model, decoder="nanodet", input_size=64, num_classes=3, cat_class=1, tile_grid=1)


@pytest.mark.parametrize("spinning, expected", [(True, "1"), (False, "0")])
def test_tuned_options_carry_the_spin_policy(spinning: bool, expected: str) -> None:
    assert session_options("tuned", 2, spinning=spinning).get_session_config_entry(SPIN) == expected


def test_one_job_spins_two_jobs_do_not(tmp_path: Path) -> None:
    spec = spec_at(tmp_path)
    alone, shared = CatCounter(spec), CatCounter(spec, concurrent_jobs=2)
    assert alone._model.spinning and not shared._model.spinning
    assert alone._model.session is not shared._model.session
    assert alone.model.sha256 == shared.model.sha256


def test_the_enclave_counter_does_not_spin(tmp_path: Path) -> None:
    counter = OnnxCounter(spec_at(tmp_path))
    assert not counter._counter._model.spinning


def test_concurrent_jobs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="concurrent_jobs"):
        CatCounter(spec_at(tmp_path), concurrent_jobs=0)
