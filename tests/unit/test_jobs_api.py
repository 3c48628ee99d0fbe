"""Jobs API logic: tenant isolation, routing, validation (in-memory store, fake presigner)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_common.domain.jobs import JobEvent, JobStatus
from ccc_common.domain.jobs_api import (
    ApiRequest,
    JobsApi,
    JobsService,
    TenantDirectory,
)
from ccc_common.domain.storage_ports import Presigner, ResultDigests
from ccc_common.domain.upload_window import NEVER_UPLOADED, UPLOAD_GRACE_S
from ccc_core.identity import CTX_JOB, CTX_TENANT
from tests.support.fake_job_store import InMemoryJobStore

INBOX = "ccc-local-inbox-111122223333-eu-west-1"
RESULTS = "ccc-local-results-111122223333-eu-west-1"
ALICE = "arn:aws:iam::111122223333:user/alice"
ROLE_A = "arn:aws:iam::111122223333:role/ccc-tenant-a-client"
SESSION_A = "arn:aws:sts::111122223333:assumed-role/ccc-tenant-a-client/cli-session"
BOB = "arn:aws:iam::111122223333:user/bob"
PRINCIPALS = {ALICE: "tenant-a", ROLE_A: "tenant-a", BOB: "tenant-b"}


class FakePresigner(Presigner):
    def presign_put(self, bucket: str, key: str, expires_in: int) -> str:
        return f"https://{bucket}.s3/{key}?put&exp={expires_in}"

    def presign_get(self, bucket: str, key: str, expires_in: int) -> str:
        return f"https://{bucket}.s3/{key}?get&exp={expires_in}"

    def presign_post(self, bucket: str, key: str, expires_in: int, max_bytes: int) -> dict[str, Any]:
        return {"url": f"https://{bucket}.s3/", "fields": {"key": key}}


class FakeResultDigests(ResultDigests):
    """The digests the result objects declare, by key (what the S3 adapter reads with a HEAD)."""

    def __init__(self) -> None:
        self.declared: dict[str, str] = {}

    def result_digest(self, bucket: str, key: str) -> str | None:
        return self.declared.get(key)


DIGESTS = FakeResultDigests()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def make_api(ids=None) -> tuple[JobsApi, InMemoryJobStore]:
    store = InMemoryJobStore()
    DIGESTS.declared.clear()  # job ids repeat between tests: no declared digest may leak into another
    counter = itertools.count(1)
    service = JobsService(
        store,
        FakePresigner(),
        DIGESTS,
        inbox_bucket=INBOX,
        results_bucket=RESULTS,
        ttl_days=30,
        max_upload_bytes=1000,
        url_expiry_s=900,
        clock=Clock(),
        new_job_id=ids or (lambda: f"{next(counter):032x}"),
    )
    return JobsApi(service, TenantDirectory(PRINCIPALS)), store


def call(api: JobsApi, method: str, path: str, who: str | None, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    response = api.handle(ApiRequest(method=method, path=path, principal_arn=who, **kwargs))
    json.loads(response.json())  # always serialisable
    return response.status, response.body


def test_create_returns_upload_and_context_and_records_submitted() -> None:
    api, store = make_api()
    status, body = call(api, "POST", "/jobs", ALICE, body="{}")
    assert status == 201
    job_id = body["job_id"]
    assert body["tenant"] == "tenant-a" and body["status"] == "submitted"
    assert body["encryption_context"] == {CTX_JOB: job_id, CTX_TENANT: "tenant-a"}
    assert body["upload"]["method"] == "PUT" and body["upload"]["key"] == f"jobs/tenant-a/{job_id}.ccc"
    assert body["upload"]["url"].startswith(f"https://{INBOX}.s3/jobs/tenant-a/{job_id}.ccc?put")
    assert body["upload"]["max_bytes"] == 1000 and body["upload_post"]["fields"]["key"] == body["upload"]["key"]
    job = store.get(job_id)
    assert job is not None and job.status.value == "submitted" and job.tenant == "tenant-a"


def test_get_shows_links_only_when_done() -> None:
    api, store = make_api()
    _, created = call(api, "POST", "/jobs", ALICE)
    job_id = created["job_id"]
    status, body = call(api, "GET", f"/jobs/{job_id}", ALICE)
    assert status == 200 and body["status"] == "submitted" and body["result"] is None and body["attestation"] is None
    ref = store.get(job_id).ref  # type: ignore[union-attr]
    store.apply(JobEvent.done(ref, datetime(2025, 3, 1, 12, 5, tzinfo=UTC)))
    status, body = call(api, "GET", f"/jobs/{job_id}/", SESSION_A)  # role session, trailing slash
    assert status == 200 and body["status"] == "done"
    assert body["result"]["key"] == ref.result_key and "?get" in body["result"]["url"]
    # No digest declared on the result: no attestation to offer (the client reports NOT VERIFIED).
    assert body["attestation"] is None
    DIGESTS.declared[ref.result_key] = "ef" * 32
    status, body = call(api, "GET", f"/jobs/{job_id}", ALICE)
    # The attestation offered is the one addressed by the result's digest.
    assert body["attestation"]["key"] == f"results/{ref.tenant}/{ref.job_id}.{'ef' * 32}.att"


def test_a_caller_never_sees_another_tenants_job() -> None:
    api, _ = make_api()
    _, created = call(api, "POST", "/jobs", ALICE)
    status, body = call(api, "GET", f"/jobs/{created['job_id']}", BOB)
    missing_status, missing = call(api, "GET", "/jobs/" + "f" * 32, BOB)
    assert status == missing_status == 404 and body == missing  # indistinguishable from absent
    _, bobs = call(api, "GET", "/jobs", BOB)
    assert bobs == {"jobs": [], "next_cursor": None}


def test_listing_pages_through_own_jobs_newest_first() -> None:
    api, _ = make_api()
    mine = [call(api, "POST", "/jobs", ALICE)[1]["job_id"] for _ in range(5)]
    call(api, "POST", "/jobs", BOB)
    seen, cursor = [], None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, body = call(api, "GET", "/jobs", ALICE, query=query)
        assert status == 200
        seen += [job["job_id"] for job in body["jobs"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine))


@pytest.mark.parametrize(
    ("method", "path", "who", "kwargs", "status"),
    [
        ("POST", "/jobs", None, {}, 403),
        ("POST", "/jobs", "arn:aws:iam::999999999999:user/mallory", {}, 403),
        ("POST", "/jobs", "arn:aws:sts::111122223333:assumed-role/other-role/s", {}, 403),
        ("POST", "/jobs", ALICE, {"body": "not json"}, 400),
        ("POST", "/jobs", ALICE, {"body": '{"tenant": "tenant-b"}'}, 400),
        ("POST", "/jobs", ALICE, {"body": "[]"}, 400),
        ("GET", "/jobs", ALICE, {"query": {"limit": "0"}}, 400),
        ("GET", "/jobs", ALICE, {"query": {"limit": "abc"}}, 400),
        ("GET", "/jobs", ALICE, {"query": {"cursor": "garbage"}}, 400),
        ("GET", "/jobs/../../etc", ALICE, {}, 404),
        ("GET", "/jobs/NOT-A-JOB", ALICE, {}, 404),
        ("DELETE", "/jobs", ALICE, {}, 405),
        ("PUT", "/jobs/" + "a" * 32, ALICE, {}, 405),
        ("GET", "/admin", ALICE, {}, 404),
    ],
)
def test_bad_requests_get_clear_errors(method, path, who, kwargs, status) -> None:
    api, _ = make_api()
    got, body = call(api, method, path, who, **kwargs)
    assert got == status and body["error"] and body["message"]


def test_id_collision_is_a_conflict_not_a_takeover() -> None:
    api, store = make_api(ids=lambda: "a" * 32)
    assert call(api, "POST", "/jobs", ALICE)[0] == 201
    status, _ = call(api, "POST", "/jobs", BOB)
    assert status == 409 and store.get("a" * 32).tenant == "tenant-a"  # type: ignore[union-attr]


def test_tenant_directory_rules() -> None:
    directory = TenantDirectory(PRINCIPALS)
    assert directory.tenant_for(SESSION_A) == "tenant-a"
    assert TenantDirectory.role_arn_of_session("arn:aws-cn:sts::111122223333:assumed-role/r/s") == (
        "arn:aws-cn:iam::111122223333:role/r"
    )
    assert TenantDirectory.role_arn_of_session(ALICE) is None
    with pytest.raises(ValueError):
        TenantDirectory({ALICE: "Not A Tenant"})


@given(st.text(max_size=200), st.sampled_from(["GET", "POST", "PATCH"]), st.one_of(st.none(), st.text(max_size=50)))
def test_handle_never_raises(path: str, method: str, who: str | None) -> None:
    api, _ = make_api()
    response = api.handle(ApiRequest(method=method, path=path, principal_arn=who))
    assert 200 <= response.status < 500


def test_a_job_never_uploaded_expires_to_failed_once_its_upload_window_closes() -> None:
    """Issue 13: jobs created by POST /jobs and never uploaded stayed `submitted` for ever."""
    clock = Clock()
    store = InMemoryJobStore()
    service = JobsService(store, FakePresigner(), FakeResultDigests(), inbox_bucket=INBOX, results_bucket=RESULTS,
                          ttl_days=30, max_upload_bytes=1000, url_expiry_s=900, clock=clock)
    api = JobsApi(service, TenantDirectory(PRINCIPALS))
    _, never = call(api, "POST", "/jobs", ALICE)
    _, uploaded = call(api, "POST", "/jobs", ALICE)
    store.apply(JobEvent.queued(store.get(uploaded["job_id"]).ref, clock.now))  # type: ignore[union-attr]
    clock.now += timedelta(seconds=900 + UPLOAD_GRACE_S - 10)  # the window is still open
    assert call(api, "GET", f"/jobs/{never['job_id']}", ALICE)[1]["status"] == "submitted"
    clock.now += timedelta(seconds=20)
    status, body = call(api, "GET", f"/jobs/{never['job_id']}", ALICE)
    assert status == 200 and body["status"] == "failed" and body["error"] == NEVER_UPLOADED
    assert store.get(never["job_id"]).status is JobStatus.FAILED  # type: ignore[union-attr]  # stored, not only shown
    listed = {job["job_id"]: job["status"] for job in call(api, "GET", "/jobs", ALICE)[1]["jobs"]}
    assert listed == {never["job_id"]: "failed", uploaded["job_id"]: "queued"}  # an uploaded job never expires
