"""An attested KMS master key and provider for aws-encryption-sdk 4.x (legacy MasterKey interfaces).

Why: the ESDK's own KMS master key cannot send `Recipient` (aws-encryption-sdk-python #513), so
inside the enclave it would receive `Plaintext` data keys that no key policy could tie to the
enclave image. These classes speak the same wire format as the standard KMS master key provider
(provider id "aws-kms", key info = key ARN) so messages interoperate both ways with
`aws_encryption_sdk.StrictAwsKmsMasterKeyProvider` and the aws-encryption-cli:

* decrypting a message calls KMS Decrypt with the encrypted data key, the message's *full*
  encryption context (signed suites add `aws-crypto-public-key`; the ESDK passes the header's
  context through, and KMS authenticates exactly that) and `Recipient`;
* encrypting (a result) calls GenerateDataKey with `Recipient`.

No MPL extra is needed; the legacy interfaces are stable in 4.x.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import attr
from aws_encryption_sdk.exceptions import (
    DecryptKeyError,
    EncryptKeyError,
    GenerateKeyError,
    InvalidKeyIdError,
    MalformedArnError,
)
from aws_encryption_sdk.internal.arn import arn_from_str
from aws_encryption_sdk.key_providers.base import (
    MasterKey,
    MasterKeyConfig,
    MasterKeyProvider,
    MasterKeyProviderConfig,
)
from aws_encryption_sdk.structures import DataKey, EncryptedDataKey, MasterKeyInfo

from ccc_enclave.kms.recipient import AttestedKms, AttestedKmsError

PROVIDER_ID = "aws-kms"  # the standard KMS provider id: required for interoperability
_LOGGER = logging.getLogger(__name__)


def _to_str(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def validate_key_arn(key_id: str | bytes) -> str:
    """Key ids must be key ARNs: the EDK's key info is compared to them byte for byte."""
    text = _to_str(key_id)
    try:
        arn = arn_from_str(text)
    except MalformedArnError as exc:
        raise InvalidKeyIdError(f"{text!r} is not a KMS key ARN: {exc}") from None
    if arn.service != "kms" or arn.resource_type != "key":
        raise InvalidKeyIdError(f"{text!r} is not a KMS key ARN (aliases cannot be matched to messages)")
    return text


@attr.s(hash=True)
class AttestedKmsMasterKeyConfig(MasterKeyConfig):
    """Config: the key ARN (`key_id`) and the AttestedKms that performs the calls."""

    provider_id = PROVIDER_ID
    attested_kms = attr.ib(hash=False, eq=False, validator=attr.validators.instance_of(AttestedKms))


