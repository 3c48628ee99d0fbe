"""`ccc attest verify`: check a Nitro attestation document from a file, as a person or a script would.

Exit status: 0 the document is authentic and meets the requested policy, 1 it is not (the
reason is printed), 2 the command line is wrong (bad flag value, unreadable file).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccc.client.untrusted_text import printable
from ccc.errors import CccError

if TYPE_CHECKING:
    from ccc_core.attestation.document import AttestationDocument

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
# A document is at most 16 KiB raw; hex doubles it. Bigger files are not documents.
MAX_INPUT_BYTES = 64 * 1024
_HEX = re.compile(rb"(?:0x)?[0-9a-fA-F]+")
_BASE64 = re.compile(rb"[A-Za-z0-9+/\-_]+={0,2}")
_WHITESPACE = re.compile(rb"\s+")


class UsageError(CccError):
    """A command-line value is wrong; reported with exit status 2."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    attest = subparsers.add_parser("attest", help="Nitro attestation documents")
    commands = attest.add_subparsers(dest="attest_command", metavar="SUBCOMMAND")
    commands.required = True
    verify = commands.add_parser(
        "verify",
        help="verify an attestation document (chain to the AWS Nitro root, ES384 signature, policy)",
        description="Verify a Nitro attestation document. DOC is a file holding the document as raw "
        "CBOR (COSE_Sign1, tagged or not), base64 or hex; the encoding is detected. Exit 0 if valid, "
        "1 if not, 2 on bad arguments.",
    )
    verify.add_argument(
        "doc", type=Path, metavar="DOC", help="file with the document (raw CBOR, base64 or hex); - for stdin"
    )
    verify.add_argument(
        "--root", type=Path, metavar="PEM", help="trusted root certificate (PEM or DER); default: pinned AWS Root-G1"
    )
    when = verify.add_mutually_exclusive_group()
    when.add_argument("--at", metavar="ISO8601", help="verification time (UTC if no offset given); default: now")
    when.add_argument(
        "--at-doc-time", action="store_true", help="verify as of the document's own timestamp (archived documents)"
    )
    verify.add_argument(
        "--pcr", action="append", default=[], metavar="N=HEX", help="expected PCR value (repeatable), e.g. 0=abcd..."
    )
    verify.add_argument("--nonce", metavar="HEX", help="the nonce the document must carry")
    verify.add_argument("--user-data", metavar="HEX", help="the user_data the document must carry")
    verify.add_argument("--max-age", type=float, metavar="SECONDS", help="refuse documents older than this")
    limits = verify.add_mutually_exclusive_group()
    limits.add_argument(
        "--max-field-bytes", type=int, default=None, metavar="N",
        help="largest user_data/nonce accepted (default 1024, what /dev/nsm accepts and genuine documents carry)",
    )
    limits.add_argument(
        "--strict", action="store_true",
        help="apply AWS's documented 512-byte limit to user_data/nonce (genuine documents may exceed it)",
    )
    verify.add_argument("--allow-debug", action="store_true", help="accept debug-mode documents (PCR0/1/2 zero)")
    verify.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    verify.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from ccc.attestation import AttestationPolicy, verify_document
    from ccc.attestation.roots import aws_nitro_root_der, root_der_from_bytes
    from ccc_core.attestation.document import parse_document
    from ccc_core.attestation.errors import AttestationError

    try:
        data = read_document_file(args.doc)
        root_der = root_der_from_bytes(_read_file(args.root, "root")) if args.root else None
        policy = AttestationPolicy(
            expected_pcrs=parse_pcr_options(args.pcr),
            nonce=_hex_option(args.nonce, "--nonce"),
            user_data=_hex_option(args.user_data, "--user-data"),
            max_age=_max_age(args.max_age),
            allow_debug=args.allow_debug,
        )
        if args.max_field_bytes is not None:
            policy = replace(policy, max_user_data=args.max_field_bytes, max_nonce=args.max_field_bytes)
        if args.strict:
            policy = policy.strict()
        at = parse_time(args.at) if args.at else None
    except (UsageError, ValueError) as exc:  # AttestationError from the root file is a ValueError too
        print(f"ccc attest verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.at_doc_time:
            at = parse_document(data).timestamp
        verified_at = at or datetime.now(UTC)
        document = verify_document(data, root_der=root_der, at=verified_at, policy=policy)
    except AttestationError as exc:
        _report_invalid(exc.reason, as_json=args.json)
        return EXIT_INVALID
    effective_root = root_der if root_der is not None else aws_nitro_root_der()
    _report_valid(document, verified_at, hashlib.sha256(effective_root).hexdigest(), as_json=args.json)
    return EXIT_VALID


def read_document_file(path: Path) -> bytes:
    return decode_document_text(_read_file(path, "document"))


def _read_file(path: Path, what: str) -> bytes:
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with path.open("rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc.strerror}") from exc
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{what} file {path} is larger than {MAX_INPUT_BYTES} bytes")
    return data


def decode_document_text(data: bytes) -> bytes:
    """Raw CBOR as is; otherwise hex, then base64 (standard or URL-safe), whitespace ignored.

    Raw documents start with 0x84 (untagged array) or 0xd2 (tag 18) and are never pure ASCII,
    so the detection cannot mistake one for text.
    """
    compact = _WHITESPACE.sub(b"", data)
    if not compact or not compact.isascii():
        return data
    if _HEX.fullmatch(compact):
        digits = compact[2:] if compact[:2].lower() == b"0x" else compact
        if len(digits) % 2 == 0:
            return binascii.unhexlify(digits)
    if _BASE64.fullmatch(compact):
        padded = compact + b"=" * (-len(compact) % 4)
        try:
            if b"-" in padded or b"_" in padded:
                return base64.urlsafe_b64decode(padded)
            return base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            pass
    return data


def parse_pcr_options(options: list[str]) -> dict[int, bytes]:
    pcrs: dict[int, bytes] = {}
    for option in options:
        index_text, separator, value_text = option.partition("=")
        if not separator or not index_text.strip().isdigit():
            raise UsageError(f"--pcr {option!r} is not N=HEX")
        index = int(index_text)
        if index in pcrs:
            raise UsageError(f"--pcr {index} given twice")
        value = _hex_option(value_text, f"--pcr {index}")
        if value is None or len(value) != 48 or not 0 <= index <= 31:
            raise UsageError(f"--pcr {index}: need an index 0..31 and 48 bytes (96 hex digits)")
        pcrs[index] = value
    return pcrs


def _hex_option(text: str | None, flag: str) -> bytes | None:
    if text is None:
        return None
    cleaned = text.strip().removeprefix("0x")
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise UsageError(f"{flag}: {text!r} is not hex") from exc


def _max_age(seconds: float | None) -> timedelta | None:
    if seconds is None:
        return None
    if not seconds > 0 or seconds > 10 * 365 * 86400:
        raise UsageError("--max-age must be a positive number of seconds")
    return timedelta(seconds=seconds)


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--at {text!r} is not an ISO 8601 time") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _report_invalid(reason: str, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"valid": False, "reason": reason}))
    else:
        print(f"INVALID attestation document: {printable(reason)}")


def _optional_hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _report_valid(document: AttestationDocument, at: datetime, root_sha256: str, *, as_json: bool) -> None:
    summary: dict[str, Any] = {
        "valid": True,
        "module_id": document.module_id,
        "timestamp": document.timestamp.isoformat(timespec="milliseconds"),
        "verified_at": at.isoformat(),
        "root_sha256": root_sha256,
        "debug": document.is_debug,
        "pcrs": {str(index): value.hex() for index, value in sorted(document.pcrs.items())},
        "public_key_sha256": (
            None if document.public_key is None else hashlib.sha256(document.public_key).hexdigest()
        ),
        "user_data": _optional_hex(document.user_data),
        "nonce": _optional_hex(document.nonce),
    }
    if as_json:
        print(json.dumps(summary))
        return
    print("VALID attestation document")
    for key in ("module_id", "timestamp", "verified_at", "root_sha256", "debug", "public_key_sha256",
                "user_data", "nonce"):
        # module_id (and a reason) are written by whoever made the document: one visible line each.
        print(f"  {key}: {printable(summary[key]) if summary[key] is not None else '(none)'}")
    zero = "0" * 96
    for index, value in summary["pcrs"].items():
        print(f"  PCR{index}: {'(zero)' if value == zero else value}")
