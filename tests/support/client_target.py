"""A client `Target` that reaches nothing: for tests that drive `CccClient` with fake stores."""

from __future__ import annotations

from ccc.client.target import Target

UNREACHABLE_API = "https://api.invalid"


def offline_target(*, api_url: str | None = UNREACHABLE_API) -> Target:
    """Local stage, made-up buckets, no AWS session; `api_url=None` makes the client use S3 directly."""
    return Target(
        description="t",
        stage="local",
        region="eu-west-1",
        inbox_bucket="in",
        results_bucket="out",
        session_factory=lambda tenant: None,
        api_url=api_url,
    )