class AttestedKmsMasterKey(MasterKey):
    """One KMS key used only through attested calls (`Recipient`)."""

    provider_id = PROVIDER_ID
    _config_class = AttestedKmsMasterKeyConfig

    def __init__(self, **kwargs: Any) -> None:
        self._key_arn = validate_key_arn(self.config.key_id)

    @property
    def _attested(self) -> AttestedKms:
        attested: AttestedKms = self.config.attested_kms
        return attested

    def _check_returned_key(self, returned: str, error: type[Exception]) -> None:
        if returned != self._key_arn:
            raise error(f"KMS answered for key {returned}, expected {self._key_arn}")

    def _generate_data_key(self, algorithm: Any, encryption_context: dict[str, str] | None) -> DataKey:
        try:
            key = self._attested.generate_data_key_detailed(
                self._key_arn, encryption_context or {}, number_of_bytes=algorithm.kdf_input_len
            )
        except AttestedKmsError as exc:
            raise GenerateKeyError(f"attested GenerateDataKey with {self._key_arn} failed: {exc.reason}") from exc
        self._check_returned_key(key.key_id, GenerateKeyError)
        return DataKey(
            key_provider=MasterKeyInfo(provider_id=self.provider_id, key_info=key.key_id),
            data_key=key.plaintext,
            encrypted_data_key=key.ciphertext_blob,
        )

    def _encrypt_data_key(
        self, data_key: Any, algorithm: Any, encryption_context: dict[str, str] | None
    ) -> EncryptedDataKey:
        # Only used when a message has several master keys; Encrypt takes no Recipient.
        params: dict[str, Any] = {"KeyId": self._key_arn, "Plaintext": data_key.data_key}
        if encryption_context:
            params["EncryptionContext"] = encryption_context
        try:
            response = self._attested.kms_client.encrypt(**params)
            ciphertext, returned = response["CiphertextBlob"], response["KeyId"]
        except Exception as exc:  # botocore ClientError and friends, or a malformed answer
            raise EncryptKeyError(f"KMS Encrypt with {self._key_arn} failed: {exc}") from exc
        self._check_returned_key(returned, EncryptKeyError)
        return EncryptedDataKey(
            key_provider=MasterKeyInfo(provider_id=self.provider_id, key_info=returned),
            encrypted_data_key=ciphertext,
        )

    def _decrypt_data_key(
        self, encrypted_data_key: EncryptedDataKey, algorithm: Any, encryption_context: dict[str, str] | None
    ) -> DataKey:
        edk_key = _to_str(encrypted_data_key.key_provider.key_info)
        if edk_key != self._key_arn:
            raise DecryptKeyError(f"data key is wrapped by {edk_key}, this master key is {self._key_arn}")
        try:
            result = self._attested.decrypt_detailed(
                encrypted_data_key.encrypted_data_key, encryption_context or {}, key_id=self._key_arn
            )
        except AttestedKmsError as exc:
            raise DecryptKeyError(f"attested Decrypt with {self._key_arn} failed: {exc.reason}") from exc
        self._check_returned_key(result.key_id, DecryptKeyError)
        if len(result.plaintext) != algorithm.data_key_len:
            raise DecryptKeyError(
                f"KMS returned a {len(result.plaintext)}-byte data key; the suite needs {algorithm.data_key_len}"
            )
        return DataKey(
            key_provider=self.key_provider,
            data_key=result.plaintext,
            encrypted_data_key=encrypted_data_key.encrypted_data_key,
        )


@attr.s(hash=True)
class AttestedKmsMasterKeyProviderConfig(MasterKeyProviderConfig):
    """Config: the AttestedKms to use and the key ARNs this provider may use (strict mode)."""

    attested_kms = attr.ib(hash=False, eq=False, validator=attr.validators.instance_of(AttestedKms))
    key_ids: tuple[str, ...] = attr.ib(hash=True, default=attr.Factory(tuple), converter=tuple)


class AttestedKmsMasterKeyProvider(MasterKeyProvider):
    """Strict provider: only the configured key ARNs, every call attested.

    The first key generates data keys when encrypting; on decrypt, an EDK is tried only if its
    provider id is "aws-kms" and its key info is one of the configured ARNs.
    """

    provider_id = PROVIDER_ID
    _config_class = AttestedKmsMasterKeyProviderConfig

    def __init__(self, **kwargs: Any) -> None:
        key_ids = [validate_key_arn(k) for k in self.config.key_ids]
        if not key_ids:
            raise InvalidKeyIdError("an attested provider needs at least one key ARN")
        self._allowed = frozenset(key_ids)
        self.add_master_keys_from_list(key_ids)

    def _new_master_key(self, key_id: str | bytes) -> AttestedKmsMasterKey:
        arn = _to_str(key_id)
        if arn not in self._allowed:
            raise InvalidKeyIdError(f"key {arn} is not configured for this attested provider")
        return AttestedKmsMasterKey(key_id=arn, attested_kms=self.config.attested_kms)


def attested_provider(attested_kms: AttestedKms, key_arns: Iterable[str]) -> AttestedKmsMasterKeyProvider:
    """Convenience constructor used by the enclave."""
    return AttestedKmsMasterKeyProvider(attested_kms=attested_kms, key_ids=tuple(key_arns))
