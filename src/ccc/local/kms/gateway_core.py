"""Request processing of the local attested-KMS gateway, independent of HTTP.

Authenticate (SigV4 against the local identities), verify `Recipient`, evaluate the key policy
stored on the key (fail closed; then the key's grants), and perform the operation on the
gateway's own keys (`key_store`, `operations`): moto's KMS is not involved and holds no key of the
stack, so nothing reachable on the machine decrypts without this policy check. Attested answers
carry `CiphertextForRecipient` (CMS for the enclave's key) instead of `Plaintext`, as KMS's do.
`ccc.local.kms.gateway` puts this behind an HTTP server. Only metadata is logged (caller name,
operation, key ARN, decision): never plaintext or secrets.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ccc.attestation import AttestationPolicy, verify_document
from ccc.local.iam_users import LocalIdentity, check_identity_table
from ccc.local.kms import operations as ops
from ccc.local.kms.api_error import KmsApiError
from ccc.local.kms.key_store import KeyNotFound, KeyRecord, KeyStore
from ccc.local.kms.policy_eval import Decision, ParsedPolicy, PolicyNotUnderstood, RequestContext, parse_policy
from ccc.local.sigv4 import KMS_PROFILE, Headers, SignatureError, verify_request
from ccc_core.attestation.errors import AttestationError
from ccc_enclave.kms.cms import CmsError, build_enveloped_data

log = logging.getLogger("ccc.local.kms.gateway")

TARGET_PREFIX = "TrentService."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY_BYTES = 1 << 20
MAX_ATTESTATION_AGE = timedelta(minutes=5)
KEY_ENCRYPTION_ALGORITHM = "RSAES_OAEP_SHA_256"

# Operations that accept `Recipient` (the enclave's attested requests).
ATTESTABLE_OPS = frozenset({"Decrypt", "GenerateDataKey"})
# Key-scoped operations that only read: authorised by the key policy for kms:<Op>.
KEY_READ_OPS = frozenset(
    {"DescribeKey", "GetKeyPolicy", "ListKeyPolicies", "ListResourceTags", "GetKeyRotationStatus", "ListGrants"}
)
# Key-scoped operations that change the key: authorised by the key policy for kms:<Op>.
KEY_CHANGE_OPS = frozenset(
    {
        "PutKeyPolicy",
        "EnableKey",
        "DisableKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "TagResource",
        "UntagResource",
        "UpdateKeyDescription",
        "EnableKeyRotation",
        "DisableKeyRotation",
        "CreateGrant",
        "RevokeGrant",
    }
)
# Account-level operations, authorised by IAM: only identities with IAM admin rights (`iam_admins`).
IAM_ADMIN_OPS = frozenset({"CreateKey", "ListKeys", "ListAliases", "GenerateRandom"})
ALIAS_OPS = frozenset({"CreateAlias", "DeleteAlias", "UpdateAlias"})


def default_key_policy(partition: str, account: str) -> str:
    """KMS's default key policy (CreateKey without Policy): the account root, i.e. delegated to IAM."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )


@dataclass(frozen=True)
class Caller:
    identity: LocalIdentity
    region: str
    iam_admin: bool


@dataclass(frozen=True)
class _Recipient:
    public_key_der: bytes
    attestation: Mapping[str, str]


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


