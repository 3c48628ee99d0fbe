"""The tenant's epsilon ledger, kept in a file on the tenant's machine.

Why a file the tenant keeps: a budget only bounds what releases reveal if nobody can reset it. In
the enclave it lived in memory and a host restart reset it; here it lives with the tenant's other
client state (`$XDG_STATE_HOME/ccc/privacy-ledger.json`, else `~/.local/state/ccc/...`), written
atomically under an exclusive lock so concurrent `ccc stats` runs cannot both spend the last
epsilon. A ledger that cannot be read is an error, never an empty ledger: treating it as empty
would hand out the whole budget again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path

from ccc.atomic_files import write_json_atomic
from ccc.stats.mechanism import BudgetLedger, LedgerError, add_within_budget

LEDGER_FORMAT = "ccc.privacy-ledger/v1"
LEDGER_NAME = "privacy-ledger.json"
MAX_LEDGER_BYTES = 4 * 1024 * 1024


def default_ledger_path(env: Mapping[str, str] = os.environ) -> Path:
    """`$XDG_STATE_HOME/ccc/privacy-ledger.json`, else `~/.local/state/ccc/privacy-ledger.json`."""
    base = env.get("XDG_STATE_HOME") or ""
    root = Path(base) if base.startswith("/") else Path.home() / ".local" / "state"
    return root / "ccc" / LEDGER_NAME


def _key(tenant: str, day: date) -> str:
    return f"{tenant}/{day.isoformat()}"


class FileBudgetLedger(BudgetLedger):
    """Epsilon spent per (tenant, day), persisted in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            handle = lock_path.open("a")
        except OSError as exc:
            raise LedgerError(f"cannot open the privacy ledger lock {lock_path}: {exc.strerror}") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _read(self) -> dict[str, float]:
        try:
            with self.path.open("rb") as handle:
                raw = handle.read(MAX_LEDGER_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise LedgerError(f"cannot read the privacy ledger {self.path}: {exc.strerror}") from None
        try:
            if len(raw) > MAX_LEDGER_BYTES:
                raise ValueError("too large")
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("format") != LEDGER_FORMAT or set(data) != {"format", "spent"}:
                raise ValueError("not a ledger")
            spent = data["spent"]
            if not isinstance(spent, dict):
                raise ValueError("not a ledger")
            result: dict[str, float] = {}
            for key, value in spent.items():
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                    or value < 0
                ):
                    raise ValueError("bad entry")
                result[str(key)] = float(value)
        except (ValueError, UnicodeDecodeError):
            raise LedgerError(
                f"{self.path} is not a {LEDGER_FORMAT} file; refusing to treat it as empty (that would reset "
                "the privacy budget)"
            ) from None
        return result

    def spend(self, tenant: str, day: date, epsilon: float, budget: float) -> float:
        with self._locked():
            spent = self._read()
            total = add_within_budget(spent.get(_key(tenant, day), 0.0), epsilon, budget, tenant, day)
            spent[_key(tenant, day)] = total
            try:
                write_json_atomic(self.path, {"format": LEDGER_FORMAT, "spent": dict(sorted(spent.items()))})
            except OSError as exc:
                raise LedgerError(f"cannot write the privacy ledger {self.path}: {exc.strerror}") from None
            return total

    def spent(self, tenant: str, day: date) -> float:
        with self._locked():
            return self._read().get(_key(tenant, day), 0.0)
