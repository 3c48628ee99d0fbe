"""`ccc count`: count cats in local image files (no encryption, no enclave: the engine on its own).

Output is a table, or with --json one JSON object per image in input order. A bad image is
reported (with the reason) and the run goes on; the exit status is 1 if any image failed and 2 for
usage errors (bad arguments, missing or invalid spec/model).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be in (0, 1], got {text}")
    return value


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"threads must be in 1..256, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "count", help="count cats in image files", description="Count cats in image files with an ONNX detector."
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG/PNG/WebP/BMP/GIF/TIFF)")
    parser.add_argument("--json", action="store_true", help="JSON Lines output, one object per image")
    parser.add_argument("--threshold", type=_threshold, help="cat score threshold in (0, 1] (default: the spec's)")
    parser.add_argument("--spec", type=Path, help="detector spec JSON file (default: the model card in models/)")
    parser.add_argument("--annotate", type=Path, metavar="DIR", help="write <stem>.annotated.png with boxes drawn")
    parser.add_argument("--threads", type=_threads, help="onnxruntime intra-op threads (default: one per core)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ccc_enclave.counting import CatCounter, ModelError, SpecError, resolve_spec

    try:
        spec = resolve_spec(args.spec)
        if args.threshold is not None:
            spec = spec.with_overrides(score_threshold=args.threshold)
        counter = CatCounter(spec, threads=args.threads)
    except (SpecError, ModelError) as exc:
        print(f"ccc count: {exc}", file=sys.stderr)
        return 2
    if args.annotate is not None:
        try:
            args.annotate.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"ccc count: cannot create --annotate directory: {exc}", file=sys.stderr)
            return 2
    rows = []
    used_names: set[str] = set()
    for image_arg in args.images:
        row = _count_one(counter, image_arg, args.annotate, used_names)
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        _print_table(rows)
    return 1 if any("error" in row for row in rows) else 0


def _count_one(counter: Any, image_arg: str, annotate_dir: Path | None, used_names: set[str]) -> dict[str, Any]:
    from ccc_enclave.counting import ImageError, load_image
    from ccc_enclave.counting.images import DEFAULT_MAX_BYTES

    start = time.perf_counter()
    path = Path(image_arg)
    try:
        if path.stat().st_size > DEFAULT_MAX_BYTES:
            raise ImageError(f"file is {path.stat().st_size} bytes, over the limit of {DEFAULT_MAX_BYTES} bytes")
        image = load_image(path.read_bytes())
        result = counter.count(image)
    except ImageError as exc:
        return {"image": image_arg, "error": exc.reason}
    except OSError as exc:
        return {"image": image_arg, "error": f"cannot read file: {exc.strerror or exc}"}
    elapsed_ms = (time.perf_counter() - start) * 1000
    row: dict[str, Any] = {
        "image": image_arg,
        "cats": result.cats,
        "detections": [item.to_dict() for item in result.detections],
        "model": counter.model.to_dict(),
        "elapsed_ms": round(elapsed_ms, 1),
    }
    if annotate_dir is not None:
        try:
            row_path = _annotated_path(annotate_dir, path, used_names)
            from ccc.evaluation.annotate import annotate

            annotate(image, result).save(row_path)
        except OSError as exc:
            return {"image": image_arg, "error": f"cannot write annotated image: {exc.strerror or exc}"}
    return row


def _annotated_path(directory: Path, source: Path, used_names: set[str]) -> Path:
    """<stem>.annotated.png, with -2, -3... when two inputs share a stem (never overwrite in one run)."""
    stem, suffix = source.stem, 1
    name = f"{stem}.annotated.png"
    while name in used_names:
        suffix += 1
        name = f"{stem}-{suffix}.annotated.png"
    used_names.add(name)
    return directory / name


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = ("image", "cats", "best score", "ms")
    lines = []
    for row in rows:
        if "error" in row:
            lines.append((row["image"], "-", "-", f"error: {row['error']}"))
            continue
        best = max((item["score"] for item in row["detections"]), default=None)
        score = "-" if best is None else f"{best:.2f}"
        lines.append((row["image"], str(row["cats"]), score, f"{row['elapsed_ms']:.1f}"))
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(3)]
    print(f"{header[0]:<{widths[0]}}  {header[1]:>{widths[1]}}  {header[2]:>{widths[2]}}  {header[3]}")
    for line in lines:
        print(f"{line[0]:<{widths[0]}}  {line[1]:>{widths[1]}}  {line[2]:>{widths[2]}}  {line[3]}")
    counted = [row for row in rows if "error" not in row]
    failed = len(rows) - len(counted)
    total = sum(row["cats"] for row in counted)
    print(f"{total} cat{'s' if total != 1 else ''} in {len(counted)} image{'s' if len(counted) != 1 else ''}"
          + (f"; {failed} failed" if failed else ""))