class GatewayCore:
    """Request processing, independent of HTTP: authenticate, authorise, perform, wrap."""

    def __init__(
        self,
        identities: Mapping[str, LocalIdentity],
        attestation_root_der: bytes,
        *,
        store: KeyStore | None = None,
        iam_admins: Iterable[str] = ("admin",),
        clock: Callable[[], datetime] | None = None,
        max_attestation_age: timedelta = MAX_ATTESTATION_AGE,
        partition: str = "aws",
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
        self.store = store if store is not None else KeyStore()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_age = max_attestation_age
        self._partition = partition

    # ----- authentication ---------------------------------------------------------------
    def authenticate(self, path: str, headers: Headers, body: bytes) -> Caller:
        def secret_for(access_key_id: str) -> str | None:
            identity = self._by_key.get(access_key_id)
            return identity.secret_access_key if identity else None

        try:
            info = verify_request(
                profile=KMS_PROFILE,
                method="POST",
                path=path,
                headers=headers,
                body=body,
                secret_for=secret_for,
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
    def _resolve(self, key_id: Any, caller: Caller, field: str = "KeyId") -> KeyRecord:
        if not isinstance(key_id, str) or not key_id:
            raise KmsApiError("ValidationException", f"{field} is required")
        try:
            return self.store.resolve(
                key_id, account=caller.identity.account_id, region=caller.region, partition=self._partition
            )
        except KeyNotFound as exc:
            raise KmsApiError("NotFoundException", str(exc)) from None

    def _key_of_blob(self, blob: bytes, requested: Any, caller: Caller, field: str) -> KeyRecord:
        """The key a ciphertext names; a KeyId naming another key is IncorrectKeyException (KMS)."""
        key = self.store.get(ops.blob_key_id(blob))
        if key is None:
            raise KmsApiError("InvalidCiphertextException", "")
        if requested is not None and self._resolve(requested, caller, field).key_id != key.key_id:
            raise KmsApiError(
                "IncorrectKeyException", "The key ID in the request does not identify the key used to encrypt"
            )
        return key

    def _request(
        self, caller: Caller, action: str, key_arn: str, context: Mapping[str, str], recipient: _Recipient | None
    ) -> RequestContext:
        return RequestContext(
            principal_arn=caller.identity.principal_arn,
            caller_account=caller.identity.account_id,
            action=action,
            resource_arn=key_arn,
            encryption_context=dict(context),
            attestation=recipient.attestation if recipient else None,
            iam_allows=caller.iam_admin,
        )

    def _denied(self, caller: Caller, action: str, key_arn: str, why: str) -> KmsApiError:
        return KmsApiError(
            "AccessDeniedException",
            f"User: {caller.identity.principal_arn} is not authorized to perform: {action} "
            f"on resource: {key_arn} {why}",
        )

    def _authorise(
        self,
        caller: Caller,
        operation: str,
        key: KeyRecord,
        *,
        context: Mapping[str, str] | None = None,
        recipient: _Recipient | None = None,
    ) -> None:
        """Key policy first (an explicit deny is final), then the key's grants (KMS's order)."""
        action = f"kms:{operation}"
        context = dict(context or {})
        try:
            result = parse_policy(key.policy).evaluate(self._request(caller, action, key.arn, context, recipient))
        except PolicyNotUnderstood as exc:
            log.warning("deny %s %s on %s: key policy not understood: %s", caller.identity.name, action, key.arn, exc)
            raise self._denied(
                caller,
                action,
                key.arn,
                f"(the local gateway does not understand the key policy and fails closed: {exc})",
            ) from None
        reason = result.reason
        allowed = result.allowed
        if result.decision is Decision.IMPLICIT_DENY:
            grant = ops.grant_allows(key, caller.identity.principal_arn, operation, context)
            if grant is not None:
                allowed, reason = True, f"allowed by grant {grant[:12]}..."
        log.info("%s %s %s on %s: %s", "allow" if allowed else "deny", caller.identity.name, action, key.arn, reason)
        if not allowed:
            why = (
                "with an explicit deny"
                if result.decision is Decision.EXPLICIT_DENY
                else "because no key policy statement or grant allows it"
            )
            raise self._denied(caller, action, key.arn, why)

    def _new_policy(self, caller: Caller, params: Mapping[str, Any], key_arn: str, *, default: str) -> str:
        """The policy to store: parsed by the evaluator (else refused) and past KMS's lockout check."""
        raw = params.get("Policy", default)
        if not isinstance(raw, str):
            raise KmsApiError("MalformedPolicyDocumentException", "Policy must be a JSON string")
        if len(raw.encode()) > 32768:
            raise KmsApiError("LimitExceededException", "the key policy exceeds 32 KiB")
        try:
            parsed: ParsedPolicy = parse_policy(raw)
        except PolicyNotUnderstood as exc:
            raise KmsApiError(
                "MalformedPolicyDocumentException", f"the local gateway cannot enforce this policy: {exc}"
            ) from None
        if params.get("BypassPolicyLockoutSafetyCheck") is not True:
            lockout = self._request(caller, "kms:PutKeyPolicy", key_arn, {}, None)
            if not parsed.evaluate(lockout).allowed:
                raise KmsApiError(
                    "MalformedPolicyDocumentException",
                    "The new key policy will not allow you to update the key policy in the future.",
                )
        return raw

    def _require_iam_admin(self, caller: Caller, operation: str) -> None:
        if not caller.iam_admin:
            raise KmsApiError(
                "AccessDeniedException",
                f"User: {caller.identity.principal_arn} is not authorized to perform: kms:{operation} "
                "because no identity-based policy allows it",
            )

    # ----- dispatch ---------------------------------------------------------------------
    def handle(self, operation: str, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        recipient = None
        if "Recipient" in params:
            if operation not in ATTESTABLE_OPS:
                raise KmsApiError("ValidationException", f"Recipient is not supported for {operation}")
            recipient = self._recipient(params.pop("Recipient"))
        if operation == "Decrypt":
            blob = ops.b64_field(params, "CiphertextBlob")
            assert blob is not None
            key = self._key_of_blob(blob, params.get("KeyId"), caller, "KeyId")
            self._authorise(caller, operation, key, context=ops.context_field(params), recipient=recipient)
            answer, plaintext = ops.decrypt(key, params)
            return self._with_plaintext(answer, plaintext, recipient)
        if operation in ("Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext"):
            key = self._resolve(params.get("KeyId"), caller)
            self._authorise(caller, operation, key, context=ops.context_field(params), recipient=recipient)
            if operation == "Encrypt":
                return ops.encrypt(key, params)
            answer, plaintext = ops.generate_data_key(key, params)
            if operation == "GenerateDataKeyWithoutPlaintext":
                return answer
            return self._with_plaintext(answer, plaintext, recipient)
        if operation == "ReEncrypt":
            return self._re_encrypt(caller, params)
        if operation in KEY_READ_OPS or operation in KEY_CHANGE_OPS:
            key = self._resolve(params.get("KeyId"), caller)
            self._authorise(caller, operation, key)
            return self._key_operation(operation, caller, key, params)
        if operation in ALIAS_OPS:
            return self._alias_operation(operation, caller, params)
        if operation in IAM_ADMIN_OPS:
            self._require_iam_admin(caller, operation)
            return self._account_operation(operation, caller, params)
        raise KmsApiError(
            "UnsupportedOperationException", f"{operation} is not supported by the local attested-KMS gateway"
        )

    def _re_encrypt(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        blob = ops.b64_field(params, "CiphertextBlob")
        assert blob is not None
        source = self._key_of_blob(blob, params.get("SourceKeyId"), caller, "SourceKeyId")
        destination = self._resolve(params.get("DestinationKeyId"), caller, "DestinationKeyId")
        self._authorise(caller, "ReEncryptFrom", source, context=ops.context_field(params, "SourceEncryptionContext"))
        self._authorise(
            caller, "ReEncryptTo", destination, context=ops.context_field(params, "DestinationEncryptionContext")
        )
        return ops.re_encrypt(source, destination, params)

    def _key_operation(self, operation: str, caller: Caller, key: KeyRecord, params: dict[str, Any]) -> dict[str, Any]:
        store = self.store
        if operation == "DescribeKey":
            return {"KeyMetadata": ops.key_metadata(key)}
        if operation == "GetKeyPolicy":
            name = params.get("PolicyName", "default")
            if name != "default":
                raise KmsApiError("NotFoundException", f"No such policy exists: {name}")
            return {"Policy": key.policy, "PolicyName": "default"}
        if operation == "ListKeyPolicies":
            return {"PolicyNames": ["default"], "Truncated": False}
        if operation == "ListResourceTags":
            return ops.list_resource_tags(key)
        if operation == "GetKeyRotationStatus":
            return {"KeyRotationEnabled": key.rotation_enabled, "KeyId": key.arn}
        if operation == "ListGrants":
            return ops.list_grants(key)
        if operation == "PutKeyPolicy":
            if params.get("PolicyName", "default") != "default":
                raise KmsApiError("ValidationException", "PolicyName must be default")
            if "Policy" not in params:
                raise KmsApiError("ValidationException", "Policy is required")
            return ops.put_key_policy(store, key, self._new_policy(caller, params, key.arn, default=""))
        if operation in ("EnableKey", "DisableKey"):
            return ops.set_enabled(store, key, operation == "EnableKey")
        if operation == "ScheduleKeyDeletion":
            return ops.schedule_key_deletion(store, key, params)
        if operation == "CancelKeyDeletion":
            return ops.cancel_key_deletion(store, key)
        if operation == "TagResource":
            return ops.tag_resource(store, key, params)
        if operation == "UntagResource":
            return ops.untag_resource(store, key, params)
        if operation == "UpdateKeyDescription":
            return ops.update_description(store, key, params)
        if operation in ("EnableKeyRotation", "DisableKeyRotation"):
            return ops.set_rotation(store, key, operation == "EnableKeyRotation")
        if operation == "CreateGrant":
            return ops.create_grant(store, key, params, caller.identity.account_id)
        if operation == "RevokeGrant":
            return ops.revoke_grant(store, key, params)
        raise KmsApiError("KMSInternalException", f"no handler for {operation}", 500)  # unreachable

    def _alias_operation(self, operation: str, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        """Alias changes need IAM permission for the alias and key-policy permission on each key."""
        self._require_iam_admin(caller, operation)
        account, region = caller.identity.account_id, caller.region
        name = ops.check_alias_name(params.get("AliasName"))
        if operation == "CreateAlias":
            key = self._resolve(params.get("TargetKeyId"), caller, "TargetKeyId")
            self._authorise(caller, operation, key)
            return ops.create_alias(self.store, name, key, account=account, region=region)
        alias = self.store.alias(name, account=account, region=region)
        if alias is None:
            raise KmsApiError(
                "NotFoundException", f"Alias arn:{self._partition}:kms:{region}:{account}:{name} is not found."
            )
        current = self.store.get(alias.target_key_id)
        if current is None:
            raise KmsApiError("NotFoundException", f"the key of alias {name} does not exist")
        self._authorise(caller, operation, current)
        if operation == "DeleteAlias":
            self.store.delete_alias(alias)
            return {}
        target = self._resolve(params.get("TargetKeyId"), caller, "TargetKeyId")
        self._authorise(caller, operation, target)
        self.store.delete_alias(alias)
        return ops.create_alias(self.store, name, target, account=account, region=region)

    def _account_operation(self, operation: str, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        account, region = caller.identity.account_id, caller.region
        if operation == "CreateKey":
            placeholder_arn = f"arn:{self._partition}:kms:{region}:{account}:key/new"
            policy = self._new_policy(
                caller, params, placeholder_arn, default=default_key_policy(self._partition, account)
            )
            return ops.create_key(
                self.store, params, partition=self._partition, region=region, account=account, policy=policy
            )
        if operation == "ListKeys":
            return ops.list_keys(self.store, account=account, region=region)
        if operation == "ListAliases":
            key = self._resolve(params["KeyId"], caller) if params.get("KeyId") is not None else None
            return ops.list_aliases(self.store, account=account, region=region, key=key)
        if operation == "GenerateRandom":
            count = params.get("NumberOfBytes")
            if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1024:
                raise KmsApiError("ValidationException", "NumberOfBytes must be an integer from 1 to 1024")
            return {"Plaintext": base64.b64encode(os.urandom(count)).decode()}
        raise KmsApiError("KMSInternalException", f"no handler for {operation}", 500)  # unreachable

    @staticmethod
    def _with_plaintext(answer: dict[str, Any], plaintext: bytes, recipient: _Recipient | None) -> dict[str, Any]:
        """Plaintext for ordinary callers; for attested ones only CMS for the enclave's key, as KMS answers."""
        if recipient is None:
            return {**answer, "Plaintext": base64.b64encode(plaintext).decode()}
        try:
            envelope = build_enveloped_data(plaintext, recipient.public_key_der)
        except CmsError as exc:
            raise KmsApiError("ValidationException", f"cannot wrap for the recipient: {exc}") from None
        return {**answer, "CiphertextForRecipient": base64.b64encode(envelope).decode()}
