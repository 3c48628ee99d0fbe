"""`ccc key-policy lint`: check a key policy, or every KMS key in a CloudFormation template.

Why a command: the key policy is the security boundary, and CDK may grow statements of its own
(e.g. `grant*` helpers). Running the linter on the synthesised template in CI catches a policy
that would release keys without attestation before it is ever deployed.

    ccc key-policy lint cdk.out/CccDev.template.json --pcr 0=<hex> [--pcr 1=<hex>] [--json]

Exit status: 0 clean, 1 findings, 2 unreadable input (one line on stderr, never a traceback:
too large, not JSON, nested too deeply, no key policy).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# CloudFormation accepts templates of at most 1 MB (from S3); anything much larger is not one, and
# reading it whole would only cost memory.
MAX_INPUT_BYTES = 4 * 1024 * 1024


def _pcr(text: str) -> tuple[int, str]:
    index, sep, value = text.partition("=")
    if not sep or not index.isdigit():
        raise argparse.ArgumentTypeError(f"expected N=HEX, got {text!r}")
    return int(index), value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("key-policy", help="check KMS key policies for the CCC properties")
    actions = parser.add_subparsers(dest="key_policy_command", metavar="ACTION")
    actions.required = True
    lint = actions.add_parser("lint", help="lint a key policy JSON or a CloudFormation template")
    lint.add_argument("file", type=Path, help="key policy JSON, or a template with AWS::KMS::Key resources")
    lint.add_argument("--pcr", type=_pcr, action="append", default=[], metavar="N=HEX", help="expected PCR value")
    lint.add_argument("--json", action="store_true", help="print findings as JSON")
    lint.set_defaults(func=_lint)


def policies_in(document: Any) -> dict[str, Any]:
    """The key policies in `document`: itself if it is a policy, else each AWS::KMS::Key's KeyPolicy."""
    if isinstance(document, dict) and "Statement" in document:
        return {"policy": document}
    resources = document.get("Resources", {}) if isinstance(document, dict) else {}
    found = {}
    for name, resource in resources.items() if isinstance(resources, dict) else []:
        if isinstance(resource, dict) and resource.get("Type") == "AWS::KMS::Key":
            properties = resource.get("Properties")  # null or a string: no policy (the linter says so)
            found[name] = properties.get("KeyPolicy") if isinstance(properties, dict) else None
    return found


def _lint(args: argparse.Namespace) -> int:
    try:
        with args.file.open("rb") as source:
            raw = source.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    if len(raw) > MAX_INPUT_BYTES:
        print(f"cannot read {args.file}: larger than {MAX_INPUT_BYTES} bytes, so not a template", file=sys.stderr)
        return 2
    try:
        document = json.loads(raw)
    except RecursionError:
        print(f"cannot read {args.file}: JSON nested too deeply", file=sys.stderr)
        return 2
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        looks_like_json = raw.lstrip()[:1] in (b"{", b"[")
        hint = "" if looks_like_json else " (a YAML template? lint the JSON that `cdk synth` writes to cdk.out/)"
        print(f"cannot read {args.file}: not JSON{hint}: {type(exc).__name__}", file=sys.stderr)
        return 2
    try:
        return _report(args, policies_in(document))
    except RecursionError:  # a policy nested too deeply for the linter's walk
        print(f"cannot lint {args.file}: a key policy is nested too deeply", file=sys.stderr)
        return 2


def _report(args: argparse.Namespace, policies: dict[str, Any]) -> int:
    from ccc_common.domain.key_policy import lint_key_policy

    if not policies:
        print(f"{args.file} holds no key policy and no AWS::KMS::Key resource", file=sys.stderr)
        return 2
    expected = dict(args.pcr) or None
    report = {name: lint_key_policy(policy, expected_pcrs=expected) for name, policy in policies.items()}
    if args.json:
        print(
            json.dumps(
                {
                    name: [{"rule": f.rule, "sid": f.sid, "message": f.message} for f in findings]
                    for name, findings in report.items()
                },
                indent=2,
            )
        )
    else:
        for name, findings in report.items():
            print(f"{name}: {'clean' if not findings else f'{len(findings)} finding(s)'}")
            for finding in findings:
                print(f"  {finding}")
    return 1 if any(report.values()) else 0
