"""`ccc trust ...`: the tenant's trust file -- make it, show it, roll releases, audit the key against it.

The file (`ccc.trust/v1`, defined in `ccc.trust.document`) is the only thing `ccc submit` and
`ccc result` verify against. `init` proposes values from a stack and writes them only once the
tenant confirms (`--yes`); `add-release`/`remove-release` roll releases without downtime (add the
new one, then remove the old); `audit` reads the pinned key's policy with the tenant's credentials
and reports any drift (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_DRIFT = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    trust = subparsers.add_parser("trust", help="the tenant's trust file: what results must come from")
    commands = trust.add_subparsers(dest="trust_command", metavar="COMMAND")
    commands.required = True

    init = commands.add_parser("init", help="propose a trust file from a stack; written once you confirm")
    init.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write the trust file")
    where = init.add_mutually_exclusive_group(required=True)
    where.add_argument("--local-stack", type=Path, metavar="DIR", help="a running local stack's state dir")
    where.add_argument("--stack", metavar="NAME", help="a deployed CloudFormation stack")
    init.add_argument("--tenant", required=True, help="your tenant id")
    init.add_argument("--region", help="AWS region of --stack")
    init.add_argument("--key-arn", help="your data key (default: proposed by the stack)")
    init.add_argument("--yes", action="store_true", help="accept the proposal without asking")
    init.add_argument("--force", action="store_true", help="replace an existing FILE")
    init.set_defaults(func=run_init)

    show = commands.add_parser("show", help="print what the trust file pins")
    _trust_option(show)
    show.add_argument("--json", action="store_true", help="the file's document as JSON")
    show.set_defaults(func=run_show)

    add = commands.add_parser("add-release", help="pin one more release (from release.json or bare PCRs)")
    _trust_option(add)
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, metavar="RELEASE_JSON", help="a ccc.release/v1 manifest")
    source.add_argument("--pcr0", metavar="HEX", help="the enclave image measurement (96 hex)")
    for index in (1, 2, 8):
        add.add_argument(f"--pcr{index}", metavar="HEX", help=f"PCR{index} (96 hex; with --pcr0)")
    add.add_argument("--id", dest="release_id", help="release id for bare PCRs (default pcr0-<12 hex>)")
    add.set_defaults(func=run_add_release)

    remove = commands.add_parser("remove-release", help="unpin a release (its results stop verifying)")
    remove.add_argument("release_id", metavar="ID")
    _trust_option(remove)
    remove.set_defaults(func=run_remove_release)

    audit = commands.add_parser("audit", help="compare what your key releases to with the pinned releases")
    _trust_option(audit)
    audit.add_argument(
        "--local-stack", type=Path, metavar="DIR", help="reach KMS through this local stack, as the trust file's tenant"
    )
    audit.add_argument("--json", action="store_true", help="the findings as JSON")
    audit.set_defaults(func=run_audit)


def _trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        type=Path,
        metavar="FILE",
        help="the trust file (default: $CCC_TRUST_FILE, else ~/.config/ccc/trust.json)",
    )


def _fail(command: str, message: object, status: int = EXIT_USAGE) -> int:
    from ccc.client.untrusted_text import printable

    print(printable(f"ccc trust {command}: {message}"), file=sys.stderr, flush=True)
    return status


def _say(text: str) -> None:
    from ccc.client.untrusted_text import printable

    print(printable(text), flush=True)


def _confirm(question: str) -> bool:
    print(question, end=" ", flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return answer.strip().lower() in {"y", "yes"}


def run_init(args: argparse.Namespace) -> int:
    from ccc.trust import TrustError, write_trust
    from ccc.trust.proposal import propose_from_cloudformation, propose_from_local_stack

    if args.out.exists() and not args.force:
        return _fail("init", f"{args.out} exists: use --force to replace it, or add-release to change it")
    try:
        if args.local_stack is not None:
            proposal = propose_from_local_stack(args.local_stack, args.tenant, key_arn=args.key_arn)
        else:
            proposal = propose_from_cloudformation(args.stack, args.tenant, region=args.region, key_arn=args.key_arn)
        trust = proposal.trust_file()
    except TrustError as exc:
        return _fail("init", exc)
    _say("proposed trust file (every value below is what you will trust; check it):")
    for line in proposal.lines():
        _say(f"  {line}")
    if not args.yes and not _confirm(f"write it to {args.out}? [y/N]"):
        return _fail("init", "not written (answer y, or pass --yes)", 1)
    try:
        write_trust(args.out, trust)
    except (TrustError, OSError) as exc:
        return _fail("init", exc)
    _say(f"wrote {args.out}; use it with --trust {args.out} or CCC_TRUST_FILE={args.out}")
    return 0


def _load(command: str, args: argparse.Namespace) -> tuple[Any, Path] | int:
    from ccc.trust import TrustError, load_trust, resolve_trust_path
    from ccc.trust.location import load_tenant_trust

    try:
        path = resolve_trust_path(args.trust)
        load_tenant_trust(path)  # the how-to when missing
        return load_trust(path), path
    except TrustError as exc:
        return _fail(command, exc)


def run_show(args: argparse.Namespace) -> int:
    loaded = _load("show", args)
    if isinstance(loaded, int):
        return loaded
    trust, path = loaded
    if args.json:
        print(json.dumps(trust.document(), indent=2, sort_keys=True), flush=True)
        return 0
    _say(f"trust file {path} ({trust.format})")
    _say(f"  tenant:   {trust.tenant}")
    _say(f"  data key: {trust.data_key_arn}")
    _say(f"  root:     {trust.attestation_root.kind}, SHA-256 {trust.attestation_root.sha256}")
    _say(f"  releases: {len(trust.releases)}")
    for release in trust.releases:
        origin = f"{release.source}, pinned {release.date}"
        if release.git_commit:
            origin += f", commit {release.git_commit[:12]}"
        _say(f"    {release.id} ({origin})")
        for name, value in sorted(release.pcrs.items()):
            _say(f"      {name} {value}")
    return 0


def _bare_pcrs(args: argparse.Namespace) -> dict[int, str]:
    pcrs = {0: args.pcr0}
    for index in (1, 2, 8):
        value = getattr(args, f"pcr{index}")
        if value is not None:
            pcrs[index] = value
    return pcrs


def run_add_release(args: argparse.Namespace) -> int:
    from ccc.release import ReleaseError, load_manifest
    from ccc.trust import TrustError, write_trust
    from ccc.trust.releases import pinned_release, release_from_manifest, with_release

    if args.manifest is not None and (args.release_id or any(getattr(args, f"pcr{i}") for i in (1, 2, 8))):
        return _fail("add-release", "--manifest takes no --id or --pcrN: the manifest names both")
    if args.pcr0 is None and any(getattr(args, f"pcr{i}") for i in (1, 2, 8)):
        return _fail("add-release", "--pcr1/--pcr2/--pcr8 need --pcr0")
    loaded = _load("add-release", args)
    if isinstance(loaded, int):
        return loaded
    trust, path = loaded
    try:
        if args.manifest is not None:
            release = release_from_manifest(load_manifest(args.manifest))
        else:
            release = pinned_release(args.release_id, _bare_pcrs(args), source="pcrs")
        write_trust(path, with_release(trust, release))
    except (TrustError, ReleaseError) as exc:
        return _fail("add-release", exc)
    _say(f"pinned release {release.id} (PCR0 {release.pcrs['PCR0'][:16]}…) in {path}")
    return 0


def run_remove_release(args: argparse.Namespace) -> int:
    from ccc.trust import TrustError, write_trust
    from ccc.trust.releases import without_release

    loaded = _load("remove-release", args)
    if isinstance(loaded, int):
        return loaded
    trust, path = loaded
    try:
        write_trust(path, without_release(trust, args.release_id))
    except TrustError as exc:
        return _fail("remove-release", exc)
    _say(f"removed release {args.release_id} from {path}; results attested by it no longer verify")
    return 0


def _kms_client(args: argparse.Namespace, trust: Any) -> Any:
    """KMS as the trust file's tenant: through a local stack's gateway, or with your AWS credentials
    in the key's own region (from the pinned ARN)."""
    import boto3

    if args.local_stack is not None:
        from ccc.local.aws_config import botocore_session
        from ccc.local.state import read_stack_info

        info = read_stack_info(args.local_stack)
        return boto3.session.Session(botocore_session=botocore_session(info, trust.tenant)).client("kms")
    region = trust.data_key_arn.split(":")[3]
    return boto3.session.Session().client("kms", region_name=region)


def run_audit(args: argparse.Namespace) -> int:
    from ccc.local.errors import LocalStackError
    from ccc.trust import TrustError
    from ccc.trust.audit import audit_releases
    from ccc.trust.key_policy_reader import key_releases

    loaded = _load("audit", args)
    if isinstance(loaded, int):
        return loaded
    trust, _path = loaded
    try:
        report = audit_releases(trust, key_releases(_kms_client(args, trust), trust.data_key_arn))
    except (TrustError, LocalStackError) as exc:
        return _fail("audit", exc)
    if args.json:
        print(
            json.dumps(
                {
                    "key_arn": report.key_arn,
                    "drift": report.drift,
                    "matched": [{"pinned": p, "key": k} for p, k in report.matched],
                    "findings": [{"severity": f.severity, "message": f.message} for f in report.findings],
                }
            ),
            flush=True,
        )
    else:
        for pinned, key in report.matched:
            _say(f"ok: pinned {pinned} is what the key releases to ({key})")
        for finding in report.findings:
            _say(f"{finding.severity}: {finding.message}")
        _say(f"{report.key_arn}: {'DRIFT between the key and your pins' if report.drift else 'no drift'}")
    return EXIT_DRIFT if report.drift else 0
