"""ESDK encryption of inputs (streaming, bounded memory) and decryption of results.

Why the Encryption SDK and not raw KMS: the message format is a public standard (the official
`aws-encryption-cli` reads and writes it), frames keep memory flat for large images, key
commitment is required both ways, and the encryption context binds each ciphertext to its job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import CommitmentPolicy

from ccc.client.errors import VerificationError
from ccc_core.identity import CTX_KIND, KIND_RESULT, JobRef
from ccc_core.result_document import DocumentError, ResultDocument, decode_result_document

FRAME_LENGTH = 64 * 1024
READ_CHUNK = 1024 * 1024


def _sdk() -> Any:
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


def decrypt_result(ciphertext: bytes, job: JobRef, *, provider: Any) -> ResultDocument:
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
    # The enclave repeats the job inside the signed plaintext too: a second, independent binding.
    return parse_result(plaintext, job=job)


def parse_result(plaintext: bytes, *, job: JobRef | None = None) -> ResultDocument:
    """The result document (`ccc_core.result_document`), or VerificationError, never a traceback:
    a format this client does not know is refused by name, so a newer enclave is noticed, not misread."""
    try:
        return decode_result_document(plaintext, job=job)
    except DocumentError as exc:
        raise VerificationError(str(exc)) from None
