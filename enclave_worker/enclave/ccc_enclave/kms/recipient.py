"""The enclave side of attested KMS: a per-boot RSA key pair and KMS calls with `Recipient`.

Why: inside the enclave, key material must only ever arrive wrapped for a key that never leaves
the enclave. The enclave generates an RSA-2048 key pair at boot, asks the NSM for an attestation
document carrying the public key, and sends that document as `Recipient` with `Decrypt` /
`GenerateDataKey`. KMS (or the local gateway) checks the document against the key policy's
`kms:RecipientAttestation:*` conditions and answers `CiphertextForRecipient` (CMS for our key)
instead of `Plaintext`. An answer that carries `Plaintext` means the request was not treated as
attested; it is refused rather than used, so a misconfigured proxy can never downgrade us.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ccc_core.aws_errors import client_error_code
from ccc_enclave.errors import EnclaveError
from ccc_enclave.kms.cms import CmsError, decrypt_for_recipient

KEY_ENCRYPTION_ALGORITHM = "RSAES_OAEP_SHA_256"
RSA_KEY_BITS = 2048
MAX_DATA_KEY_BYTES = 1024  # KMS GenerateDataKey limit


class AttestedKmsError(EnclaveError, RuntimeError):
    """An attested KMS call failed or its answer was not acceptable. `code` is the AWS error code if any."""

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class AttestingNsm(Protocol):
    """The one NSM capability this module needs (matches `ccc_enclave.nsm.simulated.Nsm`)."""

    def attest(
        self, *, public_key: bytes | None = None, user_data: bytes | None = None, nonce: bytes | None = None
    ) -> bytes: ...


class KmsClient(Protocol):
    """The subset of a boto3 KMS client used here (injectable; tests wrap moto)."""

    def decrypt(self, **kwargs: Any) -> dict[str, Any]: ...

    def generate_data_key(self, **kwargs: Any) -> dict[str, Any]: ...

    def encrypt(self, **kwargs: Any) -> dict[str, Any]: ...


class EnclaveKeyPair:
    """An RSA-2048 key pair generated per enclave boot; the private half never leaves this object."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey) or private_key.key_size != RSA_KEY_BITS:
            raise ValueError("the enclave key pair must be RSA-2048")
        self._private_key = private_key
        self._public_key_der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def generate(cls) -> EnclaveKeyPair:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS))

    @property
    def public_key_der(self) -> bytes:
        """SubjectPublicKeyInfo DER: what goes into the attestation document's `public_key`."""
        return self._public_key_der

    def open(self, cms_ber: bytes) -> bytes:
        """Unwrap a `CiphertextForRecipient` addressed to this key pair (raises CmsError)."""
        return decrypt_for_recipient(cms_ber, self._private_key)

    def __repr__(self) -> str:
        return f"EnclaveKeyPair(rsa-{RSA_KEY_BITS}, spki_sha256_prefix={self._fingerprint()})"

    def _fingerprint(self) -> str:
        return hashlib.sha256(self._public_key_der).hexdigest()[:16]


@dataclass(frozen=True)
class UnwrappedPlaintext:
    """A Decrypt answer after unwrapping: the plaintext and the key ARN KMS reports."""

    plaintext: bytes
    key_id: str

    def __repr__(self) -> str:  # never print key material
        return f"UnwrappedPlaintext(key_id={self.key_id!r}, plaintext=<{len(self.plaintext)} bytes>)"


@dataclass(frozen=True)
class AttestedDataKey:
    """A GenerateDataKey answer after unwrapping."""

    plaintext: bytes
    ciphertext_blob: bytes
    key_id: str

    def __repr__(self) -> str:
        return f"AttestedDataKey(key_id={self.key_id!r}, plaintext=<{len(self.plaintext)} bytes>)"


def _context(encryption_context: dict[str, str] | None) -> dict[str, str]:
    if encryption_context is None:
        return {}
    if not isinstance(encryption_context, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in encryption_context.items()
    ):
        raise AttestedKmsError("encryption context must map str to str")
    return dict(encryption_context)


