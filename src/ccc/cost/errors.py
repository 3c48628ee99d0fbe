"""The cost tool's refusals (an unreadable template, an unknown profile or region, a bad trace)."""

from __future__ import annotations

from ccc.errors import CccError


class CostError(CccError):
    """Root of the cost tool's errors: the CLI prints them as one line."""
