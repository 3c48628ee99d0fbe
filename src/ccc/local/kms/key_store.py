"""The gateway's keys: metadata, policy, grants, aliases and key material, persisted under the stack.

Why the gateway holds the material: when moto's KMS held the keys, anyone who could reach moto
(`AWS_ENDPOINT_URL_KMS=<moto> aws kms decrypt ...`) decrypted any data key without a policy check.
Now moto's KMS holds no key of the stack; every key lives here and is used only through the
gateway, after the key policy allowed the request.

Persistence: one JSON document (`ccc.local-kms/1`, mode 0600, written atomically after every
change) under the stack's state directory, so a restarted gateway keeps its keys. Anyone who can
read that file holds every local key: it is protected only by the state directory's permissions,
as moto's in-memory keys were by the process boundary (documented in docs/local-stack.md).
A store without a path lives in memory (tests).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ccc.atomic_files import write_json_atomic
from ccc.local.errors import LocalStackError
from ccc.local.kms.ciphertext import MATERIAL_BYTES

FORMAT = "ccc.local-kms/1"
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_KEY_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):key/([0-9a-f-]{36})$")
_ALIAS_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):(alias/.+)$")
ALIAS_NAME_RE = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")

ENABLED = "Enabled"
DISABLED = "Disabled"
PENDING_DELETION = "PendingDeletion"


class KeyStoreError(LocalStackError, RuntimeError):
    """The key store file is unreadable or of another format."""


class KeyNotFound(LocalStackError, LookupError):
    """No key or alias by that id in the caller's account and region (KMS NotFoundException)."""


@dataclass
class Grant:
    grant_id: str
    grantee_principal: str
    operations: list[str]
    issuing_account: str
    name: str = ""
    retiring_principal: str | None = None
    context_equals: dict[str, str] | None = None
    context_subset: dict[str, str] | None = None
    creation_date: float = 0.0


@dataclass
class KeyRecord:
    """One symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT, origin AWS_KMS)."""

    key_id: str
    partition: str
    region: str
    account: str
    policy: str
    description: str = ""
    state: str = ENABLED
    creation_date: float = 0.0
    deletion_date: float | None = None
    pending_window_days: int | None = None
    rotation_enabled: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    materials: list[str] = field(default_factory=list)  # base64, index = material version
    grants: list[Grant] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{self.key_id}"

    def material(self, version: int) -> bytes | None:
        if not 0 <= version < len(self.materials):
            return None
        return base64.b64decode(self.materials[version])

    @property
    def current_version(self) -> int:
        return len(self.materials) - 1


@dataclass(frozen=True)
class Alias:
    name: str  # alias/...
    partition: str
    region: str
    account: str
    target_key_id: str

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:{self.name}"


def _record_from_json(data: Mapping[str, Any]) -> KeyRecord:
    values = dict(data)
    values["grants"] = [Grant(**g) for g in values.get("grants", [])]
    return KeyRecord(**values)


class KeyStore:
    """Thread-safe keys and aliases; every mutation goes through `mutate()` and is persisted."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._lock = threading.RLock()
        self._keys: dict[str, KeyRecord] = {}
        self._aliases: list[Alias] = []
        if self._path is not None and self._path.exists():
            self._load(self._path)

    @property
    def path(self) -> Path | None:
        return self._path

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise KeyStoreError(f"{path} is not a {FORMAT} key store")
            self._keys = {k["key_id"]: _record_from_json(k) for k in data["keys"]}
            self._aliases = [Alias(**a) for a in data["aliases"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyStoreError(f"cannot read the key store {path}: {exc}") from exc

    def _save(self) -> None:
        if self._path is None:
            return
        document = {
            "format": FORMAT,
            "keys": [asdict(k) for k in self._keys.values()],
            "aliases": [asdict(a) for a in self._aliases],
        }
        write_json_atomic(self._path, document, mode=0o600)

    @contextmanager
    def mutate(self) -> Iterator[None]:
        """Hold the lock for a change and persist it when the block ends without an error."""
        with self._lock:
            yield
            self._save()

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    # ----- keys -----------------------------------------------------------------------------
    def create_key(
        self,
        *,
        partition: str,
        region: str,
        account: str,
        policy: str,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> KeyRecord:
        record = KeyRecord(
            key_id=str(uuid.uuid4()),
            partition=partition,
            region=region,
            account=account,
            policy=policy,
            description=description,
            creation_date=time.time(),
            tags=dict(tags or {}),
            materials=[base64.b64encode(os.urandom(MATERIAL_BYTES)).decode()],
        )
        with self.mutate():
            self._keys[record.key_id] = record
        return record

    def get(self, key_id: str) -> KeyRecord | None:
        with self._lock:
            return self._keys.get(key_id)

    def keys_of(self, account: str, region: str) -> list[KeyRecord]:
        with self._lock:
            return [k for k in self._keys.values() if k.account == account and k.region == region]

    def resolve(self, key_id: str, *, account: str, region: str, partition: str = "aws") -> KeyRecord:
        """A key by UUID, key ARN, alias name or alias ARN (KMS's KeyId forms), or KeyNotFound."""
        with self._lock:
            arn = _KEY_ARN_RE.fullmatch(key_id)
            if arn:
                record = self._keys.get(arn.group(4))
                if record is None or record.arn != key_id:
                    raise KeyNotFound(f"Key '{key_id}' does not exist")
                return record
            if _UUID_RE.fullmatch(key_id):
                record = self._keys.get(key_id)
                if record is None or record.account != account or record.region != region:
                    raise KeyNotFound(f"Key 'arn:{partition}:kms:{region}:{account}:key/{key_id}' does not exist")
                return record
            alias_arn = _ALIAS_ARN_RE.fullmatch(key_id)
            if alias_arn:
                partition, region, account, name = alias_arn.groups()
            elif key_id.startswith("alias/"):
                name = key_id
            else:
                raise KeyNotFound(f"Invalid keyId '{key_id}'")
            alias = self.alias(name, account=account, region=region)
            if alias is None or alias.target_key_id not in self._keys:
                raise KeyNotFound(f"Alias 'arn:{partition}:kms:{region}:{account}:{name}' is not found.")
            return self._keys[alias.target_key_id]

    # ----- aliases --------------------------------------------------------------------------
    def alias(self, name: str, *, account: str, region: str) -> Alias | None:
        with self._lock:
            for alias in self._aliases:
                if alias.name == name and alias.account == account and alias.region == region:
                    return alias
            return None

    def aliases_of(self, account: str, region: str) -> list[Alias]:
        with self._lock:
            return [a for a in self._aliases if a.account == account and a.region == region]

    def put_alias(self, alias: Alias) -> None:
        with self.mutate():
            self._aliases = [
                a
                for a in self._aliases
                if not (a.name == alias.name and a.account == alias.account and a.region == alias.region)
            ]
            self._aliases.append(alias)

    def delete_alias(self, alias: Alias) -> None:
        with self.mutate():
            self._aliases = [a for a in self._aliases if a != alias]
