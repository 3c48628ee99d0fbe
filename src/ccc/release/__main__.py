"""`python -m ccc.release build | fetch | record-pcrs | verify`: the enclave release from the command line.

* `build` writes build/enclave/bundle.tar and build/enclave/release.json (`make enclave-bundle`);
* `fetch` only fills the wheel cache (`make enclave-wheels`: the one step that needs the index);
* `record-pcrs` puts nitro-cli's measurement of the EIF into release.json (enclave_worker/build_eif.sh);
* `verify` checks a bundle against its release.json.

Exit status: 0 done, 1 the release could not be built, recorded or verified (reason on stderr),
2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ccc.release.assemble import (
    CACHE_DIR,
    DIST_DIR,
    OUT_DIR,
    PINS_FILE,
    ReleaseSources,
    build_release,
    check_bundle,
)
from ccc.release.errors import MeasurementError, ReleaseError
from ccc.release.manifest import load_manifest, with_measurement, write_manifest
from ccc.release.nitro_pcrs import measurement_from_nitro_cli
from ccc.release.wheelhouse import fill_cache


def _log(message: str) -> None:
    print(f"release: {message}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ccc.release", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write bundle.tar and release.json")
    build.add_argument("--repo", type=Path, default=Path.cwd(), help="the checkout (default: the current directory)")
    build.add_argument("--out-dir", type=Path, help=f"default: <repo>/{OUT_DIR}")
    build.add_argument("--cache-dir", type=Path, help=f"wheel cache (default: <repo>/{CACHE_DIR})")
    build.add_argument("--model-card", type=Path, help="model card; its .onnx sibling goes in too "
                                                       "(default: <repo>/models/nanodet-g.json)")
    build.add_argument("--base-image", help="base image digest, NAME@sha256:<hex>, when already known")
    build.add_argument("--offline", action="store_true", help="never ask the index: fail on a cache miss")
    fetch = sub.add_parser("fetch", help="fill the wheel cache (needs index access)")
    fetch.add_argument("--repo", type=Path, default=Path.cwd())
    fetch.add_argument("--cache-dir", type=Path)
    record = sub.add_parser("record-pcrs", help="record nitro-cli's PCRs of the EIF in release.json")
    record.add_argument("release", type=Path, help="release.json to update")
    record.add_argument("--nitro-build", type=Path, required=True, help="output of `nitro-cli build-enclave`")
    record.add_argument("--eif", type=Path, help="the EIF, to record its SHA-256")
    record.add_argument("--bundle", type=Path, help="the bundle the EIF was built from: must match release.json")
    record.add_argument("--base-image", help="base image digest, NAME@sha256:<hex>")
    record.add_argument("--nitro-cli-version")
    verify = sub.add_parser("verify", help="check a bundle against its release.json")
    verify.add_argument("release", type=Path)
    verify.add_argument("--bundle", type=Path, help="default: the manifest's bundle file next to release.json")
    return parser


def _record(args: argparse.Namespace) -> None:
    manifest = load_manifest(args.release)
    if args.bundle is not None:
        check_bundle(manifest, args.bundle)
    try:
        text = args.nitro_build.read_text()
    except OSError as exc:
        raise MeasurementError(f"cannot read {args.nitro_build}: {exc.strerror or exc}") from None
    measurement = measurement_from_nitro_cli(text, eif=args.eif, nitro_cli_version=args.nitro_cli_version)
    if manifest.measurement is not None and manifest.measurement.pcrs != measurement.pcrs:
        _log(f"warning: {args.release} already held other PCRs (PCR0 {manifest.measurement.pcrs['PCR0'][:16]}...): "
             "the same bundle measured differently, so the image build is not reproducible")
    updated = with_measurement(manifest, measurement, base_image=args.base_image)
    write_manifest(args.release, updated)
    print(f"recorded PCR0 {measurement.pcrs['PCR0']} in {args.release}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            repo = args.repo.resolve()
            built = build_release(
                ReleaseSources.in_checkout(repo, model_card=args.model_card),
                out_dir=args.out_dir or repo / OUT_DIR,
                cache_dir=args.cache_dir or repo / CACHE_DIR,
                base_image=args.base_image,
                allow_download=not args.offline,
                log=_log,
            )
            print(f"{built.bundle_path} sha256 {built.manifest.bundle.sha256}")
        elif args.command == "fetch":
            repo = args.repo.resolve()
            fill_cache(repo / DIST_DIR / PINS_FILE, args.cache_dir or repo / CACHE_DIR, log=_log)
        elif args.command == "record-pcrs":
            _record(args)
        else:
            manifest = load_manifest(args.release)
            bundle = args.bundle or args.release.parent / manifest.bundle.file
            check_bundle(manifest, bundle)
            print(f"ok: {bundle} is the bundle of {args.release} (sha256 {manifest.bundle.sha256})")
    except ReleaseError as exc:
        print(f"release {args.command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
