"""The connections and systems of the concept store (:class:`StoreBase`).

One SQLite file, a connection per reading thread (WAL) and one writer at a time; the
``systems`` table maps each (url, version) to a block of concept ids
(:mod:`cmio.terminology._store_schema`). :class:`cmio.terminology.concepts.ConceptStore`
adds the concept reads on top.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import orjson

from cmio.terminology._store_schema import SCHEMA, natural_key
from cmio.terminology._store_writer import delete_system, write_system
from cmio.terminology.concept_types import Concept, SystemInfo

__all__ = ["StoreBase", "StoredSystem"]

_MMAP_BYTES = 1 << 30
"""Bytes of the store file each connection maps into memory (reads skip the page cache copy)."""

_RESOLVE_TTL = 1.0
"""Seconds a (url, version) -> system row resolution is reused before re-reading."""


@dataclass(frozen=True, slots=True)
class StoredSystem:
    """One loaded (url, version): its row id, description and block of concept ids."""

    sid: int
    info: SystemInfo
    lo: int
    hi: int
    unindexed: frozenset[str] = frozenset()


class StoreBase:
    """Connections and the (url, version) systems of a concept store file.

    Args:
        path: the SQLite file (its folder is created).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()  # guards the connection list only (never held long)
        self._writer = threading.Lock()  # one load or delete at a time in this process
        self._connections: list[sqlite3.Connection] = []
        self._resolved: dict[tuple[str, str | None], tuple[float, StoredSystem | None]] = {}
        self.generation = 0
        """Bumped by every :meth:`load` and :meth:`delete` in this process (cache keys)."""
        conn = self._conn()
        conn.executescript(SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(systems)")}
        if "unindexed" not in columns:  # stores written before the column existed
            conn.execute("ALTER TABLE systems ADD COLUMN unindexed TEXT NOT NULL DEFAULT '[]'")
        # ancestors come from the edges now (small sets); the closure is keyed by ancestor
        conn.execute("DROP INDEX IF EXISTS closure_des")
        conn.commit()

    # -- connections -------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=60.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")  # page reads without a syscall each
        with self._lock:
            self._connections.append(conn)
        return conn

    def _forget(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        conn.close()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close every connection this store opened (any thread)."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
        self._resolved.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- systems -----------------------------------------------------------------
    def _systems(self, url: str | None = None) -> list[StoredSystem]:
        sql = (
            "SELECT sid, url, version, name, title, count, properties, hierarchy, lo, hi,"
            " unindexed FROM systems"
        )
        rows = (
            self._conn().execute(sql + " WHERE url = ?", (url,))
            if url is not None
            else self._conn().execute(sql + " ORDER BY url, sid")
        )
        out = []
        for sid, u, version, name, title, count, props, hierarchy, lo, hi, unindexed in rows:
            info = SystemInfo(
                url=u,
                version=version or None,
                name=name,
                title=title,
                count=count,
                properties=tuple(tuple(p) for p in orjson.loads(props)),  # type: ignore[misc]
                hierarchy_meaning=hierarchy,
            )
            out.append(StoredSystem(sid, info, lo, hi, frozenset(orjson.loads(unindexed))))
        return out

    def _resolve(self, url: str, version: str | None) -> StoredSystem | None:
        key = (url, version)
        now = time.monotonic()
        hit = self._resolved.get(key)
        if hit is not None and now - hit[0] < _RESOLVE_TTL:
            return hit[1]
        candidates = self._systems(url)
        found: StoredSystem | None = None
        if version is None:
            if candidates:
                found = max(candidates, key=lambda s: (natural_key(s.info.version), s.sid))
        else:
            found = next((s for s in candidates if s.info.version == version), None)
        self._resolved[key] = (now, found)
        return found

    def systems(self) -> list[SystemInfo]:
        """Every loaded (url, version), ordered by url then load order."""
        return [s.info for s in self._systems()]

    def system(self, url: str, version: str | None = None) -> SystemInfo | None:
        """The system ``url`` at ``version`` (the newest loaded version when None)."""
        found = self._resolve(url, version)
        return found.info if found else None

    def fingerprint(self, url: str, version: str | None = None) -> str | None:
        """The fingerprint recorded by the last :meth:`load` of (url, version), if any."""
        found = self._resolve(url, version)
        if found is None:
            return None
        row = (
            self._conn()
            .execute("SELECT fingerprint FROM systems WHERE sid = ?", (found.sid,))
            .fetchone()
        )
        return row[0] if row else None

    def load(
        self,
        info: SystemInfo,
        concepts: Iterable[Concept],
        progress: Callable[[int], None] | None = None,
        *,
        fingerprint: str | None = None,
        unindexed: Collection[str] = (),
    ) -> int:
        """Replace (url, version) with ``concepts`` atomically and build the closure.

        Args:
            info: the system; its ``count`` is replaced by the number loaded.
            concepts: streamed once; ``parents`` may name codes that come later.
            progress: called with the number of concepts read so far (every few thousand)
                and with a final count.
            fingerprint: recorded with the system (e.g. a digest of the release files) so
                loaders can skip a re-run of the same release, see :meth:`fingerprint`.
            unindexed: property codes not worth an index (e.g. SNOMED CT ``moduleId``):
                kept with the concept, and :meth:`with_property` scans for them.

        Returns:
            The number of concepts loaded.

        Raises:
            ClosureError: if the is-a hierarchy has a cycle (nothing is changed).
        """
        with self._writer:
            conn = self._open()
            try:
                count = write_system(
                    conn, info, concepts, progress, fingerprint, frozenset(unindexed)
                )
            finally:
                self._forget(conn)
        self._resolved.clear()
        self.generation += 1
        return count

    def delete(self, url: str, version: str | None) -> bool:
        """Remove (url, version) and its concepts; returns whether it existed."""
        found = self._resolve(url, version)
        if found is None or found.info.version != version:
            return False
        with self._writer:
            conn = self._open()
            try:
                with conn:
                    delete_system(conn, found.sid, found.lo, found.hi)
            finally:
                self._forget(conn)
        self._resolved.clear()
        self.generation += 1
        return True
