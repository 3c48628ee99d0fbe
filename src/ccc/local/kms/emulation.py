"""A KMS client wrapper that answers `Recipient` requests like KMS, for tests without the gateway.

moto ignores `Recipient` and returns `Plaintext`. This wrapper takes the attestation document out
of the request, asks `public_key_for(document)` for the recipient key (by default: verify the
document against a given root and take its `public_key`), calls the wrapped client without
`Recipient`, and replaces `Plaintext` with `CiphertextForRecipient` built by `build_enveloped_data`.

It does NOT evaluate key policies: that is the gateway's job (`ccc.local.kms.gateway`). Use it for unit
and integration tests of enclave-side code only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ccc.attestation import AttestationPolicy, verify_document
from ccc_enclave.kms.cms import build_enveloped_data


def verified_public_key(root_der: bytes) -> Callable[[bytes], bytes]:
    """`public_key_for` that verifies the document (chain to `root_der`, now) and returns its key."""

    def public_key_for(document: bytes) -> bytes:
        doc = verify_document(document, root_der=root_der, policy=AttestationPolicy(allow_debug=True))
        if not doc.public_key:
            raise ValueError("attestation document carries no public key")
        return doc.public_key

    return public_key_for


class RecipientEmulatingKmsClient:
    """Wraps a boto3 KMS client (e.g. moto's) and emulates KMS's `Recipient` answers."""

    def __init__(self, inner: Any, public_key_for: Callable[[bytes], bytes]) -> None:
        self._inner = inner
        self._public_key_for = public_key_for
        self.recipient_calls = 0

    def _attested(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        recipient = params.pop("Recipient", None)
        response = dict(getattr(self._inner, operation)(**params))
        if recipient is None:
            return response
        self.recipient_calls += 1
        public_key = self._public_key_for(recipient["AttestationDocument"])
        plaintext = response.pop("Plaintext")
        response["CiphertextForRecipient"] = build_enveloped_data(plaintext, public_key)
        return response

    def decrypt(self, **params: Any) -> dict[str, Any]:
        return self._attested("decrypt", params)

    def generate_data_key(self, **params: Any) -> dict[str, Any]:
        return self._attested("generate_data_key", params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
