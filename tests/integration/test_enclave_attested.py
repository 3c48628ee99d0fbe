"""The enclave server for real: moto + the attested-KMS gateway + SimulatedNsm + an ONNX detector.

A tenant encrypts a real PNG with the standard ESDK provider (through the gateway); the enclave
server (in a thread, over TCP) decrypts it with attested KMS under a key policy pinned to the
enclave's measurement, counts, encrypts the result, and attests it. The tenant then verifies the
attestation (chain to the local CA, PCRs, user_data binds the result to its input) and decrypts the count.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aws_encryption_sdk
import boto3
import botocore.session
import numpy as np
import pytest
from aws_encryption_sdk.identifiers import CommitmentPolicy
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from PIL import Image

from ccc.attestation import AttestationPolicy, verify_document
from ccc.evaluation.testing import constant_detector, nanodet_outputs
from ccc.local.iam_users import LocalIdentity, default_identities
from ccc.local.kms.gateway import KmsGateway
from ccc_common.domain.key_policy import KeyPolicySpec, build_key_policy
from ccc_core.identity import JobRef
from ccc_core.result_binding import result_user_data
from ccc_enclave.attester import NsmAttester, enclave_pcrs
from ccc_enclave.counting import load_spec_file
from ccc_enclave.esdk_crypto import AttestedEsdkCrypto
from ccc_enclave.kms.recipient import EnclaveKeyPair
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm
from ccc_enclave.onnx_counter import OnnxCounter
from ccc_enclave.pipeline import JobProcessor
from ccc_enclave.protocol.health_messages import HealthReply, HealthRequest
from ccc_enclave.protocol.job_messages import Credentials, JobFailure, JobRequest, JobSpec, JobSuccess, KmsTarget
from ccc_enclave.protocol.messages import Message
from ccc_enclave.server import EnclaveServer, ServerSettings
from ccc_enclave.transport import Channel, listen

ACCOUNT = "111122223333"
REGION = "eu-west-1"
TENANT = "tenant-a"
CAT = 15
# Two cat boxes expressible at stride 8 in a 64x64 input (see ccc.evaluation.testing.nanodet_outputs).
CAT_BOXES = [(4, 4, 20, 20, CAT, 0.9), (36, 36, 52, 52, CAT, 0.8)]


def write_detector(model_dir: Path) -> Path:
    """A real ONNX graph (constant NanoDet-layout outputs: two cats) plus its spec file."""
    model_dir.mkdir(parents=True, exist_ok=True)
    outputs = nanodet_outputs(CAT_BOXES, input_size=(64, 64))
    (model_dir / "detector.onnx").write_bytes(constant_detector(outputs, input_shape=(1, 3, 64, 64)))
    # A constant detector sees the same boxes in every view, so tiling is off (whole image only).
    spec = {"name": "test-detector", "model_path": "detector.onnx", "input_size": 64, "decoder": "nanodet",
            "num_classes": 80, "cat_class": CAT, "tile_grid": 1}
    path = model_dir / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def png_image(width: int = 96, height: int = 64) -> bytes:
    rng = np.random.default_rng(7)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class AttestedStack:
    moto_url: str
    gateway: KmsGateway
    identities: dict[str, LocalIdentity]
    ca: LocalNitroCA
    ca_dir: Path
    key_arn: str
    pcrs: dict[int, bytes]
    spec_path: Path

    def tenant_provider(self, name: str = TENANT) -> aws_encryption_sdk.StrictAwsKmsMasterKeyProvider:
        session = botocore.session.Session()
        identity = self.identities[name]
        session.set_credentials(identity.access_key_id, identity.secret_access_key)
        return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[self.key_arn], botocore_session=session)

    def encrypt(self, data: bytes, context: dict[str, str]) -> bytes:
        ciphertext, _ = esdk().encrypt(source=data, key_provider=self.tenant_provider(), encryption_context=context)
        return bytes(ciphertext)

    def decrypt_result(self, ciphertext: bytes) -> tuple[dict[str, Any], dict[str, str]]:
        plaintext, header = esdk().decrypt(source=ciphertext, key_provider=self.tenant_provider())
        return json.loads(plaintext), dict(header.encryption_context)

    def parent_credentials(self) -> Credentials:
        parent = self.identities["parent"]
        return Credentials(access_key_id=parent.access_key_id, secret_access_key=parent.secret_access_key)

    def kms_target(self) -> KmsTarget:
        return KmsTarget(region=REGION, endpoint_url=self.gateway.url)


def esdk() -> aws_encryption_sdk.EncryptionSDKClient:
    return aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


@pytest.fixture(scope="module")
def attested_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AttestedStack]:
    saved = os.environ.get("AWS_ENDPOINT_URL_KMS")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    identities = default_identities(ACCOUNT)
    ca_dir = tmp_path_factory.mktemp("ca") / "ca"
    ca = LocalNitroCA.create(ca_dir)
    spec_path = write_detector(tmp_path_factory.mktemp("model"))
    pcrs = enclave_pcrs(spec_path.parent / "detector.onnx")
    gateway = KmsGateway(identities, ca.root_der).start()
    os.environ["AWS_ENDPOINT_URL_KMS"] = gateway.url  # the tenant's standard ESDK provider goes through it
    try:
        policy = build_key_policy(KeyPolicySpec(
            account_id=ACCOUNT,
            admin_principals=(identities["admin"].principal_arn,),
            tenant_principals={t: (identities[t].principal_arn,) for t in ("tenant-a", "tenant-b")},
            parent_role_arns=(identities["parent"].principal_arn,),
            pcrs={i: v.hex() for i, v in pcrs.items()},
        ))
        admin = boto3.client("kms", endpoint_url=gateway.url, region_name=REGION,
                             aws_access_key_id=identities["admin"].access_key_id,
                             aws_secret_access_key=identities["admin"].secret_access_key)
        key_arn = admin.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
        yield AttestedStack(moto_url, gateway, identities, ca, ca_dir, key_arn, pcrs, spec_path)
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL_KMS", None)
        else:
            os.environ["AWS_ENDPOINT_URL_KMS"] = saved
        gateway.stop()
        moto.stop()


@dataclass
class RunningEnclave:
    server: EnclaveServer
    thread: threading.Thread

    @property
    def uri(self) -> str:
        return self.server.listener.endpoint.uri

    def call(self, message: Message, timeout: float = 60) -> Message:
        with Channel.connect(self.uri, timeout=5) as channel:
            channel.send(message, timeout=timeout)
            return channel.receive(timeout=timeout)


def start_enclave(stack: AttestedStack, pcrs: dict[int, bytes] | None = None) -> RunningEnclave:
    nsm = SimulatedNsm(stack.ca, pcrs or stack.pcrs)
    keypair = EnclaveKeyPair.generate()
    counter = OnnxCounter(load_spec_file(stack.spec_path))
    attester = NsmAttester(nsm, keypair.public_key_der)
    crypto = AttestedEsdkCrypto(nsm, keypair, kms_endpoint_url=stack.gateway.url)
    server = EnclaveServer(
        listen("tcp://127.0.0.1:0"), JobProcessor(crypto, counter, attester),
        model_name=counter.model_name, model_sha256=counter.model_sha256, pcr0_hex=attester.pcr0_hex,
        settings=ServerSettings(concurrency=2, accept_poll_s=0.05),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return RunningEnclave(server, thread)


@pytest.fixture(scope="module")
def enclave(attested_stack: AttestedStack) -> Iterator[RunningEnclave]:
    running = start_enclave(attested_stack)
    yield running
    running.server.stop()
    running.thread.join(30)


def job(stack: AttestedStack, ciphertext: bytes, ref: JobRef) -> JobRequest:
    return JobRequest(
        request_id=os.urandom(8).hex(), job=JobSpec(job_id=ref.job_id, tenant=ref.tenant), ciphertext=ciphertext,
        credentials=stack.parent_credentials(), kms=stack.kms_target(),
    )


def new_ref() -> JobRef:
    return JobRef(tenant=TENANT, job_id=os.urandom(16).hex())


def test_encrypted_image_is_counted_and_the_result_verifies_and_decrypts(
    attested_stack: AttestedStack, enclave: RunningEnclave
) -> None:
    ref = new_ref()
    ciphertext = attested_stack.encrypt(png_image(), ref.input_context())
    reply = enclave.call(job(attested_stack, ciphertext, ref))
    assert isinstance(reply, JobSuccess), reply

    document = verify_document(
        reply.attestation_document, root_der=attested_stack.ca.root_der, at=datetime.now(UTC),
        policy=AttestationPolicy(expected_pcrs=attested_stack.pcrs,
                                 user_data=result_user_data(ciphertext, reply.result_ciphertext),
                                 max_age=timedelta(minutes=5)),
    )
    assert document.public_key is not None  # the enclave's boot key rides along
    assert reply.pcr0_hex == attested_stack.pcrs[0].hex()

    result, context = attested_stack.decrypt_result(reply.result_ciphertext)
    assert context["ccc:kind"] == "result" and context["ccc:job"] == ref.job_id and context["ccc:tenant"] == TENANT
    assert result["cats"] == 2 and result["job_id"] == ref.job_id and result["tenant"] == TENANT
    assert result["input_sha256"] == hashlib.sha256(ciphertext).hexdigest()
    assert result["model"]["sha256"] == reply.model_sha256
    assert len(result["detections"]) == 2
    for value in (reply.metrics.decrypt_ms, reply.metrics.infer_ms, reply.metrics.encrypt_ms, reply.metrics.attest_ms):
        assert value > 0


def test_input_cut_from_another_job_is_refused(attested_stack: AttestedStack, enclave: RunningEnclave) -> None:
    victim, claimed = new_ref(), new_ref()
    ciphertext = attested_stack.encrypt(png_image(), victim.input_context())
    reply = enclave.call(job(attested_stack, ciphertext, claimed))
    assert isinstance(reply, JobFailure)
    assert reply.error.code == "context_mismatch" and reply.error.retryable is False


def test_a_result_pasted_back_as_input_is_refused(attested_stack: AttestedStack, enclave: RunningEnclave) -> None:
    ref = new_ref()
    first = enclave.call(job(attested_stack, attested_stack.encrypt(png_image(), ref.input_context()), ref))
    assert isinstance(first, JobSuccess)
    reply = enclave.call(job(attested_stack, first.result_ciphertext, ref))
    assert isinstance(reply, JobFailure) and reply.error.code == "context_mismatch"


def test_tampered_ciphertext_and_non_images_fail_permanently(
    attested_stack: AttestedStack, enclave: RunningEnclave
) -> None:
    ref = new_ref()
    ciphertext = bytearray(attested_stack.encrypt(png_image(), ref.input_context()))
    ciphertext[-200] ^= 0x01  # inside the body/signature, after the header
    reply = enclave.call(job(attested_stack, bytes(ciphertext), ref))
    assert isinstance(reply, JobFailure) and reply.error.code == "decrypt_failed" and not reply.error.retryable

    reply = enclave.call(job(attested_stack, b"not an ESDK message at all", ref))
    assert isinstance(reply, JobFailure) and reply.error.code == "decrypt_failed"

    ref = new_ref()
    reply = enclave.call(job(attested_stack, attested_stack.encrypt(b"GIF89a-nope", ref.input_context()), ref))
    assert isinstance(reply, JobFailure) and reply.error.code == "bad_image" and not reply.error.retryable
    health = enclave.call(HealthRequest(request_id="after-failures"))
    assert isinstance(health, HealthReply) and health.status.jobs_failed >= 3


def test_an_enclave_with_other_measurements_is_denied_by_the_key_policy(attested_stack: AttestedStack) -> None:
    changed = dict(attested_stack.pcrs)
    changed[0] = hashlib.sha384(b"a modified enclave image").digest()
    impostor = start_enclave(attested_stack, pcrs=changed)
    try:
        ref = new_ref()
        reply = impostor.call(job(attested_stack, attested_stack.encrypt(png_image(), ref.input_context()), ref))
        assert isinstance(reply, JobFailure)
        assert reply.error.code == "kms_access_denied" and reply.error.retryable is True
    finally:
        impostor.server.stop()
        impostor.thread.join(30)


def test_wrong_parent_credentials_are_reported_retryable(
    attested_stack: AttestedStack, enclave: RunningEnclave
) -> None:
    ref = new_ref()
    request = job(attested_stack, attested_stack.encrypt(png_image(), ref.input_context()), ref)
    bad = JobRequest(request_id="bad-creds", job=request.job, ciphertext=request.ciphertext,
                     credentials=Credentials(access_key_id="AKIDUNKNOWN000000000", secret_access_key="nope"),
                     kms=request.kms)
    reply = enclave.call(bad)
    assert isinstance(reply, JobFailure) and reply.error.retryable is True
    assert reply.error.code in {"credentials_expired", "kms_access_denied"}


def test_real_model_counts_the_cat_in_chelsea_through_the_attested_path(attested_stack: AttestedStack) -> None:
    from ccc_enclave.counting import CatCounter, default_model_dir, load_model_card

    card = default_model_dir() / "nanodet-g.json"
    if not card.is_file():
        pytest.skip("real model not built (make model)")
    skimage_data = pytest.importorskip("skimage.data")
    buffer = io.BytesIO()
    Image.fromarray(skimage_data.chelsea()).save(buffer, format="JPEG", quality=92)
    image = buffer.getvalue()
    spec = load_model_card(card)
    expected = CatCounter(spec).count_bytes(image).cats  # what `ccc count` says for the same bytes

    # This enclave runs another model, so it has its own measurement and needs a key pinned to it.
    pcrs = enclave_pcrs(Path(spec.model_path))
    admin = attested_stack.identities["admin"]
    policy = build_key_policy(KeyPolicySpec(
        account_id=ACCOUNT, admin_principals=(admin.principal_arn,),
        tenant_principals={TENANT: (attested_stack.identities[TENANT].principal_arn,)},
        parent_role_arns=(attested_stack.identities["parent"].principal_arn,),
        pcrs={i: v.hex() for i, v in pcrs.items()},
    ))
    kms = boto3.client("kms", endpoint_url=attested_stack.gateway.url, region_name=REGION,
                       aws_access_key_id=admin.access_key_id, aws_secret_access_key=admin.secret_access_key)
    key_arn = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    stack = AttestedStack(attested_stack.moto_url, attested_stack.gateway, attested_stack.identities,
                          attested_stack.ca, attested_stack.ca_dir, key_arn, pcrs, attested_stack.spec_path)

    nsm = SimulatedNsm(stack.ca, pcrs)
    keypair = EnclaveKeyPair.generate()
    counter = OnnxCounter(spec)
    attester = NsmAttester(nsm, keypair.public_key_der)
    processor = JobProcessor(AttestedEsdkCrypto(nsm, keypair, kms_endpoint_url=stack.gateway.url), counter,
                             attester)
    server = EnclaveServer(listen("tcp://127.0.0.1:0"), processor, model_name=counter.model_name,
                           model_sha256=counter.model_sha256, pcr0_hex=attester.pcr0_hex,
                           settings=ServerSettings(accept_poll_s=0.05))
    running = RunningEnclave(server, threading.Thread(target=server.serve_forever, daemon=True))
    running.thread.start()
    try:
        ref = new_ref()
        reply = running.call(job(stack, stack.encrypt(image, ref.input_context()), ref))
        assert isinstance(reply, JobSuccess), reply
        result, _ = stack.decrypt_result(reply.result_ciphertext)
        assert result["cats"] == expected == 1
        assert result["model"] == {"name": "nanodet-g", "sha256": counter.model_sha256}
    finally:
        server.stop()
        running.thread.join(30)


class _RecordingKmsProxy:
    """A KMS endpoint run by a hostile parent: forwards every call to the gateway and records it.

    Whoever runs the enclave's KMS endpoint can answer GenerateDataKey itself with a data key it
    knows (wrapped for the enclave's public key, which every attestation document carries) and so
    read the result; the enclave must therefore never talk to an endpoint the parent names.
    """

    def __init__(self, upstream: str) -> None:
        import http.server
        import urllib.request

        seen: list[str] = []
        self.seen = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                seen.append(self.headers.get("X-Amz-Target", "?"))
                forward = urllib.request.Request(upstream, data=body, method="POST", headers=dict(self.headers))
                try:
                    with urllib.request.urlopen(forward, timeout=30) as answer:  # noqa: S310 - test proxy
                        status, payload = answer.status, answer.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_enclave_never_sends_kms_calls_to_an_endpoint_the_parent_names(
    attested_stack: AttestedStack, enclave: RunningEnclave
) -> None:
    proxy = _RecordingKmsProxy(attested_stack.gateway.url)
    try:
        ref = new_ref()
        request = job(attested_stack, attested_stack.encrypt(png_image(), ref.input_context()), ref)
        hostile = JobRequest(request_id="hostile-endpoint", job=request.job, ciphertext=request.ciphertext,
                               credentials=request.credentials, kms=KmsTarget(region=REGION, endpoint_url=proxy.url))
        reply = enclave.call(hostile)
        assert proxy.seen == []
        assert isinstance(reply, JobFailure) and reply.error.code == "bad_request"
        # The enclave's own endpoint still works for the same job.
        assert isinstance(enclave.call(request), JobSuccess)
    finally:
        proxy.stop()
