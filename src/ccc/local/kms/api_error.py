"""The one error type the gateway answers with: KMS's JSON error shape (`__type`, `message`)."""

from __future__ import annotations

from ccc.local.errors import LocalStackError


class KmsApiError(LocalStackError):
    """An error answered as `{"__type": error_type, "message": message}` with HTTP `status`."""

    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status
