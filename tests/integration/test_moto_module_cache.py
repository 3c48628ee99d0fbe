"""moto's dispatcher, with its module list cached (`ccc.local.moto_service.cache_module_list`), still
routes every request of the local stack's services to the right backend, as with the uncached list."""

from __future__ import annotations

import pytest
from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from ccc.local.moto_service import cache_module_list

_HOSTS = [
    "s3.us-east-1.amazonaws.com",
    "sqs.us-east-1.amazonaws.com",
    "dynamodb.us-east-1.amazonaws.com",
    "autoscaling.us-east-1.amazonaws.com",
    "events.us-east-1.amazonaws.com",
    "sts.amazonaws.com",
    "iam.amazonaws.com",
    "s3",
    "dynamodb",
    "not-a-service.example",
]


def test_cached_module_list_routes_like_the_uncached_one(monkeypatch: pytest.MonkeyPatch) -> None:
    dispatcher = DomainDispatcherApplication(create_backend_app)
    uncached = list(backends.list_of_moto_modules())
    expected = {host: dispatcher.get_backend_for_host(host) for host in _HOSTS}
    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)  # restored after
    cache_module_list()
    assert list(backends.list_of_moto_modules()) == uncached
    assert list(backends.list_of_moto_modules()) == uncached  # not a one-shot generator
    assert {host: dispatcher.get_backend_for_host(host) for host in _HOSTS} == expected
    assert expected["s3"] == "s3" and expected["not-a-service.example"] is None
