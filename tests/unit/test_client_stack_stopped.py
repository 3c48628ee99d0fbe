"""A local stack that stopped is named as such, not as "API not reachable" (issue 13 §3).

moto keeps its state in memory only, so when the local stack stops, its jobs, keys and results are
gone for good: the client says so and how to start a new stack, instead of suggesting a retry.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
import urllib3
from botocore.credentials import Credentials

from ccc.client.api import LOCAL_STACK_STOPPED, JobsApiClient, JobsApiError, PresignedUpload
from ccc_core.identity import JobRef

JOB = JobRef("tenant-a", "d" * 32)


def _closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens there


class Unreachable:
    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise urllib3.exceptions.NewConnectionError(None, "connection refused")  # type: ignore[arg-type]


def test_a_stopped_local_stack_is_named_with_how_to_start_one() -> None:
    client = JobsApiClient(f"http://127.0.0.1:{_closed_loopback_port()}/", Credentials("AKID", "SECRET"), "us-east-1")
    with pytest.raises(JobsApiError) as caught:
        client.get_job(JOB)
    assert str(caught.value) == LOCAL_STACK_STOPPED
    assert "ccc local up" in str(caught.value) and "not reachable" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://localhost:4566", "http://[::1]:4566", "http://127.0.0.7:1"])
def test_every_loopback_endpoint_is_the_local_stack(url: str) -> None:
    client = JobsApiClient(url, Credentials("AKID", "SECRET"), "us-east-1", http=Unreachable())
    with pytest.raises(JobsApiError, match="the local stack stopped"):
        client.create_job("tenant-a")
    with pytest.raises(JobsApiError, match="the local stack stopped"):
        client.get_bytes(f"{url}/results/x", 10)
    with pytest.raises(JobsApiError, match="the local stack stopped"):
        client.put(PresignedUpload(url=f"{url}/jobs/x", headers={}, max_bytes=10), _Empty(), 0)


def test_a_remote_api_that_does_not_answer_is_still_not_reachable() -> None:
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    client = JobsApiClient(url, Credentials("AKID", "SECRET"), "us-east-1", http=Unreachable())
    with pytest.raises(JobsApiError, match=r"^jobs API at .* not reachable: NewConnectionError$"):
        client.get_job(JOB)


class _Empty:
    def read(self, size: int = -1, /) -> bytes:
        return b""
