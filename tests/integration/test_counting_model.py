"""The real NanoDet-g model end to end: the cat photo, cat-free photos, and composites with 0-6 cats.

Skipped only when `models/nanodet-g.onnx` has not been built (`make model`; `make test` builds it
first). The composites are the `validate` split of `ccc.evaluation.samples`, whose seeds are disjoint
from the `tune` split the default thresholds were chosen on (docs/counting.md).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ccc.cli import main
from ccc.evaluation import samples
from ccc.evaluation.evaluate import accuracy
from ccc_enclave.counting import CatCounter, default_card_path, resolve_spec

CARD = default_card_path()
pytestmark = pytest.mark.skipif(
    not CARD.is_file() or not CARD.with_suffix(".onnx").is_file(), reason="model not built (run `make model`)"
)
VALIDATE_PER_COUNT = 16  # the set the defaults were validated on (docs/counting.md): 128 images


@pytest.fixture(scope="module")
def counter() -> CatCounter:
    return CatCounter(resolve_spec())


def test_chelsea_is_one_cat_boxed_around_the_cat(counter: CatCounter) -> None:
    image = samples.chelsea()
    result = counter.count(image)
    assert result.cats == 1
    x1, y1, x2, y2 = result.detections[0].box
    height, width = image.shape[:2]
    assert (x2 - x1) * (y2 - y1) > 0.6 * width * height  # the photo is a close-up: the cat fills it
    assert 0.3 <= result.detections[0].score <= 1.0


def test_encoded_bytes_give_the_same_count(counter: CatCounter) -> None:
    for fmt in ("JPEG", "PNG", "WEBP"):
        buffer = io.BytesIO()
        Image.fromarray(samples.chelsea()).save(buffer, format=fmt)
        assert counter.count_bytes(buffer.getvalue()).cats == 1


@pytest.mark.parametrize("name", sorted(samples.negatives()))
def test_photos_without_cats_have_no_cat(counter: CatCounter, name: str) -> None:
    result = counter.count(samples.negatives()[name])
    assert result.cats == 0, [d.to_dict() for d in result.detections]


def test_validation_set_is_counted_exactly_on_at_least_90_percent(counter: CatCounter) -> None:
    # chelsea, the cat-free photos, and 16 composites for each count 0..6 (seeds unseen by the sweep)
    items = samples.sample_set("validate", per_count=VALIDATE_PER_COUNT)
    counts = [counter.count(item.image).cats for item in items]
    result = accuracy(items, counts)
    assert result.false_positive_images == 0, result.misses
    assert result.exact_rate >= 0.9, (result.exact_rate, result.misses)
    assert result.by_count[0] == (result.negatives, result.negatives)


def test_ccc_count_json_on_the_demo_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = samples.write_samples(tmp_path / "samples")
    assert main(["count", "--json", "--annotate", str(tmp_path / "annotated"), *map(str, paths)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["image"] for line in lines] == [str(path) for path in paths]
    for line in lines:
        expected = int(re.search(r"(\d+)cats?", Path(line["image"]).stem).group(1))  # type: ignore[union-attr]
        assert line["cats"] == expected, line
        assert line["model"]["name"] == "nanodet-g"
        assert re.fullmatch(r"[0-9a-f]{64}", line["model"]["sha256"])
        assert all(0 < d["score"] <= 1 for d in line["detections"])
    assert len(list((tmp_path / "annotated").glob("*.annotated.png"))) == len(paths)


def test_counter_is_deterministic(counter: CatCounter) -> None:
    image = samples.composite(4, 77).image
    first, second = counter.count(image), counter.count(np.array(image))
    assert first.detections == second.detections
