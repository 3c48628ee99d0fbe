"""`ccc bench ...`: benchmarks that print human text and write a JSON file.

`ccc bench count` times the cat counter (reference vs optimised path, identical counts required;
int8 quantisation on request);
`ccc bench accuracy` measures exact-count accuracy on the generated sample set. Other areas may add
`bench` sub-commands here later.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ccc.errors import CccError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks (human text + JSON file)")
    benches = parser.add_subparsers(dest="bench", metavar="BENCH")
    benches.required = True

    count = benches.add_parser("count", help="counter speed: reference vs optimised path (identical counts)")
    count.add_argument("--out", type=Path, default=Path("bench-results/count.json"), help="JSON report path")
    count.add_argument("--spec", type=Path, help="detector spec JSON (default: the model card in models/)")
    count.add_argument("--rounds", type=_positive_int, default=5, help="passes over the bench images per profile")
    count.add_argument("--threads", type=_positive_int, help="intra-op threads of the optimised session (default: "
                       "one per CPU this process may use)")
    count.add_argument("--accuracy-per-count", type=_positive_int, default=16,
                       help="composites per cat count in each accuracy set (tune + validate) of the identity check")
    count.add_argument("--int8", action="store_true", help="also evaluate int8 quantisation (slow; rejected so far)")
    count.add_argument("--no-int8", action="store_true", help=argparse.SUPPRESS)  # the default now (old scripts)
    count.set_defaults(func=run_count)

    coldstart = benches.add_parser("coldstart", help="enclave start to first job ready, step by step")
    coldstart.add_argument("--out", type=Path, default=Path("bench-results/coldstart.json"), help="JSON report path")
    coldstart.add_argument("--model-dir", type=Path, help="directory with the model card (default: models/)")
    coldstart.add_argument("--runs", type=_positive_int, default=3, help="launches per measurement (median)")
    coldstart.set_defaults(func=run_coldstart)

    pipeline = benches.add_parser("pipeline", help="local pipeline vs bare counter on the same images")
    pipeline.add_argument("--out", type=Path, default=Path("bench-results/pipeline.json"), help="JSON report path")
    pipeline.add_argument("--jobs", type=_positive_int, default=64, help="jobs (images) to run")
    pipeline.add_argument("--workers", type=_positive_int, default=1, help="enclave workers in the local stack")
    pipeline.add_argument(
        "--enclave-cpus", type=_positive_int, default=None, metavar="N",
        help="pinned mode, as on AWS: the bare counter and the enclave(s) on the same N CPUs, moto, gateways, "
             "Lambdas, parent and client on the others (default: shared, every process on every CPU)",
    )  # fmt: skip
    pipeline.set_defaults(func=run_pipeline)

    accuracy = benches.add_parser("accuracy", help="exact-count accuracy on the generated sample set")
    accuracy.add_argument("--out", type=Path, default=Path("bench-results/accuracy.json"), help="JSON report path")
    accuracy.add_argument("--spec", type=Path, help="detector spec JSON (default: the model card in models/)")
    accuracy.add_argument("--split", choices=("tune", "validate"), default="validate")
    accuracy.add_argument("--per-count", type=_positive_int, default=10, help="composites per cat count 0..6")
    accuracy.add_argument("--threshold", type=float, help="override the score threshold")
    accuracy.add_argument("--sweep", action="store_true",
                          help="choose post-processing settings on the tune split, report them on validate")
    accuracy.set_defaults(func=run_accuracy)


def _spec(args: argparse.Namespace) -> Any:
    from ccc_enclave.counting import resolve_spec

    return resolve_spec(args.spec)


def _write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _write_text(json_path: Path, text: str) -> None:
    """Print the human report and keep it next to the JSON (`<name>.txt`); then `_write` the JSON."""
    print(text)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
    print(f"wrote {json_path} and {json_path.with_suffix('.txt')}")


def run_count(args: argparse.Namespace) -> int:
    from ccc.evaluation.bench import render_text, run_bench
    from ccc.evaluation.samples import sample_set
    from ccc_enclave.counting import ModelError, SpecError

    try:
        spec = _spec(args)
        per_count = args.accuracy_per_count
        report = run_bench(
            spec, rounds=args.rounds, threads=args.threads, quantisation=args.int8 and not args.no_int8,
            accuracy_sets={split: sample_set(split, per_count=per_count) for split in ("tune", "validate")},
            int8_images=sample_set("validate", per_count=6),
        )
    except (SpecError, ModelError) as exc:
        print(f"ccc bench count: {exc}", file=sys.stderr)
        return 2
    _write_text(args.out, render_text(report))
    _write(args.out, report)
    return 0


def run_coldstart(args: argparse.Namespace) -> int:
    from ccc.evaluation.cold_start import render_text, run_cold_start
    from ccc_enclave.counting import default_model_dir

    try:
        report = run_cold_start(args.model_dir or default_model_dir(), runs=args.runs)
    except (CccError, OSError, subprocess.SubprocessError) as exc:
        print(f"ccc bench coldstart: {exc}", file=sys.stderr)
        return 1
    _write_text(args.out, render_text(report))
    _write(args.out, report)
    return 0


def run_pipeline(args: argparse.Namespace) -> int:
    from ccc.evaluation.bench_pipeline import render_text, run_pipeline_bench

    try:
        report = run_pipeline_bench(args.jobs, workers=args.workers, enclave_cpus=args.enclave_cpus)
    except (CccError, OSError, subprocess.SubprocessError) as exc:
        print(f"ccc bench pipeline: {exc}", file=sys.stderr)
        return 1
    _write_text(args.out, render_text(report))
    _write(args.out, report)
    return 0


def run_accuracy(args: argparse.Namespace) -> int:
    from ccc.evaluation.evaluate import collect_all, evaluate
    from ccc.evaluation.samples import sample_set
    from ccc_enclave.counting import CatCounter, ModelError, SpecError

    try:
        spec = _spec(args)
        if args.threshold is not None:
            spec = spec.with_overrides(score_threshold=args.threshold)
        counter = CatCounter(spec)
    except (SpecError, ModelError) as exc:
        print(f"ccc bench accuracy: {exc}", file=sys.stderr)
        return 2
    if args.sweep:
        from ccc.evaluation.evaluate import tune_and_validate

        swept = tune_and_validate(counter, args.per_count)
        _write(args.out, {"model": spec.name, "sweep": swept})
        print(f"tried {swept['settings_tried']} settings on the tune split; chosen: {swept['chosen']}")
        for name in ("tune", "validate_chosen", "validate_current_spec"):
            acc = swept[name]
            print(f"  {name}: {acc['exact']}/{acc['images']} exact ({acc['exact_rate']:.1%}), "
                  f"{acc['false_positive_images']}/{acc['negatives']} cat-free images with a cat reported")
        print(f"wrote {args.out}")
        return 0
    items = sample_set(args.split, per_count=args.per_count)
    result = evaluate(items, collect_all(counter, items, spec.score_threshold), spec)
    report = {"model": spec.name, "split": args.split, "per_count": args.per_count,
              "score_threshold": spec.score_threshold, "accuracy": result.to_dict()}
    _write(args.out, report)
    print(f"{result.exact}/{result.images} exact ({result.exact_rate:.1%}); "
          f"{result.false_positive_images}/{result.negatives} cat-free images with a cat reported")
    for cats, (exact, images) in sorted(result.by_count.items()):
        print(f"  {cats} cats: {exact}/{images}")
    print(f"wrote {args.out}")
    return 0
