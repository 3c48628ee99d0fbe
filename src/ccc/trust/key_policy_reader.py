"""What the tenant's data key releases to, read from the key's own policy with the tenant's credentials.

Why the key policy: it is what KMS enforces -- the enclaves it names are the only ones that can get
the tenant's key material -- so it is the one source of truth on the tenant's side for which
releases may produce results (`ccc trust init` proposes them, `ccc trust audit` compares against the
pins). The policy is parsed by `ccc_common.domain.key_policy.releases_from_key_policy`, the same
module that builds it.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions

from ccc.trust.audit import KeyRelease
from ccc.trust.errors import TrustError
from ccc_common.domain.key_policy import KeyPolicyError, releases_from_key_policy

MAX_POLICY_CHARS = 32 * 1024  # KMS caps a key policy at 32 KiB


class KeyPolicyUnreadable(TrustError):
    """GetKeyPolicy failed (no permission, no such key, no network) or returned something unusable."""


def key_releases(kms: Any, key_arn: str) -> tuple[KeyRelease, ...]:
    """GetKeyPolicy(`key_arn`, "default") as the caller, then the releases its attested statements name."""
    try:
        text = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise KeyPolicyUnreadable(f"cannot read the policy of {key_arn}: {code}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise KeyPolicyUnreadable(f"cannot reach KMS for {key_arn}: {type(exc).__name__}") from None
    if not isinstance(text, str) or len(text) > MAX_POLICY_CHARS:
        raise KeyPolicyUnreadable(f"the policy of {key_arn} is not a key policy")
    try:
        policy = json.loads(text)
        approved = releases_from_key_policy(policy)
    except (ValueError, KeyPolicyError) as exc:
        raise KeyPolicyUnreadable(f"the policy of {key_arn} cannot be read as releases: {exc}") from None
    return tuple(KeyRelease(release_id=release.release_id, pcrs=dict(release.pcrs)) for release in approved)
