"""The root of every error of the local stack (components, processes, state, KMS emulator, SigV4)."""

from __future__ import annotations

from ccc.errors import CccError


class LocalStackError(CccError):
    """A local-stack component, process, state file or emulated AWS call failed or refused."""
