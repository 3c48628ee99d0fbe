"""The local jobs API front: the proxy event it builds for a verified caller.

The SigV4 (execute-api) verification it runs first is `ccc.local.sigv4`, tested in
tests/unit/test_sigv4.py with the KMS gateway's profile.
"""

from __future__ import annotations

from ccc.local.api_server import Caller, proxy_event

AKID = "AKIAEXAMPLE000000001"


def test_proxy_event_names_the_verified_caller_and_route():
    caller = Caller("tenant-a", "arn:aws:iam::123456789012:role/ccc-local-tenant-a", AKID)
    event = proxy_event(
        method="GET", raw_path="/jobs/" + "ab" * 16, headers={"authorization": "secret-ish", "host": "h"},
        body=b"", caller=caller, account="123456789012",
    )
    assert event["requestContext"]["identity"]["userArn"] == caller.principal_arn
    assert event["resource"] == "/jobs/{job_id}" and event["pathParameters"] == {"job_id": "ab" * 16}
    assert "authorization" not in event["headers"]
