"""`ccc key-policy lint`: check a key policy, or every KMS key in a CloudFormation template.

Why a command: the key policy is the security boundary, and CDK may grow statements of its own
(e.g. `grant*` helpers). Running the linter on the synthesised template in CI catches a policy
that would release keys without attestation before it is ever deployed.

    ccc key-policy lint cdk.out/CccDev.template.json --pcr 0=<hex> [--pcr 1=<hex>] [--key ID] [--json]

Which keys: a bare policy document is linted as is. In a template, `--key ID` (repeatable) names
the keys; without it, the keys tagged `ccc:data-key` (`tenant:<name>` for a tenant-owned key,
whose stricter rules then apply, `operator-demo` for the operator-run demo key); a template with a
single untagged key lints that one. Other keys (e.g. the S3-only storage key) are not data keys:
the data-key rules would flag their ordinary IAM delegation; tagged `ccc:data-key=none`, they are
skipped, and a template whose keys are all so tagged has nothing to lint (exit 0).

Exit status: 0 clean, 1 findings, 2 unreadable input or no key to lint (one line on stderr, never
a traceback: too large, not JSON, nested too deeply, no key policy, an unknown --key).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccc.errors import CccError

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
    lint.add_argument("--key", action="append", default=[], metavar="ID", help="logical id of a key to lint")
    lint.add_argument("--json", action="store_true", help="print findings as JSON")
    lint.set_defaults(func=_lint)


DATA_KEY_TAG = "ccc:data-key"  # value: "tenant:<name>" or "operator-demo" (cdk/keys.py, cdk/tenant_stack.py)
TENANT_KEY_TAG_PREFIX = "tenant:"
NOT_A_DATA_KEY = "none"  # e.g. the S3/SNS storage key: tagged so, it is never linted as a data key


class KeySelectionError(CccError, ValueError):
    """No key, or an unknown one, was chosen for linting (one line, exit 2)."""


@dataclass(frozen=True)
class KeyToLint:
    policy: Any
    tenant_key: bool | None  # None: decide by the policy's Id


def _data_key_tag(properties: Any) -> str | None:
    tags = properties.get("Tags") if isinstance(properties, dict) else None
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, dict) and tag.get("Key") == DATA_KEY_TAG and isinstance(tag.get("Value"), str):
            return str(tag["Value"])
    return None


def policies_in(document: Any, keys: list[str] | None = None) -> dict[str, KeyToLint] | None:
    """The key policies to lint in `document`: itself if it is a policy, else the chosen keys'.

    None: no policy and no key at all; empty: keys, but every one tagged as not a data key."""
    if isinstance(document, dict) and "Statement" in document:
        return {"policy": KeyToLint(document, None)}
    resources = document.get("Resources", {}) if isinstance(document, dict) else {}
    all_keys: dict[str, Any] = {}
    for name, resource in resources.items() if isinstance(resources, dict) else []:
        if isinstance(resource, dict) and resource.get("Type") == "AWS::KMS::Key":
            all_keys[name] = resource.get("Properties")  # null or a string: no policy (the linter says so)
    if not all_keys:
        return None
    if keys:
        unknown = sorted(set(keys) - set(all_keys))
        if unknown:
            raise KeySelectionError(f"no AWS::KMS::Key {', '.join(unknown)} (keys: {', '.join(sorted(all_keys))})")
        chosen = {name: all_keys[name] for name in keys}
    else:
        tags = {name: _data_key_tag(props) for name, props in all_keys.items()}
        chosen = {name: all_keys[name] for name, tag in tags.items() if tag not in (None, NOT_A_DATA_KEY)}
        untagged = [name for name, tag in tags.items() if tag is None]
        if not chosen and len(untagged) == 1 and len(all_keys) == 1:
            chosen = all_keys
        elif not chosen and untagged:
            raise KeySelectionError(
                f"{len(all_keys)} KMS keys and none tagged {DATA_KEY_TAG}: name the data key(s) with --key "
                f"({', '.join(sorted(all_keys))})"
            )
    found = {}
    for name, properties in chosen.items():
        tag = _data_key_tag(properties)
        tenant_key = None if tag is None else tag.startswith(TENANT_KEY_TAG_PREFIX)
        policy = properties.get("KeyPolicy") if isinstance(properties, dict) else None
        found[name] = KeyToLint(policy, tenant_key)
    return found


def _lint(args: argparse.Namespace) -> int:
    try:
        with args.file.open("rb") as source:
            raw = source.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        print(f"ccc key-policy lint: cannot read {args.file}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    if len(raw) > MAX_INPUT_BYTES:
        print(
            f"ccc key-policy lint: cannot read {args.file}: larger than {MAX_INPUT_BYTES} bytes, so not a template",
            file=sys.stderr,
        )
        return 2
    try:
        document = json.loads(raw)
    except RecursionError:
        print(f"ccc key-policy lint: cannot read {args.file}: JSON nested too deeply", file=sys.stderr)
        return 2
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        looks_like_json = raw.lstrip()[:1] in (b"{", b"[")
        hint = "" if looks_like_json else " (a YAML template? lint the JSON that `cdk synth` writes to cdk.out/)"
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else " (not UTF-8)"
        print(f"ccc key-policy lint: cannot read {args.file}: not JSON{where}{hint}", file=sys.stderr)
        return 2
    try:
        return _report(args, policies_in(document, args.key))
    except KeySelectionError as exc:
        print(f"ccc key-policy lint: cannot lint {args.file}: {exc}", file=sys.stderr)
        return 2
    except RecursionError:  # a policy nested too deeply for the linter's walk
        print(f"ccc key-policy lint: cannot lint {args.file}: a key policy is nested too deeply", file=sys.stderr)
        return 2


def _report(args: argparse.Namespace, policies: dict[str, KeyToLint] | None) -> int:
    from ccc_common.domain.key_policy import lint_key_policy

    if policies is None:
        print(f"ccc key-policy lint: {args.file} holds no key policy and no AWS::KMS::Key resource", file=sys.stderr)
        return 2
    if not policies:
        message = f"{args.file}: no data key (every KMS key is tagged {DATA_KEY_TAG}={NOT_A_DATA_KEY})"
        print(json.dumps({}) if args.json else message)
        return 0
    expected = dict(args.pcr) or None
    report = {
        name: lint_key_policy(key.policy, expected_pcrs=expected, tenant_key=key.tenant_key)
        for name, key in policies.items()
    }
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
