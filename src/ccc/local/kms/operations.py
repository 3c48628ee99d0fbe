"""KMS operations on the gateway's own keys: request validation, key states, answers as KMS gives them.

Why separate from `gateway_core`: this module is *what* KMS does with a key (after the request
was authorised); `gateway_core` decides *whether* the caller may. Every function takes the key the
gateway already resolved and authorised, and returns the JSON answer of the KMS API (field names,
error codes and key-state rules of the AWS KMS API reference, for the subset the project, boto3
and the ESDK use: symmetric SYMMETRIC_DEFAULT keys only).
"""

from __future__ import annotations

import base64
import binascii
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

from ccc.local.kms.api_error import KmsApiError
from ccc.local.kms.ciphertext import BlobHeader, InvalidCiphertext, open_blob, read_header, seal
from ccc.local.kms.context_binding import EncryptionContextError, validate_context
from ccc.local.kms.key_store import (
    ALIAS_NAME_RE,
    DISABLED,
    ENABLED,
    PENDING_DELETION,
    Alias,
    Grant,
    KeyRecord,
    KeyStore,
)

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
MAX_PLAINTEXT_BYTES = 4096
MAX_CIPHERTEXT_BYTES = 6144
DATA_KEY_SPECS = {"AES_256": 32, "AES_128": 16}
GRANT_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
    }
)


# ----- request fields -------------------------------------------------------------------------


