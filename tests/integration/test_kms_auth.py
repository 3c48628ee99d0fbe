"""The local identity table (the SigV4 verification that uses it is tested in tests/unit/test_sigv4.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ccc.local.iam_users import (
    DEFAULT_NAMES,
    IdentityError,
    LocalIdentity,
    default_identities,
    identities_from_dict,
    identities_to_dict,
)

AKID = "AKIAABCDEFGHIJKLMNOP"
SECRET = "s3cr3t-s3cr3t-s3cr3t-s3cr3t"


# --- identities ---------------------------------------------------------------------------------


def test_default_identities_are_distinct_random_and_round_trip() -> None:
    first, second = default_identities("111122223333"), default_identities("111122223333")
    assert tuple(first) == DEFAULT_NAMES
    assert len({i.access_key_id for i in first.values()}) == len(DEFAULT_NAMES)
    assert {i.secret_access_key for i in first.values()}.isdisjoint(i.secret_access_key for i in second.values())
    assert first["parent"].principal_arn == "arn:aws:iam::111122223333:role/ccc-local-parent-instance"
    # The operator's identities share the operator account; each tenant has an account of its own
    # (a tenant-owned key names principals of the tenant's account, never the operator's).
    assert first["admin"].account_id == "111122223333"
    tenant_accounts = {first[t].account_id for t in ("tenant-a", "tenant-b")}
    assert len(tenant_accounts) == 2 and "111122223333" not in tenant_accounts
    assert identities_from_dict(identities_to_dict(first)) == first
    assert first["admin"].secret_access_key not in repr(first)


@pytest.mark.parametrize(
    "record",
    [
        {
            "name": "Admin",
            "principal_arn": "arn:aws:iam::111122223333:role/x",
            "access_key_id": AKID,
            "secret_access_key": SECRET,
        },
        {"name": "a", "principal_arn": "arn:aws:iam::1:role/x", "access_key_id": AKID, "secret_access_key": SECRET},
        {
            "name": "a",
            "principal_arn": "arn:aws:iam::111122223333:root",
            "access_key_id": AKID,
            "secret_access_key": SECRET,
        },
        {
            "name": "a",
            "principal_arn": "arn:aws:iam::111122223333:role/x",
            "access_key_id": "short",
            "secret_access_key": SECRET,
        },
        {
            "name": "a",
            "principal_arn": "arn:aws:iam::111122223333:role/x",
            "access_key_id": AKID,
            "secret_access_key": "short",
        },
        {"name": "a"},
        "not a mapping",
    ],
)
def test_malformed_identities_are_refused(record: Any) -> None:
    with pytest.raises(IdentityError):
        identities_from_dict({"a": record})


def test_identity_tables_must_be_consistent() -> None:
    ident = LocalIdentity("a", "arn:aws:iam::111122223333:role/x", AKID, SECRET)
    with pytest.raises(IdentityError, match="named"):
        identities_from_dict({"b": ident.to_dict()})
    twin = {**ident.to_dict(), "name": "b"}
    with pytest.raises(IdentityError, match="twice"):
        identities_from_dict({"a": ident.to_dict(), "b": twin})
    with pytest.raises(IdentityError):
        default_identities("not-an-account")
