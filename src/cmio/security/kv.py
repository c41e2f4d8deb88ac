"""A small key-value table for authentication state (users, clients, codes, revocations).

It lives in the store's ``job_state`` table (SQLite or PostgreSQL), so every server
process and the CLI see the same users, clients and revocations; tests use the
in-memory variant. Values are JSON text.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from cmio.store.base import Repository

__all__ = ["ExpiringMap", "KeyValue", "MemoryKeyValue", "RepositoryKeyValue"]

Json = dict[str, Any]


class KeyValue(Protocol):
    """Named JSON documents with atomic read-modify-write."""

    def get(self, name: str) -> Json | None:
        """The document ``name``, or None."""
        ...

    def put(self, name: str, value: Json) -> None:
        """Store ``value`` under ``name``."""
        ...

    def update(self, name: str, change: Callable[[Json | None], Json]) -> Json:
        """Atomically replace the document with ``change(old)``; returns the new one."""
        ...


class MemoryKeyValue:
    """In-process key-value documents (tests, single-process tools)."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Json | None:
        """The document ``name``, or None."""
        text = self._data.get(name)
        return None if text is None else _loads(text)

    def put(self, name: str, value: Json) -> None:
        """Store ``value`` under ``name``."""
        with self._lock:
            self._data[name] = json.dumps(value)

    def update(self, name: str, change: Callable[[Json | None], Json]) -> Json:
        """Atomically replace the document with ``change(old)``."""
        with self._lock:
            old = self._data.get(name)
            new = change(None if old is None else _loads(old))
            self._data[name] = json.dumps(new)
            return new


class RepositoryKeyValue:
    """Key-value documents in the store's ``job_state`` table (shared by all processes)."""

    def __init__(self, repository: Repository, prefix: str = "auth:") -> None:
        self.repository = repository
        self.prefix = prefix

    def get(self, name: str) -> Json | None:
        """The document ``name``, or None."""
        with self.repository.read_transaction() as tx:
            text = tx.job_state(self.prefix + name)
        return None if text is None else _loads(text)

    def put(self, name: str, value: Json) -> None:
        """Store ``value`` under ``name`` (its own transaction)."""
        with self.repository.transaction() as tx:
            tx.set_job_state(self.prefix + name, json.dumps(value))

    def update(self, name: str, change: Callable[[Json | None], Json]) -> Json:
        """Read, change and write ``name`` in one write transaction."""
        with self.repository.transaction() as tx:
            _lock(tx, self.prefix + name)
            text = tx.job_state(self.prefix + name)
            new = change(None if text is None else _loads(text))
            tx.set_job_state(self.prefix + name, json.dumps(new))
            return new


_LOCK_SPACE = 0x636D696F  # "cmio": the two-key advisory locks of this table


def _lock(tx: Any, name: str) -> None:
    """Serialize read-modify-write of one name. SQLite write transactions already are
    (``BEGIN IMMEDIATE``); PostgreSQL's READ COMMITTED is not, so take a transaction-scoped
    advisory lock on the name (https://www.postgresql.org/docs/15/explicit-locking.html)."""
    if getattr(tx, "dialect", None) == "postgres":
        tx._fetchone("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_LOCK_SPACE, name))


def _loads(text: str) -> Json:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("authentication state must be a JSON object")
    return value


class ExpiringMap:
    """Short-lived records (codes, refresh tokens, revocations ...) that clean up after
    themselves: each record carries ``exp`` (epoch seconds); records live in a fixed
    number of shard documents, and every write to a shard drops its expired records, so
    the table never grows with the number of logins."""

    def __init__(
        self,
        kv: KeyValue,
        prefix: str,
        digits: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Records under ``prefix`` in ``16 ** digits`` shards."""
        self.kv = kv
        self.prefix = prefix
        self.digits = digits
        self.clock = clock

    def _shard(self, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return f"{self.prefix}:{digest[: self.digits]}"

    def get(self, key: str) -> Json | None:
        """The unexpired record ``key``, or None."""
        record = (self.kv.get(self._shard(key)) or {}).get(key)
        if record is None or record.get("exp", 0) < self.clock():
            return None
        return dict(record)

    def update(self, key: str, change: Callable[[Json | None], Json]) -> Json:
        """Atomically replace record ``key`` with ``change(old)`` (old: None when missing
        or expired); expired records of the shard are dropped."""
        now = self.clock()
        result: Json = {}

        def apply(doc: Json | None) -> Json:
            live = {k: v for k, v in (doc or {}).items() if v.get("exp", 0) >= now}
            new = change(live.get(key))
            if "exp" not in new:
                raise ValueError("an expiring record needs exp")
            live[key] = new
            result.update(new)
            return live

        self.kv.update(self._shard(key), apply)
        return result

    def put(self, key: str, record: Json) -> None:
        """Store ``record`` (with ``exp``) under ``key``."""
        self.update(key, lambda _old: record)
