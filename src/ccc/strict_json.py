"""Read a small JSON file whose every field the client acts on: bounded, an object, one value per key.

Why one reader: the trust file decides what the client believes and release.json what a release is;
both are parsed by `json.loads`, which keeps the *last* of two equal keys — a file showing one
`PCR0` to a person reading the top and another to the program. Both readers (`ccc.trust.document`,
`ccc.release.manifest`) refuse that, bound the bytes before parsing, and turn every decoding problem
(bad UTF-8, nesting too deep) into one line, here; each names its own file and error class.
"""

from __future__ import annotations

import json
from typing import Any

from ccc.errors import CccError


class StrictJsonError(CccError, ValueError):
    """The text is not one bounded JSON object with distinct keys; the message is one line without values."""


def _distinct_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        raise StrictJsonError(f"duplicate key(s) {duplicates[:5]}")
    return dict(pairs)


def load_json_object(data: bytes | str, *, max_bytes: int, what: str) -> dict[str, Any]:
    """`data` as a dict; StrictJsonError if too large, not JSON, not an object or with a repeated key."""
    if len(data) > max_bytes:
        raise StrictJsonError(f"{len(data)} bytes is too large for a {what}")
    try:
        document = json.loads(data, object_pairs_hook=_distinct_keys)
    except StrictJsonError:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise StrictJsonError(f"not JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(document, dict):
        raise StrictJsonError(f"a {what} is a JSON object, got {type(document).__name__}")
    return document