class AttestedKms:
    """KMS Decrypt / GenerateDataKey with `Recipient`, unwrapping `CiphertextForRecipient`."""

    def __init__(self, kms_client: KmsClient, nsm: AttestingNsm, keypair: EnclaveKeyPair) -> None:
        self._kms = kms_client
        self._nsm = nsm
        self._keypair = keypair

    @property
    def kms_client(self) -> KmsClient:
        return self._kms

    def recipient(self) -> dict[str, Any]:
        """A fresh `Recipient` parameter: a new attestation document per request."""
        document = self._nsm.attest(public_key=self._keypair.public_key_der)
        return {"KeyEncryptionAlgorithm": KEY_ENCRYPTION_ALGORITHM, "AttestationDocument": document}

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        method = getattr(self._kms, operation)
        try:
            response = method(**params)
        except Exception as exc:  # botocore raises many types (ClientError, connection, validation)
            code = client_error_code(exc)
            raise AttestedKmsError(f"KMS {operation} failed: {code or type(exc).__name__}: {exc}", code=code) from exc
        if not isinstance(response, dict):
            raise AttestedKmsError(f"KMS {operation} answered {type(response).__name__}, not an object")
        return response

    def _unwrap(self, operation: str, response: dict[str, Any]) -> tuple[bytes, str]:
        if response.get("Plaintext"):
            raise AttestedKmsError(
                f"KMS {operation} answered Plaintext instead of CiphertextForRecipient: "
                "the request was not handled as attested; refusing the key material"
            )
        wrapped = response.get("CiphertextForRecipient")
        if not isinstance(wrapped, bytes | bytearray) or not wrapped:
            raise AttestedKmsError(f"KMS {operation} answer carries no CiphertextForRecipient")
        key_id = response.get("KeyId")
        if not isinstance(key_id, str) or not key_id:
            raise AttestedKmsError(f"KMS {operation} answer carries no KeyId")
        try:
            return self._keypair.open(bytes(wrapped)), key_id
        except CmsError as exc:
            raise AttestedKmsError(f"KMS {operation} CiphertextForRecipient does not open: {exc}") from exc

    def decrypt_detailed(
        self, ciphertext_blob: bytes, encryption_context: dict[str, str] | None, key_id: str | None = None
    ) -> UnwrappedPlaintext:
        """Decrypt with Recipient; returns plaintext and the key ARN that KMS used."""
        if not isinstance(ciphertext_blob, bytes | bytearray) or not ciphertext_blob:
            raise AttestedKmsError("ciphertext blob must be non-empty bytes")
        params: dict[str, Any] = {"CiphertextBlob": bytes(ciphertext_blob), "Recipient": self.recipient()}
        context = _context(encryption_context)
        if context:
            params["EncryptionContext"] = context
        if key_id is not None:
            params["KeyId"] = key_id
        response = self._call("decrypt", **params)
        plaintext, returned_key = self._unwrap("Decrypt", response)
        if key_id is not None and key_id.startswith("arn:") and returned_key != key_id:
            raise AttestedKmsError(f"KMS Decrypt used key {returned_key}, expected {key_id}")
        return UnwrappedPlaintext(plaintext=plaintext, key_id=returned_key)

    def generate_data_key_detailed(
        self, key_id: str, encryption_context: dict[str, str] | None, number_of_bytes: int = 32
    ) -> AttestedDataKey:
        """GenerateDataKey with Recipient; returns the unwrapped key, its ciphertext blob and key ARN."""
        if not isinstance(key_id, str) or not key_id:
            raise AttestedKmsError("key id must be a non-empty string")
        if isinstance(number_of_bytes, bool) or not isinstance(number_of_bytes, int):
            raise AttestedKmsError("number_of_bytes must be an integer")
        if not 1 <= number_of_bytes <= MAX_DATA_KEY_BYTES:
            raise AttestedKmsError(f"number_of_bytes must be 1..{MAX_DATA_KEY_BYTES}")
        params: dict[str, Any] = {
            "KeyId": key_id,
            "NumberOfBytes": number_of_bytes,
            "Recipient": self.recipient(),
        }
        context = _context(encryption_context)
        if context:
            params["EncryptionContext"] = context
        response = self._call("generate_data_key", **params)
        plaintext, returned_key = self._unwrap("GenerateDataKey", response)
        if len(plaintext) != number_of_bytes:
            raise AttestedKmsError(f"KMS returned a {len(plaintext)}-byte data key, {number_of_bytes} requested")
        blob = response.get("CiphertextBlob")
        if not isinstance(blob, bytes | bytearray) or not blob:
            raise AttestedKmsError("KMS GenerateDataKey answer carries no CiphertextBlob")
        return AttestedDataKey(plaintext=plaintext, ciphertext_blob=bytes(blob), key_id=returned_key)

    def decrypt(
        self, ciphertext_blob: bytes, encryption_context: dict[str, str] | None, key_id: str | None = None
    ) -> bytes:
        """Plaintext of `ciphertext_blob`, obtained only through an attested, wrapped answer."""
        return self.decrypt_detailed(ciphertext_blob, encryption_context, key_id).plaintext

    def generate_data_key(
        self, key_id: str, encryption_context: dict[str, str] | None, number_of_bytes: int = 32
    ) -> tuple[bytes, bytes]:
        """`(plaintext data key, ciphertext blob)`; the plaintext only ever arrived wrapped."""
        key = self.generate_data_key_detailed(key_id, encryption_context, number_of_bytes)
        return key.plaintext, key.ciphertext_blob