def b64_field(params: Mapping[str, Any], name: str, *, required: bool = True) -> bytes | None:
    value = params.get(name)
    if value is None:
        if required:
            raise KmsApiError("ValidationException", f"{name} is required")
        return None
    if not isinstance(value, str):
        raise KmsApiError("ValidationException", f"{name} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KmsApiError("ValidationException", f"{name} is not valid base64") from None


def context_field(params: Mapping[str, Any], name: str = "EncryptionContext") -> dict[str, str]:
    try:
        return validate_context(params.get(name))
    except EncryptionContextError as exc:
        raise KmsApiError("ValidationException", f"{name}: {exc}") from None


def string_field(params: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = params.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise KmsApiError("ValidationException", f"{name} is required and must be a non-empty string")
    return value


def _algorithm(params: Mapping[str, Any], name: str = "EncryptionAlgorithm") -> None:
    algorithm = params.get(name, SYMMETRIC_DEFAULT)
    if algorithm != SYMMETRIC_DEFAULT:
        raise KmsApiError("InvalidKeyUsageException", f"{name} {algorithm!r} is not valid for a symmetric key")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ----- key state ------------------------------------------------------------------------------


def require_usable(key: KeyRecord) -> None:
    """Cryptographic operations need an Enabled key (KMS: DisabledException / KMSInvalidStateException)."""
    if key.state == DISABLED:
        raise KmsApiError("DisabledException", f"{key.arn} is disabled.")
    if key.state == PENDING_DELETION:
        raise KmsApiError("KMSInvalidStateException", f"{key.arn} is pending deletion.")


def key_metadata(key: KeyRecord) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "AWSAccountId": key.account,
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": key.creation_date,
        "Enabled": key.state == ENABLED,
        "Description": key.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": key.state,
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": SYMMETRIC_DEFAULT,
        "KeySpec": SYMMETRIC_DEFAULT,
        "EncryptionAlgorithms": [SYMMETRIC_DEFAULT],
        "MultiRegion": False,
    }
    if key.deletion_date is not None:
        metadata["DeletionDate"] = key.deletion_date
        metadata["PendingDeletionWindowInDays"] = key.pending_window_days
    return metadata


# ----- cryptography ---------------------------------------------------------------------------


def _seal(key: KeyRecord, plaintext: bytes, context: Mapping[str, str]) -> bytes:
    material = key.material(key.current_version)
    assert material is not None  # a key always has its current material
    return seal(material, BlobHeader(key.key_id, key.current_version), plaintext, context)


def blob_key_id(blob: bytes) -> str:
    """The key a ciphertext blob names (not yet authenticated), or InvalidCiphertextException."""
    try:
        return read_header(blob).key_id
    except InvalidCiphertext:
        raise KmsApiError("InvalidCiphertextException", "the ciphertext is not a KMS ciphertext blob") from None


def open_for(key: KeyRecord, blob: bytes, context: Mapping[str, str]) -> bytes:
    require_usable(key)
    try:
        header = read_header(blob)
        material = key.material(header.material_version)
        if header.key_id != key.key_id or material is None:
            raise InvalidCiphertext("the ciphertext is not of this key")
        return open_blob(material, blob, context)
    except InvalidCiphertext:
        # KMS says nothing more: a wrong context and a damaged blob look the same.
        raise KmsApiError("InvalidCiphertextException", "") from None


def encrypt(key: KeyRecord, params: Mapping[str, Any]) -> dict[str, Any]:
    plaintext = b64_field(params, "Plaintext")
    assert plaintext is not None
    if not 1 <= len(plaintext) <= MAX_PLAINTEXT_BYTES:
        raise KmsApiError("ValidationException", f"Plaintext must be 1 to {MAX_PLAINTEXT_BYTES} bytes")
    _algorithm(params)
    require_usable(key)
    blob = _seal(key, plaintext, context_field(params))
    return {"CiphertextBlob": _b64(blob), "KeyId": key.arn, "EncryptionAlgorithm": SYMMETRIC_DEFAULT}


def decrypt(key: KeyRecord, params: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The answer without the plaintext, and the plaintext (the gateway adds it or wraps it)."""
    blob = b64_field(params, "CiphertextBlob")
    assert blob is not None
    _algorithm(params)
    plaintext = open_for(key, blob, context_field(params))
    return {"KeyId": key.arn, "EncryptionAlgorithm": SYMMETRIC_DEFAULT}, plaintext


def data_key_length(params: Mapping[str, Any]) -> int:
    spec, count = params.get("KeySpec"), params.get("NumberOfBytes")
    if (spec is None) == (count is None):
        raise KmsApiError("ValidationException", "exactly one of KeySpec and NumberOfBytes is required")
    if spec is not None:
        if spec not in DATA_KEY_SPECS:
            raise KmsApiError("ValidationException", f"KeySpec must be one of {sorted(DATA_KEY_SPECS)}")
        return DATA_KEY_SPECS[spec]
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1024:
        raise KmsApiError("ValidationException", "NumberOfBytes must be an integer from 1 to 1024")
    return count


def generate_data_key(key: KeyRecord, params: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
    """GenerateDataKey(WithoutPlaintext): the answer without the plaintext, and the plaintext."""
    length = data_key_length(params)
    require_usable(key)
    plaintext = os.urandom(length)
    blob = _seal(key, plaintext, context_field(params))
    return {"CiphertextBlob": _b64(blob), "KeyId": key.arn}, plaintext


def re_encrypt(source: KeyRecord, destination: KeyRecord, params: Mapping[str, Any]) -> dict[str, Any]:
    blob = b64_field(params, "CiphertextBlob")
    assert blob is not None
    _algorithm(params, "SourceEncryptionAlgorithm")
    _algorithm(params, "DestinationEncryptionAlgorithm")
    plaintext = open_for(source, blob, context_field(params, "SourceEncryptionContext"))
    require_usable(destination)
    new_blob = _seal(destination, plaintext, context_field(params, "DestinationEncryptionContext"))
    return {
        "CiphertextBlob": _b64(new_blob),
        "SourceKeyId": source.arn,
        "KeyId": destination.arn,
        "SourceEncryptionAlgorithm": SYMMETRIC_DEFAULT,
        "DestinationEncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }


# ----- key creation and management ------------------------------------------------------------


def _tags(params: Mapping[str, Any]) -> dict[str, str]:
    raw = params.get("Tags", [])
    if not isinstance(raw, list):
        raise KmsApiError("ValidationException", "Tags must be a list")
    tags: dict[str, str] = {}
    for tag in raw:
        if (
            not isinstance(tag, dict)
            or not isinstance(tag.get("TagKey"), str)
            or not isinstance(tag.get("TagValue"), str)
        ):
            raise KmsApiError("TagException", "each tag needs a string TagKey and TagValue")
        if tag["TagKey"].startswith("aws:"):
            raise KmsApiError("TagException", "tag keys may not start with aws:")
        tags[tag["TagKey"]] = tag["TagValue"]
    return tags


def create_key(
    store: KeyStore, params: Mapping[str, Any], *, partition: str, region: str, account: str, policy: str
) -> dict[str, Any]:
    for name, allowed in (
        ("KeySpec", SYMMETRIC_DEFAULT),
        ("CustomerMasterKeySpec", SYMMETRIC_DEFAULT),
        ("KeyUsage", "ENCRYPT_DECRYPT"),
        ("Origin", "AWS_KMS"),
    ):
        if params.get(name, allowed) != allowed:
            raise KmsApiError(
                "UnsupportedOperationException",
                f"the local KMS gateway makes only {allowed} keys ({name} {params.get(name)!r})",
            )
    if params.get("MultiRegion") is True:
        raise KmsApiError("UnsupportedOperationException", "multi-Region keys are not modelled locally")
    description = params.get("Description", "")
    if not isinstance(description, str) or len(description) > 8192:
        raise KmsApiError("ValidationException", "Description must be a string of at most 8192 characters")
    record = store.create_key(
        partition=partition,
        region=region,
        account=account,
        policy=policy,
        description=description,
        tags=_tags(params),
    )
    return {"KeyMetadata": key_metadata(record)}


def put_key_policy(store: KeyStore, key: KeyRecord, policy: str) -> dict[str, Any]:
    with store.mutate():
        key.policy = policy
    return {}


def set_enabled(store: KeyStore, key: KeyRecord, enabled: bool) -> dict[str, Any]:
    with store.mutate():
        if key.state == PENDING_DELETION:
            raise KmsApiError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
        key.state = ENABLED if enabled else DISABLED
    return {}


def schedule_key_deletion(store: KeyStore, key: KeyRecord, params: Mapping[str, Any]) -> dict[str, Any]:
    days = params.get("PendingWindowInDays", 30)
    if not isinstance(days, int) or isinstance(days, bool) or not 7 <= days <= 30:
        raise KmsApiError("ValidationException", "PendingWindowInDays must be an integer from 7 to 30")
    with store.mutate():
        if key.state == PENDING_DELETION:
            raise KmsApiError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
        key.state = PENDING_DELETION
        key.pending_window_days = days
        key.deletion_date = time.time() + days * 86400
    return {
        "KeyId": key.arn,
        "DeletionDate": key.deletion_date,
        "KeyState": PENDING_DELETION,
        "PendingWindowInDays": days,
    }


def cancel_key_deletion(store: KeyStore, key: KeyRecord) -> dict[str, Any]:
    with store.mutate():
        if key.state != PENDING_DELETION:
            raise KmsApiError("KMSInvalidStateException", f"{key.arn} is not pending deletion.")
        key.state, key.deletion_date, key.pending_window_days = DISABLED, None, None
    return {"KeyId": key.arn}


def tag_resource(store: KeyStore, key: KeyRecord, params: Mapping[str, Any]) -> dict[str, Any]:
    tags = _tags(params)
    with store.mutate():
        key.tags.update(tags)
    return {}


def untag_resource(store: KeyStore, key: KeyRecord, params: Mapping[str, Any]) -> dict[str, Any]:
    names = params.get("TagKeys")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise KmsApiError("ValidationException", "TagKeys must be a list of strings")
    with store.mutate():
        for name in names:
            key.tags.pop(name, None)
    return {}


def list_resource_tags(key: KeyRecord) -> dict[str, Any]:
    return {"Tags": [{"TagKey": k, "TagValue": v} for k, v in sorted(key.tags.items())], "Truncated": False}


def update_description(store: KeyStore, key: KeyRecord, params: Mapping[str, Any]) -> dict[str, Any]:
    description = params.get("Description")
    if not isinstance(description, str):
        raise KmsApiError("ValidationException", "Description is required")
    with store.mutate():
        key.description = description
    return {}


def set_rotation(store: KeyStore, key: KeyRecord, enabled: bool) -> dict[str, Any]:
    require_usable(key)
    with store.mutate():
        key.rotation_enabled = enabled
    return {}


# ----- grants ---------------------------------------------------------------------------------


def _constraints(params: Mapping[str, Any]) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    raw = params.get("Constraints")
    if raw is None:
        return None, None
    if not isinstance(raw, dict) or set(raw) - {"EncryptionContextEquals", "EncryptionContextSubset"}:
        raise KmsApiError("ValidationException", "Constraints takes EncryptionContextEquals / EncryptionContextSubset")
    equals = context_field(raw, "EncryptionContextEquals") if "EncryptionContextEquals" in raw else None
    subset = context_field(raw, "EncryptionContextSubset") if "EncryptionContextSubset" in raw else None
    return equals, subset


def create_grant(store: KeyStore, key: KeyRecord, params: Mapping[str, Any], issuing_account: str) -> dict[str, Any]:
    grantee = string_field(params, "GranteePrincipal")
    operations = params.get("Operations")
    if not isinstance(operations, list) or not operations or not set(operations) <= GRANT_OPERATIONS:
        raise KmsApiError("ValidationException", f"Operations must be a non-empty list of {sorted(GRANT_OPERATIONS)}")
    equals, subset = _constraints(params)
    if key.state == PENDING_DELETION:
        raise KmsApiError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
    grant = Grant(
        grant_id=uuid.uuid4().hex + uuid.uuid4().hex,
        grantee_principal=str(grantee),
        operations=sorted(set(operations)),
        issuing_account=issuing_account,
        name=str(params.get("Name", "")),
        retiring_principal=string_field(params, "RetiringPrincipal", required=False),
        context_equals=equals,
        context_subset=subset,
        creation_date=time.time(),
    )
    with store.mutate():
        key.grants.append(grant)
    return {"GrantId": grant.grant_id, "GrantToken": _b64(grant.grant_id.encode())}


def list_grants(key: KeyRecord) -> dict[str, Any]:
    grants = []
    for grant in key.grants:
        entry: dict[str, Any] = {
            "KeyId": key.arn,
            "GrantId": grant.grant_id,
            "Name": grant.name,
            "CreationDate": grant.creation_date,
            "GranteePrincipal": grant.grantee_principal,
            "IssuingAccount": f"arn:aws:iam::{grant.issuing_account}:root",
            "Operations": grant.operations,
        }
        if grant.retiring_principal:
            entry["RetiringPrincipal"] = grant.retiring_principal
        if grant.context_equals is not None or grant.context_subset is not None:
            entry["Constraints"] = {
                k: v
                for k, v in (
                    ("EncryptionContextEquals", grant.context_equals),
                    ("EncryptionContextSubset", grant.context_subset),
                )
                if v is not None
            }
        grants.append(entry)
    return {"Grants": grants, "Truncated": False}


def revoke_grant(store: KeyStore, key: KeyRecord, params: Mapping[str, Any]) -> dict[str, Any]:
    grant_id = string_field(params, "GrantId")
    with store.mutate():
        before = len(key.grants)
        key.grants = [g for g in key.grants if g.grant_id != grant_id]
        if len(key.grants) == before:
            raise KmsApiError("NotFoundException", f"Grant ID {grant_id} not found")
    return {}


def grant_allows(key: KeyRecord, principal_arn: str, operation: str, context: Mapping[str, str]) -> str | None:
    """The id of a grant on `key` that lets `principal_arn` do `operation` with `context`, if any.

    Grant constraints compare context KEYS case-insensitively and values exactly (KMS API reference,
    GrantConstraints).
    """
    folded = {k.lower(): v for k, v in context.items()}
    for grant in key.grants:
        if grant.grantee_principal != principal_arn or operation not in grant.operations:
            continue
        if grant.context_equals is not None and {k.lower(): v for k, v in grant.context_equals.items()} != folded:
            continue
        if grant.context_subset is not None and any(
            folded.get(k.lower()) != v for k, v in grant.context_subset.items()
        ):
            continue
        return grant.grant_id
    return None


# ----- aliases and listings -------------------------------------------------------------------


def check_alias_name(name: Any) -> str:
    if not isinstance(name, str) or not ALIAS_NAME_RE.fullmatch(name) or name.startswith("alias/aws/"):
        raise KmsApiError("ValidationException", f"alias name {name!r} must be alias/<name> (not alias/aws/...)")
    return name


def create_alias(store: KeyStore, name: str, key: KeyRecord, *, account: str, region: str) -> dict[str, Any]:
    if store.alias(name, account=account, region=region) is not None:
        raise KmsApiError(
            "AlreadyExistsException", f"An alias with the name arn:aws:kms:{region}:{account}:{name} already exists"
        )
    if key.account != account or key.region != region:
        raise KmsApiError("ValidationException", "an alias must be in the account and Region of its key")
    store.put_alias(Alias(name=name, partition=key.partition, region=region, account=account, target_key_id=key.key_id))
    return {}


def list_keys(store: KeyStore, *, account: str, region: str) -> dict[str, Any]:
    return {"Keys": [{"KeyId": k.key_id, "KeyArn": k.arn} for k in store.keys_of(account, region)], "Truncated": False}


def list_aliases(store: KeyStore, *, account: str, region: str, key: KeyRecord | None) -> dict[str, Any]:
    aliases = [
        {"AliasName": a.name, "AliasArn": a.arn, "TargetKeyId": a.target_key_id}
        for a in store.aliases_of(account, region)
        if key is None or a.target_key_id == key.key_id
    ]
    return {"Aliases": aliases, "Truncated": False}
