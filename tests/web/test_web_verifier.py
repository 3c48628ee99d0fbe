"""The page's verifier (web/src/verify, TypeScript) under node: the real AWS vectors, the trust-file
reader, and a differential test against the Python client's verifier on result attestations made by
the simulated NSM (the same verdict, verified with the same input digest or refused with the same
reason code). `make setup` installs node's packages (web/node_modules) and builds the tests."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ccc.client.errors import VerificationError
from ccc.client.provenance import verify_result_attestation
from ccc.trust.document import TrustFile, root_from_der, trust_bytes
from ccc.trust.releases import pinned_release
from ccc_core.result_binding import result_user_data
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm
from tests.web.web_build import run_node_tests

WEB = Path(__file__).resolve().parents[2] / "web"
SIGNED_AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
NOW = SIGNED_AT + timedelta(minutes=1)
PCRS = {0: bytes.fromhex("11" * 48), 1: bytes.fromhex("22" * 48), 2: bytes.fromhex("33" * 48)}
OTHER_PCR0 = bytes.fromhex("44" * 48)
INPUT = b"the ESDK input message the tenant uploaded"
RESULT = b"an ESDK result message"


def _trust(root_der: bytes, releases: list[dict[int, bytes]]) -> TrustFile:
    pinned = [
        pinned_release(None, {i: v.hex() for i, v in pcrs.items()}, source="pcrs", now=SIGNED_AT) for pcrs in releases
    ]
    return TrustFile(
        format="ccc.trust/v1",
        tenant="tenant-a",
        data_key_arn="arn:aws:kms:us-east-1:123456789013:key/0b7a1c2d-aaaa-bbbb-cccc-123456789abc",
        attestation_root=root_from_der(root_der, kind="local"),
        releases=pinned,
    )


def _python_verdict(case: dict[str, Any], trust: TrustFile) -> dict[str, Any]:
    """What the Python client decides (its job_runner picks releases by PCR0 the same way)."""
    if case["expected_input_sha256"] is None:
        return {"verified": False, "reason": "input_unknown"}
    document = bytes.fromhex(case["document_hex"])
    last: VerificationError | None = None
    for release in trust.releases:
        try:
            verified = verify_result_attestation(
                document,
                bytes.fromhex(case["result_hex"]),
                root_der=trust.attestation_root.der,
                expected_pcrs=release.expected_pcrs(),
                expected_input_sha256=case["expected_input_sha256"],
                now=datetime.fromtimestamp(case["now_ms"] / 1000, UTC),
            )
        except VerificationError as exc:
            last = exc
            continue
        return {"verified": True, "input_sha256": verified.input_sha256, "release": release.id}
    assert last is not None
    return {"verified": False, "reason": last.reason}


def _cases(tmp_path: Path) -> list[dict[str, Any]]:
    ca = LocalNitroCA.create(tmp_path / "ca", now=SIGNED_AT - timedelta(days=1))
    other_ca = LocalNitroCA.create(tmp_path / "other-ca", now=SIGNED_AT - timedelta(days=1))
    input_sha = hashlib.sha256(INPUT).hexdigest()

    def attest(*, pcrs=PCRS, source=INPUT, result=RESULT, at=SIGNED_AT, user_data=None, authority=ca) -> bytes:
        nsm = SimulatedNsm(authority, pcrs, clock=lambda: at)
        return bytes(nsm.attest(user_data=user_data if user_data is not None else result_user_data(source, result)))

    good = attest()
    tampered = bytearray(good)
    tampered[len(tampered) // 2] ^= 0x01
    pinned = _trust(ca.root_der, [PCRS])
    rows: list[tuple[str, bytes, bytes, str | None, TrustFile, str]] = [
        ("verified", good, RESULT, input_sha, pinned, "verified"),
        (
            "verified among two pinned releases",
            good,
            RESULT,
            input_sha,
            _trust(ca.root_der, [{0: OTHER_PCR0}, PCRS]),
            "verified",
        ),
        ("trust pins another PCR0", good, RESULT, input_sha, _trust(ca.root_der, [{0: OTHER_PCR0}]), "pcr_mismatch"),
        (
            "same PCR0, another PCR1",
            good,
            RESULT,
            input_sha,
            _trust(ca.root_der, [{0: PCRS[0], 1: OTHER_PCR0}]),
            "pcr_mismatch",
        ),
        (
            "computed from someone else's ciphertext",
            attest(source=b"another principal's ciphertext"),
            RESULT,
            input_sha,
            pinned,
            "input_mismatch",
        ),
        ("names another result", good, b"a different result ciphertext", input_sha, pinned, "result_mismatch"),
        (
            "user_data is not a result binding",
            attest(user_data=hashlib.sha256(RESULT).digest()),
            RESULT,
            input_sha,
            pinned,
            "binding_unknown",
        ),
        ("signed in the future", attest(at=NOW + timedelta(hours=1)), RESULT, input_sha, pinned, "attestation_invalid"),
        ("signed under another CA", attest(authority=other_ca), RESULT, input_sha, pinned, "attestation_invalid"),
        ("a flipped bit", bytes(tampered), RESULT, input_sha, pinned, "attestation_invalid"),
        ("no upload record", good, RESULT, None, pinned, "input_unknown"),
    ]
    cases = []
    for name, document, result, expected_input, trust, expected in rows:
        case: dict[str, Any] = {
            "name": name,
            "document_hex": document.hex(),
            "result_hex": result.hex(),
            "expected_input_sha256": expected_input,
            "now_ms": int(NOW.timestamp() * 1000),
            "trust": trust_bytes(trust).decode(),
        }
        case["python"] = _python_verdict(case, trust)
        # The Python verdict is the reference; check it is the one this case is about.
        assert (case["python"].get("reason") or "verified") == expected, (name, case["python"])
        cases.append(case)
    return cases


def test_the_page_verifier_passes_its_node_tests_and_agrees_with_the_python_client(tmp_path: Path) -> None:
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(_cases(tmp_path)))
    stdout = run_node_tests("dist-test/", {"CCC_WEB_BINDING_CASES": str(cases_file)})
    assert "# skipped 0" in stdout and "# fail 0" in stdout
    assert "same verdict as the Python client: verified among two pinned releases" in stdout
