"""Request processing of the local attested-KMS gateway, independent of HTTP.

Authenticate (SigV4 against the local identities), verify `Recipient`, evaluate the key policy
stored on the key (fail closed), forward to moto re-signed with an internal credential, and wrap
attested answers as `CiphertextForRecipient`. `ccc.local.kms.gateway` puts this behind an HTTP server.
Only metadata is logged (caller name, operation, key ARN, decision): never plaintext or secrets.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ccc.attestation import AttestationPolicy, verify_document
from ccc.local.errors import LocalStackError
from ccc.local.iam_users import LocalIdentity, check_identity_table
from ccc.local.kms.policy_eval import Decision, PolicyNotUnderstood, RequestContext, parse_policy
from ccc.local.sigv4 import KMS_PROFILE, Headers, SignatureError, verify_request
from ccc_core.attestation.errors import AttestationError
from ccc_enclave.kms.cms import CmsError, build_enveloped_data

log = logging.getLogger("ccc.local.kms.gateway")

TARGET_PREFIX = "TrentService."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY_BYTES = 1 << 20
MAX_ATTESTATION_AGE = timedelta(minutes=5)
KEY_ENCRYPTION_ALGORITHM = "RSAES_OAEP_SHA_256"
_INTERNAL_CREDENTIALS = Credentials("AKIACCCGATEWAYINTERNAL", "ccc-gateway-internal-not-a-secret")

# Operations with their own handling.
ATTESTABLE_OPS = frozenset({"Decrypt", "GenerateDataKey"})
DATA_OPS = frozenset({"Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext"})
KEY_READ_OPS = frozenset({"DescribeKey", "GetKeyPolicy"})
# Key-scoped management: authorised by the key policy for action kms:<Op>, then forwarded.
MANAGEMENT_OPS = frozenset(
    {
        "CancelKeyDeletion",
        "DisableKey",
        "DisableKeyRotation",
        "EnableKey",
        "EnableKeyRotation",
        "GetKeyRotationStatus",
        "ListKeyPolicies",
        "ListResourceTags",
        "ScheduleKeyDeletion",
        "TagResource",
        "UntagResource",
        "UpdateKeyDescription",
    }
)
# Account-level (IAM-authorised) operations: only for identities with IAM admin rights.
IAM_ADMIN_OPS = frozenset({"CreateKey", "CreateAlias", "DeleteAlias", "UpdateAlias", "ListAliases", "ListKeys"})


class KmsApiError(LocalStackError):
    """An error answered in KMS's JSON error shape."""

    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Caller:
    identity: LocalIdentity
    region: str
    iam_admin: bool


@dataclass(frozen=True)
class _Recipient:
    public_key_der: bytes
    attestation: Mapping[str, str]


@dataclass
class _Upstream:
    """moto, reached with an internal credential (moto accepts any; it keys accounts on a header)."""

    url: str
    timeout: float = 30.0
    _parts: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._parts = urlsplit(self.url)
        if self._parts.scheme != "http" or not self._parts.hostname:
            raise ValueError(f"upstream URL {self.url!r} must be http://host:port")

    def call(self, operation: str, params: Mapping[str, Any], *, region: str, account: str) -> tuple[int, bytes]:
        body = json.dumps(params).encode()
        request = AWSRequest(
            method="POST",
            url=f"{self.url.rstrip('/')}/",
            data=body,
            headers={
                "Content-Type": CONTENT_TYPE,
                "X-Amz-Target": TARGET_PREFIX + operation,
                "x-moto-account-id": account,
            },
        )
        SigV4Auth(_INTERNAL_CREDENTIALS, "kms", region).add_auth(request)
        connection = http.client.HTTPConnection(self._parts.hostname, self._parts.port or 80, timeout=self.timeout)
        try:
            connection.request("POST", "/", body=body, headers=dict(request.headers.items()))
            response = connection.getresponse()
            return response.status, response.read()
        except OSError as exc:
            raise KmsApiError("KMSInternalException", f"upstream KMS unreachable: {exc}", 500) from exc
        finally:
            connection.close()

    def json_call(self, operation: str, params: Mapping[str, Any], *, region: str, account: str) -> dict[str, Any]:
        status, body = self.call(operation, params, region=region, account=account)
        # moto answers `null` for operations without output (PutKeyPolicy, TagResource, ...).
        answer = {} if body.strip() in (b"", b"null") else json_object(body, "upstream answer")
        if status != 200:
            raise KmsApiError(
                str(answer.get("__type", "KMSInternalException")).split("#")[-1],
                str(answer.get("message", answer.get("Message", "upstream error"))),
                status,
            )
        return answer


