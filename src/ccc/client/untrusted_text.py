"""Make a string that came from the pipeline safe to print on the tenant's terminal.

Why: failure reasons, statuses and API error messages are written by parts the tenant does not
trust (the parent agent, the Lambdas, the jobs table). Printed raw, a reason carrying terminal
escape sequences can rewrite what the tenant sees -- a failed job once *displayed* as
"0 cats (verified)" -- and bidi overrides can reorder it. Every CLI print site passes such strings
through `printable`: escape sequences are removed whole, every other control character (C0, DEL,
C1), bidi and other invisible format characters, and line/paragraph separators are removed, and
whitespace controls become one space, so a reason is always one visible line.
"""

from __future__ import annotations

import re
import unicodedata

MAX_PRINTED_CHARS = 1000

# ESC-introduced sequences: CSI (ESC [ ... final), OSC / DCS / SOS / PM / APC (ESC ] ... BEL or ST),
# and two-character escapes (ESC + one byte). C1 CSI (U+009B) and OSC (U+009D) forms too.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
_WHITESPACE_CONTROLS = re.compile(r"[\t\n\r\x0b\x0c\x85\u2028\u2029]+")


def _visible(char: str) -> bool:
    category = unicodedata.category(char)
    # Cc: C0/DEL/C1 controls; Cf: bidi overrides/isolates/marks, zero-width and other format chars;
    # Cs: lone surrogates; Co/Cn: private use and unassigned (no reliable rendering).
    return category not in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def printable(text: object, *, limit: int = MAX_PRINTED_CHARS) -> str:
    """`text` as one line without escape sequences or control/format characters, at most `limit` chars."""
    value = text if isinstance(text, str) else str(text)
    value = _ESCAPES.sub("", value)
    value = _WHITESPACE_CONTROLS.sub(" ", value)
    value = "".join(char for char in value if _visible(char))
    return value if len(value) <= limit else value[: limit - 1] + "…"
