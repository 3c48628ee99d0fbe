"""The enclave's envelope crypto: AWS Encryption SDK messages with attested KMS (`Recipient`).

Decrypt: the message header is read first to find its KMS-wrapped data keys (provider id
`aws-kms`, key info = key ARN). For each candidate key in the job's KMS region, an attested
provider restricted to exactly that ARN decrypts the message; the ARN that succeeded is the key
the result is encrypted under. So the result key comes from the authenticated input, never from
the (untrusted) parent. The ESDK then authenticates the whole message, including the encryption
context the pipeline checks.

Encrypt: GenerateDataKey with `Recipient` under that ARN, context `{ccc:job, ccc:tenant,
ccc:kind=result}`, the ESDK's default committing, signed algorithm suite.

KMS errors are classified for the retry decision: a tampered data key is permanent
(`decrypt_failed`), throttling/unreachable KMS or expired credentials are retryable, and an
access denial is retryable (a key-policy rollout race must not fail jobs for good; a job that
stays denied ends in the DLQ after the queue's receive count).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_encryption_sdk
import boto3
from aws_encryption_sdk.identifiers import CommitmentPolicy
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from botocore.config import Config

from ccc_core.aws_errors import client_error_code
from ccc_enclave.kms.esdk_keys import PROVIDER_ID, attested_provider, validate_key_arn
from ccc_enclave.kms.recipient import AttestedKms
from ccc_enclave.ports import CryptoSession, DecryptedInput, JobError
from ccc_enclave.protocol.errors import ErrorCode
from ccc_enclave.protocol.job_messages import Credentials, KmsTarget

# A message wrapped for more keys than this is refused before any KMS call (ESDK guidance).
MAX_ENCRYPTED_DATA_KEYS = 8
MAX_CANDIDATE_KEYS = 3
_PERMANENT_KMS_CODES = frozenset({"InvalidCiphertextException", "IncorrectKeyException", "InvalidKeyUsageException"})
_CREDENTIAL_KMS_CODES = frozenset(
    {"ExpiredTokenException", "ExpiredToken", "UnrecognizedClientException", "InvalidSignatureException",
     "InvalidClientTokenId", "SignatureDoesNotMatch", "RequestExpired"}
)
_DENIED_KMS_CODES = frozenset(
    {"AccessDeniedException", "NotFoundException", "DisabledException", "KMSInvalidStateException"}
)


def classify_kms_error(code: str | None) -> ErrorCode:
    if code in _PERMANENT_KMS_CODES:
        return ErrorCode.DECRYPT_FAILED
    if code in _CREDENTIAL_KMS_CODES:
        return ErrorCode.CREDENTIALS_EXPIRED
    if code in _DENIED_KMS_CODES:
        return ErrorCode.KMS_ACCESS_DENIED
    return ErrorCode.KMS_UNAVAILABLE


class _Recorder:
    """Wraps the KMS client and the NSM for one ESDK call to remember why it failed.

    The ESDK turns every master-key failure into a generic "unable to decrypt any data key", so
    the cause needed for the retry decision (throttled? denied? tampered?) is captured here.
    """

    def __init__(self, client: Any, nsm: Any) -> None:
        self._client = client
        self._nsm = nsm
        self.failure: ErrorCode | None = None
        self.detail = ""
        self.decrypt_succeeded = False

    def attest(self, **kwargs: Any) -> bytes:
        try:
            document: bytes = self._nsm.attest(**kwargs)
        except Exception as exc:
            self.failure, self.detail = ErrorCode.ATTESTATION_FAILED, f"NSM {type(exc).__name__}"
            raise
        return document

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except Exception as exc:
            code = client_error_code(exc)
            self.failure, self.detail = classify_kms_error(code), f"KMS {code or type(exc).__name__}"
            raise
        if isinstance(response, dict) and response.get("Plaintext"):
            # AttestedKms refuses this answer; recorded so the reason says why.
            self.failure, self.detail = ErrorCode.ATTESTATION_FAILED, "KMS answered without Recipient wrapping"
        elif operation == "decrypt":
            self.decrypt_succeeded = True
        return response

    def decrypt(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("decrypt", **kwargs)

    def generate_data_key(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("generate_data_key", **kwargs)

    def encrypt(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("encrypt", **kwargs)


def candidate_key_arns(header: Any, region: str) -> list[str]:
    """KMS key ARNs (in `region`) that wrap a data key of the message, sorted, at most MAX_CANDIDATE_KEYS."""

    found: set[str] = set()
    for edk in header.encrypted_data_keys:
        provider = edk.key_provider.provider_id
        provider = provider.decode("utf-8", "replace") if isinstance(provider, bytes) else provider
        if provider != PROVIDER_ID:
            continue
        info = edk.key_provider.key_info
        try:
            arn = validate_key_arn(info.decode("utf-8") if isinstance(info, bytes) else info)
        except Exception:  # noqa: S112 - a malformed key id is just not a candidate
            continue
        if arn.split(":")[3] == region:
            found.add(arn)
    return sorted(found)[:MAX_CANDIDATE_KEYS]


@dataclass(frozen=True)
class _ClientKey:
    access_key_id: str
    secret_digest: str
    region: str
    endpoint_url: str | None


class KmsClientFactory:
    """boto3 KMS clients per (credentials, region, endpoint), built from one shared botocore session.

    Creating a client costs tens of milliseconds (endpoint and model loading); jobs from one
    parent reuse the same role credentials, so a small LRU cache makes that a one-off cost.
    """

    def __init__(self, *, max_cached: int = 8, connect_timeout_s: float = 5.0, read_timeout_s: float = 15.0) -> None:
        self._session = boto3.session.Session()
        self._lock = threading.Lock()
        self._cache: OrderedDict[_ClientKey, Any] = OrderedDict()
        self._max_cached = max_cached
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s

    def client(self, credentials: Credentials, kms: KmsTarget) -> Any:
        secret_digest = hashlib.sha256(
            f"{credentials.secret_access_key}\x00{credentials.session_token or ''}".encode()
        ).hexdigest()
        key = _ClientKey(credentials.access_key_id, secret_digest, kms.region, kms.endpoint_url)
        with self._lock:  # botocore sessions are not safe for concurrent client creation
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            client = self._session.client(
                "kms",
                region_name=kms.region,
                endpoint_url=kms.endpoint_url,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token,
                config=Config(
                    connect_timeout=self._connect_timeout_s,
                    read_timeout=self._read_timeout_s,
                    retries={"mode": "standard", "max_attempts": 3},
                ),
            )
            self._cache[key] = client
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
            return client


class AttestedEsdkSession:
    """Decrypt/encrypt for one job: one KMS client, the enclave's NSM and boot key pair."""

    def __init__(self, kms_client: Any, nsm: Any, keypair: Any, region: str) -> None:
        self._kms_client = kms_client
        self._nsm = nsm
        self._keypair = keypair
        self._region = region
        self._esdk = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
            max_encrypted_data_keys=MAX_ENCRYPTED_DATA_KEYS,
        )

    def _provider(self, recorder: _Recorder, key_arn: str) -> Any:
        return attested_provider(AttestedKms(recorder, recorder, self._keypair), [key_arn])

    def decrypt(self, ciphertext: bytes) -> DecryptedInput:
        try:
            header, _ = deserialize_header(io.BytesIO(ciphertext), MAX_ENCRYPTED_DATA_KEYS)
        except Exception as exc:
            raise JobError(ErrorCode.DECRYPT_FAILED,
                           f"input is not an AWS Encryption SDK message ({type(exc).__name__})") from None
        arns = candidate_key_arns(header, self._region)
        if not arns:
            raise JobError(ErrorCode.DECRYPT_FAILED,
                           f"no data key of the message is wrapped by a KMS key in {self._region}")
        failure: JobError | None = None
        for arn in arns:
            recorder = _Recorder(self._kms_client, self._nsm)
            try:
                plaintext, decrypted_header = self._esdk.decrypt(
                    source=ciphertext, key_provider=self._provider(recorder, arn)
                )
            except Exception as exc:
                if recorder.failure is not None:
                    failure = JobError(recorder.failure, f"data key not decrypted: {recorder.detail}")
                    if recorder.failure == ErrorCode.DECRYPT_FAILED:
                        raise failure from None
                    continue
                # KMS opened the data key (or was never asked): the message itself is bad
                # (tampered body, authentication tag, signature, unsupported suite).
                what = "failed authentication" if recorder.decrypt_succeeded else "was rejected"
                raise JobError(ErrorCode.DECRYPT_FAILED, f"message {what} ({type(exc).__name__})") from None
            context = dict(decrypted_header.encryption_context)
            return DecryptedInput(plaintext=plaintext, encryption_context=context, key_arn=arn)
        assert failure is not None
        raise failure

    def encrypt(self, plaintext: bytes, encryption_context: Mapping[str, str], key_arn: str) -> bytes:
        recorder = _Recorder(self._kms_client, self._nsm)
        try:
            ciphertext, _ = self._esdk.encrypt(
                source=plaintext, key_provider=self._provider(recorder, key_arn),
                encryption_context=dict(encryption_context),
            )
        except Exception as exc:
            if recorder.failure is not None:
                raise JobError(recorder.failure, f"result data key not generated: {recorder.detail}") from None
            raise JobError(ErrorCode.INTERNAL, f"result encryption failed ({type(exc).__name__})") from None
        return bytes(ciphertext)


class AttestedEsdkCrypto:
    """`EnvelopeCrypto` for the enclave: sessions share the NSM, boot key pair and client cache.

    `kms_endpoint_url` is the enclave's *own* KMS endpoint (None: the region's public endpoint over
    TLS, as on AWS). A job naming any other endpoint is refused before any KMS call: whoever answers
    the enclave's GenerateDataKey chooses the result's data key (wrapping it for the enclave's
    public key needs nothing secret), so an endpoint chosen by the untrusted parent would let the
    parent read every result.
    """

    def __init__(self, nsm: Any, keypair: Any, clients: KmsClientFactory | None = None, *,
                 kms_endpoint_url: str | None = None) -> None:
        self._nsm = nsm
        self._keypair = keypair
        self._clients = clients or KmsClientFactory()
        self._kms_endpoint_url = kms_endpoint_url

    def session(self, credentials: Credentials, kms: KmsTarget) -> CryptoSession:
        if kms.endpoint_url != self._kms_endpoint_url:
            raise JobError(ErrorCode.BAD_REQUEST, "the job names a KMS endpoint other than the enclave's own")
        return AttestedEsdkSession(self._clients.client(credentials, kms), self._nsm, self._keypair, kms.region)