def json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise KmsApiError("SerializationException", f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise KmsApiError("SerializationException", f"{what} is not a JSON object")
    return value


def _b64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise KmsApiError("ValidationException", f"{name} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KmsApiError("ValidationException", f"{name} is not valid base64") from None


def _encryption_context(params: Mapping[str, Any]) -> dict[str, str]:
    context = params.get("EncryptionContext", {})
    if context is None:
        return {}
    if not isinstance(context, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
        raise KmsApiError("ValidationException", "EncryptionContext must map strings to strings")
    return context


class GatewayCore:
    """Request processing, independent of HTTP: authenticate, authorise, forward, wrap."""

    def __init__(
        self,
        upstream_url: str,
        identities: Mapping[str, LocalIdentity],
        attestation_root_der: bytes,
        *,
        iam_admins: Iterable[str] = ("admin",),
        clock: Callable[[], datetime] | None = None,
        max_attestation_age: timedelta = MAX_ATTESTATION_AGE,
    ) -> None:
        check_identity_table(identities)
        self._by_key = {identity.access_key_id: identity for identity in identities.values()}
        self._iam_admins = frozenset(iam_admins)
        unknown = self._iam_admins - set(identities)
        if unknown:
            raise ValueError(f"IAM admins {sorted(unknown)} are not known identities")
        if not attestation_root_der:
            raise ValueError("an attestation root certificate (DER) is required")
        self._root_der = bytes(attestation_root_der)
        self._upstream = _Upstream(upstream_url)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_age = max_attestation_age

    # ----- authentication ---------------------------------------------------------------
    def authenticate(self, path: str, headers: Headers, body: bytes) -> Caller:
        def secret_for(access_key_id: str) -> str | None:
            identity = self._by_key.get(access_key_id)
            return identity.secret_access_key if identity else None

        try:
            info = verify_request(
                profile=KMS_PROFILE, method="POST", path=path, headers=headers, body=body, secret_for=secret_for,
                now=self._clock(),
            )
        except SignatureError as exc:
            raise KmsApiError(exc.code, exc.message) from None
        identity = self._by_key[info.access_key_id]
        return Caller(identity=identity, region=info.region, iam_admin=identity.name in self._iam_admins)

    # ----- attestation ------------------------------------------------------------------
    def _recipient(self, raw: Any) -> _Recipient:
        if not isinstance(raw, dict):
            raise KmsApiError("ValidationException", "Recipient must be an object")
        if raw.get("KeyEncryptionAlgorithm") != KEY_ENCRYPTION_ALGORITHM:
            raise KmsApiError(
                "ValidationException", f"Recipient.KeyEncryptionAlgorithm must be {KEY_ENCRYPTION_ALGORITHM}"
            )
        document = _b64(raw.get("AttestationDocument"), "Recipient.AttestationDocument")
        try:
            doc = verify_document(
                document,
                root_der=self._root_der,
                at=self._clock(),
                # Debug documents verify (as on AWS); their zero PCRs then fail the key policy.
                policy=AttestationPolicy(allow_debug=True, max_age=self._max_age),
            )
        except AttestationError as exc:
            raise KmsApiError(
                "AccessDeniedException", f"the attestation document in Recipient is not valid: {exc}"
            ) from None
        if not doc.public_key:
            raise KmsApiError("ValidationException", "the attestation document carries no public_key")
        try:
            public_key = load_der_public_key(doc.public_key)
        except (ValueError, TypeError):
            raise KmsApiError(
                "ValidationException", "the attestation public_key is not a DER SubjectPublicKeyInfo"
            ) from None
        if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size != 2048:
            raise KmsApiError("ValidationException", "the attestation public_key must be RSA-2048")
        attestation = {f"PCR{index}": value.hex() for index, value in doc.pcrs.items()}
        if "PCR0" in attestation:
            attestation["ImageSha384"] = attestation["PCR0"]
        return _Recipient(public_key_der=doc.public_key, attestation=attestation)

    # ----- keys and policy --------------------------------------------------------------
    def _resolve_key(self, key_id: Any, caller: Caller) -> str:
        if not isinstance(key_id, str) or not key_id:
            raise KmsApiError("ValidationException", "KeyId is required")
        answer = self._upstream.json_call(
            "DescribeKey", {"KeyId": key_id}, region=caller.region, account=caller.identity.account_id
        )
        arn = answer.get("KeyMetadata", {}).get("Arn")
        if not isinstance(arn, str):
            raise KmsApiError("KMSInternalException", "upstream DescribeKey gave no key ARN", 500)
        return arn

    def _authorise(
        self,
        caller: Caller,
        operation: str,
        key_arn: str,
        *,
        context: Mapping[str, str] | None = None,
        recipient: _Recipient | None = None,
    ) -> None:
        answer = self._upstream.json_call(
            "GetKeyPolicy",
            {"KeyId": key_arn, "PolicyName": "default"},
            region=caller.region,
            account=caller.identity.account_id,
        )
        action = f"kms:{operation}"
        request = RequestContext(
            principal_arn=caller.identity.principal_arn,
            caller_account=caller.identity.account_id,
            action=action,
            resource_arn=key_arn,
            encryption_context=dict(context or {}),
            attestation=recipient.attestation if recipient else None,
            iam_allows=caller.iam_admin,
        )
        try:
            result = parse_policy(str(answer.get("Policy", ""))).evaluate(request)
        except PolicyNotUnderstood as exc:
            log.warning("deny %s %s on %s: key policy not understood: %s", caller.identity.name, action, key_arn, exc)
            raise KmsApiError(
                "AccessDeniedException",
                f"User: {caller.identity.principal_arn} is not authorized to perform: {action} on resource: "
                f"{key_arn} (the local gateway does not understand the key policy and fails closed: {exc})",
            ) from None
        log.info(
            "%s %s %s on %s: %s",
            "allow" if result.allowed else "deny",
            caller.identity.name,
            action,
            key_arn,
            result.reason,
        )
        if not result.allowed:
            why = (
                "with an explicit deny"
                if result.decision is Decision.EXPLICIT_DENY
                else "because no key policy statement allows it"
            )
            raise KmsApiError(
                "AccessDeniedException",
                f"User: {caller.identity.principal_arn} is not authorized to perform: {action} on resource: "
                f"{key_arn} {why}",
            )

    def _check_new_policy(self, caller: Caller, params: Mapping[str, Any], key_arn: str) -> None:
        raw = params.get("Policy")
        if raw is None:
            return
        if not isinstance(raw, str):
            raise KmsApiError("MalformedPolicyDocumentException", "Policy must be a JSON string")
        try:
            parsed = parse_policy(raw)
        except PolicyNotUnderstood as exc:
            raise KmsApiError(
                "MalformedPolicyDocumentException", f"the local gateway cannot enforce this policy: {exc}"
            ) from None
        if params.get("BypassPolicyLockoutSafetyCheck") is True:
            return
        lockout = RequestContext(
            principal_arn=caller.identity.principal_arn,
            caller_account=caller.identity.account_id,
            action="kms:PutKeyPolicy",
            resource_arn=key_arn,
            iam_allows=caller.iam_admin,
        )
        if not parsed.evaluate(lockout).allowed:
            raise KmsApiError(
                "MalformedPolicyDocumentException",
                "The new key policy will not allow you to update the key policy in the future.",
            )

    # ----- dispatch ---------------------------------------------------------------------
    def handle(self, operation: str, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        region, account = caller.region, caller.identity.account_id
        recipient = None
        if "Recipient" in params:
            if operation not in ATTESTABLE_OPS:
                raise KmsApiError("ValidationException", f"Recipient is not supported for {operation}")
            recipient = self._recipient(params.pop("Recipient"))

        if operation == "Decrypt":
            return self._decrypt(caller, params, recipient)
        if operation in DATA_OPS:
            context = _encryption_context(params)
            key_arn = self._resolve_key(params.get("KeyId"), caller)
            self._authorise(caller, operation, key_arn, context=context, recipient=recipient)
            answer = self._upstream.json_call(operation, {**params, "KeyId": key_arn}, region=region, account=account)
            return self._wrap(answer, recipient)
        if operation in KEY_READ_OPS or operation in MANAGEMENT_OPS or operation == "PutKeyPolicy":
            key_arn = self._resolve_key(params.get("KeyId"), caller)
            self._authorise(caller, operation, key_arn)
            if operation == "PutKeyPolicy":
                self._check_new_policy(caller, params, key_arn)
            return self._upstream.json_call(operation, params, region=region, account=account)
        if operation in IAM_ADMIN_OPS:
            if not caller.iam_admin:
                raise KmsApiError(
                    "AccessDeniedException",
                    f"User: {caller.identity.principal_arn} is not authorized to perform: kms:{operation} "
                    "(no identity-based policy allows it)",
                )
            if operation == "CreateKey":
                self._check_new_policy(caller, params, f"arn:aws:kms:{region}:{account}:key/new")
            return self._upstream.json_call(operation, params, region=region, account=account)
        raise KmsApiError(
            "AccessDeniedException", f"kms:{operation} is not supported by the local attested-KMS gateway (denied)"
        )

    def _decrypt(self, caller: Caller, params: dict[str, Any], recipient: _Recipient | None) -> dict[str, Any]:
        context = _encryption_context(params)
        requested = self._resolve_key(params["KeyId"], caller) if params.get("KeyId") is not None else None
        # moto knows which key a ciphertext belongs to; authorise against *that* key's policy
        # (a KeyId naming another key must not lend its policy to this ciphertext). The KeyId
        # check is ours, so the caller gets KMS's IncorrectKeyException rather than moto's error.
        upstream_params = {k: v for k, v in params.items() if k != "KeyId"}
        answer = self._upstream.json_call(
            "Decrypt", upstream_params, region=caller.region, account=caller.identity.account_id
        )
        used = answer.get("KeyId")
        if not isinstance(used, str):
            raise KmsApiError("KMSInternalException", "upstream Decrypt gave no KeyId", 500)
        used_arn = self._resolve_key(used, caller)
        if requested is not None and used_arn != requested:
            raise KmsApiError(
                "IncorrectKeyException", "The key ID in the request does not identify the key used to encrypt"
            )
        self._authorise(caller, "Decrypt", used_arn, context=context, recipient=recipient)
        return self._wrap(answer, recipient)

    @staticmethod
    def _wrap(answer: dict[str, Any], recipient: _Recipient | None) -> dict[str, Any]:
        if recipient is None:
            return answer
        plaintext_b64 = answer.pop("Plaintext", None)
        if plaintext_b64 is None:
            raise KmsApiError("KMSInternalException", "upstream answer has no Plaintext to wrap", 500)
        try:
            envelope = build_enveloped_data(_b64(plaintext_b64, "upstream Plaintext"), recipient.public_key_der)
        except CmsError as exc:
            raise KmsApiError("ValidationException", f"cannot wrap for the recipient: {exc}") from None
        answer["CiphertextForRecipient"] = base64.b64encode(envelope).decode()
        return answer
