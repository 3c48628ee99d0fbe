"""The OpenVINO adapter answers like an onnxruntime session, and the tool says when OpenVINO is missing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ccc.evaluation import bench_openvino
from ccc.evaluation.bench_openvino import OpenVinoSession


class _Port:
    def __init__(self, name: str) -> None:
        self._name = name

    def get_any_name(self) -> str:
        return self._name


class _Compiled:
    """What OpenVINO's compiled model returns: values keyed by output ports, in its own order."""

    def __init__(self) -> None:
        self.fed: list[Any] = []

    def create_infer_request(self) -> _Compiled:
        return self

    def infer(self, inputs: dict[int, np.ndarray]) -> dict[_Port, np.ndarray]:
        self.fed.append(inputs)
        batch = inputs[0]
        return {_Port("box_8"): batch * 2, _Port("cls_8"): batch + 1}


def test_outputs_come_back_in_the_counters_order() -> None:
    compiled = _Compiled()
    batch = np.arange(6, dtype=np.float32).reshape(2, 3)
    cls, box = OpenVinoSession(compiled, ("cls_8", "box_8")).run(None, {"input_1": batch})
    assert np.array_equal(cls, batch + 1) and np.array_equal(box, batch * 2)
    assert compiled.fed[0][0] is batch


def test_missing_openvino_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench_openvino.importlib.util, "find_spec", lambda name: None)
    assert bench_openvino.main(["--out", "unused.json"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
