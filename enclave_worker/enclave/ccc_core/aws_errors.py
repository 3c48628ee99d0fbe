"""The error code of a failed AWS call, read without importing botocore.

Why duck-typed: the layer stays free of boto3/botocore (adapters receive injected clients), yet
the jobs store and the parent agent must tell "condition failed" or "no such key" from a real
failure. botocore's ``ClientError`` carries ``response["Error"]["Code"]``; anything else has no code.
"""

from __future__ import annotations


def client_error_code(exc: BaseException) -> str | None:
    """``exc.response["Error"]["Code"]`` as text, or None if `exc` carries no AWS error response."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
