"""The root of the CDK app's own errors (stage configuration, measurements): `app.py` prints them
as one line instead of a jsii traceback."""

from __future__ import annotations


class CdkAppError(Exception):
    """Base of this package's errors."""
