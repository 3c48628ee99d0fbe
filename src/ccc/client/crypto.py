"""ESDK encryption of inputs (streaming, bounded memory) and decryption of results.

Why the Encryption SDK and not raw KMS: the message format is a public standard (the official
`aws-encryption-cli` reads and writes it), frames keep memory flat for large images, key
commitment is required both ways, and the encryption context binds each ciphertext to its job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from ccc.client.errors import VerificationError
from ccc_core.identity import CTX_KIND, KIND_RESULT, JobRef

FRAME_LENGTH = 64 * 1024
READ_CHUNK = 1024 * 1024
# Results are a few hundred bytes of JSON; anything far larger is not from our enclave.
MAX_RESULT_PLAINTEXT = 64 * 1024


def _sdk() -> Any:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import CommitmentPolicy

    return aws_encryption_sdk, CommitmentPolicy


def key_provider(key_arn: str, botocore_session: Any) -> Any:
    """A strict KMS master key provider: only `key_arn`, through the given session (endpoint, creds)."""
    sdk, _ = _sdk()
    return sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=botocore_session)


def encrypt_stream(
    source: IO[bytes],
    destination: IO[bytes],
    *,
    provider: Any,
    context: Mapping[str, str],
    progress: Any = None,
) -> int:
    """Encrypt `source` into `destination` chunk by chunk; returns the ciphertext size."""
    sdk, policy = _sdk()
    client = sdk.EncryptionSDKClient(commitment_policy=policy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    written = 0
    with client.stream(
        mode="e", source=source, key_provider=provider, encryption_context=dict(context), frame_length=FRAME_LENGTH
    ) as encryptor:
        while True:
            before = source.tell() if source.seekable() else None
            chunk = encryptor.read(READ_CHUNK)
            if not chunk:
                break
            destination.write(chunk)
            written += len(chunk)
            if progress is not None and before is not None:
                progress(source.tell() - before)
    return written


@dataclass(frozen=True)
class ResultPayload:
    cats: int
    document: dict[str, Any]


def decrypt_result(ciphertext: bytes, job: JobRef, *, provider: Any) -> ResultPayload:
    """Decrypt a result and prove its context names this job, this tenant and kind=result."""
    sdk, policy = _sdk()
    client = sdk.EncryptionSDKClient(
        commitment_policy=policy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, max_encrypted_data_keys=1
    )
    try:
        plaintext, header = client.decrypt(source=ciphertext, key_provider=provider)
    except Exception as exc:  # the ESDK raises many types; all mean "not a valid result for us"
        raise VerificationError(f"result does not decrypt: {type(exc).__name__}: {exc}") from None
    context = dict(header.encryption_context)
    expected = job.result_context()
    for key, value in expected.items():
        if context.get(key) != value:
            raise VerificationError(
                f"result encryption context has {key}={context.get(key)!r}, expected {value!r}"
            )
    if context.get(CTX_KIND) != KIND_RESULT:
        raise VerificationError("result is not marked as a result")
    payload = parse_result(plaintext)
    # The enclave repeats the job inside the signed plaintext too: a second, independent binding.
    for field, value in (("job_id", job.job_id), ("tenant", job.tenant)):
        if payload.document.get(field) != value:
            found = payload.document.get(field)
            raise VerificationError(f"result document names {field}={found!r}, expected {value!r}")
    return payload


def parse_result(plaintext: bytes) -> ResultPayload:
    if len(plaintext) > MAX_RESULT_PLAINTEXT:
        raise VerificationError(f"result plaintext is {len(plaintext)} bytes, expected a small JSON document")
    try:
        document = json.loads(plaintext)
    except ValueError:
        raise VerificationError("result plaintext is not JSON") from None
    cats = document.get("cats") if isinstance(document, dict) else None
    if type(cats) is not int or cats < 0:
        raise VerificationError("result JSON carries no non-negative integer `cats`")
    return ResultPayload(cats=cats, document=document)
