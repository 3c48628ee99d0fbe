"""The root of every error of the `ccc` package (client, local stack, model build, release, CLI).

Each subpackage has its own root below this one (`ClientError`, `LocalStackError`,
`ModelBuildError`, `ReleaseError`), so the CLI prints any `CccError` as a one-line message and
leaves only real bugs to a traceback.
"""

from __future__ import annotations


class CccError(Exception):
    """Base of this package's errors."""
