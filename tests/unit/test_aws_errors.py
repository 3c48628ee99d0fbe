"""ccc_core.aws_errors reads botocore's error code without the layer importing botocore."""

from __future__ import annotations

from botocore.exceptions import ClientError

from ccc_core.aws_errors import client_error_code


def test_a_client_error_yields_its_code():
    exc = ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "no"}}, "PutItem")
    assert client_error_code(exc) == "ConditionalCheckFailedException"


def test_a_numeric_code_is_returned_as_text():
    exc = ClientError({"Error": {"Code": 404}}, "HeadObject")  # type: ignore[typeddict-item]
    assert client_error_code(exc) == "404"


def test_errors_without_an_aws_response_have_no_code():
    assert client_error_code(ValueError("plain")) is None
    assert client_error_code(ClientError({}, "GetObject")) is None  # type: ignore[typeddict-item]
