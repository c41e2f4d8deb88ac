"""The concept store: concepts of large code systems in one SQLite file.

A FHIR terminology service (https://hl7.org/fhir/R4/terminology-service.html)
answers ``$lookup``, ``$validate-code``, ``$subsumes`` and ``$expand`` over code
systems far too large to keep as CodeSystem resources (SNOMED CT, LOINC,
ICD-10-CM, RxNorm). Their CodeSystem resources are stored with
``content: not-present`` (https://hl7.org/fhir/R4/codesystem-definitions.html#CodeSystem.content)
and their concepts live here, every system keyed by (url, version) so versions
sit side by side (https://hl7.org/fhir/R4/codesystem.html#versioning).

Layout: ``systems`` (one row per (url, version), a block of concept ids),
``concepts`` (code, display, definition, active, a compact blob with parents,
properties and designations), ``edges`` (direct is-a), ``closure`` (every
(ancestor, descendant) pair, see :mod:`cmio.terminology.closure`) and ``props``
(property values for ``=``/``in``/``exists`` filters). Readers use one connection
per thread (WAL); one writer replaces a (url, version) in a single transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cmio.terminology._store_read import (
    COLUMNS,
    ConceptRow,
    concept_of_row,
    like_terms,
    page_below,
    scan_property,
)
from cmio.terminology._store_schema import SCHEMA, natural_key
from cmio.terminology._store_writer import delete_system, write_system
from cmio.terminology.concept_types import Concept, Designation, SystemInfo
from cmio.terminology.resource_content import codesystem_to_concepts

__all__ = [
    "DEFAULT_TERMINOLOGY_DB",
    "Concept",
    "ConceptStore",
    "Designation",
    "SystemInfo",
    "codesystem_to_concepts",
]

DEFAULT_TERMINOLOGY_DB = "cmio-data/terminology.db"
"""Default location of the concept store (``Settings.terminology_db``)."""

_MMAP_BYTES = 1 << 30
"""Bytes of the store file each connection maps into memory (reads skip the page cache copy)."""

_RESOLVE_TTL = 1.0
"""Seconds a (url, version) -> system row resolution is reused before re-reading."""


@dataclass(frozen=True, slots=True)
class _System:
    sid: int
    info: SystemInfo
    lo: int
    hi: int
    unindexed: frozenset[str] = frozenset()


class ConceptStore:
    """Concepts of large code systems in one SQLite file (default ``cmio-data/terminology.db``).

    Many concurrent readers (per-thread connections), one writer; every system is
    keyed by (url, version). Closing the store closes every connection it opened.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()  # guards the connection list only (never held long)
        self._writer = threading.Lock()  # one load or delete at a time in this process
        self._connections: list[sqlite3.Connection] = []
        self._resolved: dict[tuple[str, str | None], tuple[float, _System | None]] = {}
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

    def __enter__(self) -> ConceptStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- systems -----------------------------------------------------------------
    def _systems(self, url: str | None = None) -> list[_System]:
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
            out.append(_System(sid, info, lo, hi, frozenset(orjson.loads(unindexed))))
        return out

    def _resolve(self, url: str, version: str | None) -> _System | None:
        key = (url, version)
        now = time.monotonic()
        hit = self._resolved.get(key)
        if hit is not None and now - hit[0] < _RESOLVE_TTL:
            return hit[1]
        candidates = self._systems(url)
        found: _System | None = None
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

    # -- concepts ----------------------------------------------------------------
    def _id(self, sys_: _System, code: str) -> int | None:
        row = (
            self._conn()
            .execute("SELECT id FROM concepts WHERE sid = ? AND code = ?", (sys_.sid, code))
            .fetchone()
        )
        return row[0] if row else None

    def lookup(self, url: str, code: str, version: str | None = None) -> Concept | None:
        """The concept ``code`` of (url, version), or None."""
        found = self._resolve(url, version)
        if found is None:
            return None
        row = (
            self._conn()
            .execute(
                f"SELECT {COLUMNS} FROM concepts c WHERE sid = ? AND code = ?", (found.sid, code)
            )
            .fetchone()
        )
        return concept_of_row(row) if row else None

    def lookup_many(
        self, url: str, codes: Iterable[str], version: str | None = None
    ) -> dict[str, Concept]:
        """The concepts among ``codes`` that exist in (url, version), by code."""
        found = self._resolve(url, version)
        out: dict[str, Concept] = {}
        if found is None:
            return out
        wanted = list(dict.fromkeys(codes))
        conn = self._conn()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT {COLUMNS} FROM concepts c WHERE sid = ? AND code IN ({marks})",
                (found.sid, *chunk),
            ):
                out[row[0]] = concept_of_row(row)
        return out

    def children(self, url: str, code: str, version: str | None = None) -> list[str]:
        """Codes whose direct is-a parent is ``code``."""
        found = self._resolve(url, version)
        cid = self._id(found, code) if found else None
        if cid is None:
            return []
        sql = "SELECT c.code FROM edges e JOIN concepts c ON c.id = e.child WHERE e.parent = ? ORDER BY c.id"
        return [r[0] for r in self._conn().execute(sql, (cid,))]

    def _walk(
        self, sql: str, url: str, code: str, version: str | None, include_self: bool
    ) -> Iterator[str]:
        found = self._resolve(url, version)
        cid = self._id(found, code) if found else None
        if cid is None:
            return
        if include_self:
            yield code
        for (other,) in self._conn().execute(sql, (cid,)):
            yield other

    def descendants(
        self, url: str, code: str, version: str | None = None, include_self: bool = False
    ) -> Iterator[str]:
        """Codes below ``code`` (transitively), ``code`` first when ``include_self``."""
        sql = "SELECT c.code FROM closure k JOIN concepts c ON c.id = k.des WHERE k.anc = ?"
        return self._walk(sql, url, code, version, include_self)

    def ancestors(
        self, url: str, code: str, version: str | None = None, include_self: bool = False
    ) -> Iterator[str]:
        """Codes above ``code`` (transitively), ``code`` first when ``include_self``."""
        sql = (
            "WITH RECURSIVE up(id) AS (SELECT parent FROM edges WHERE child = ?1"
            " UNION SELECT e.parent FROM edges e JOIN up ON e.child = up.id)"
            " SELECT c.code FROM up JOIN concepts c ON c.id = up.id"
        )
        return self._walk(sql, url, code, version, include_self)

    def subsumes(self, url: str, a: str, b: str, version: str | None = None) -> bool:
        """True when ``a == b`` (and exists) or ``b`` is below ``a`` in the is-a hierarchy."""
        found = self._resolve(url, version)
        if found is None:
            return False
        ida, idb = self._id(found, a), self._id(found, b)
        if ida is None or idb is None:
            return False
        if ida == idb:
            return True
        row = self._conn().execute("SELECT 1 FROM closure WHERE anc = ? AND des = ?", (ida, idb))
        return row.fetchone() is not None

    def _where(
        self, found: _System, text: str | None, active_only: bool, under: str | None
    ) -> tuple[str, list[Any]] | None:
        # Below a concept, start from the closure (rowid look-ups), not the system's index:
        # the unary + keeps SQLite from scanning every concept of the system.
        clauses: list[str] = ["c.sid = ?" if under is None else "+c.sid = ?"]
        params: list[Any] = [found.sid]
        for term in like_terms(text):
            clauses.append("c.terms LIKE ? ESCAPE '\\'")
            params.append(term)
        if active_only:
            clauses.append("c.active = 1")
        if under is not None:
            top = self._id(found, under)
            if top is None:
                return None
            clauses.append("c.id IN (SELECT ? UNION ALL SELECT des FROM closure WHERE anc = ?)")
            params += [top, top]
        return " AND ".join(clauses), params

    def iter_concepts(
        self,
        url: str,
        version: str | None = None,
        *,
        offset: int = 0,
        count: int | None = None,
        text: str | None = None,
        active_only: bool = False,
        under: str | None = None,
    ) -> Iterator[Concept]:
        """Concepts of (url, version) in load order, optionally paged and filtered.

        Args:
            offset: concepts to skip.
            count: at most this many (all when None).
            text: every whitespace-separated word must occur (case-insensitively)
                in the code, display or a designation.
            active_only: leave out inactive concepts.
            under: only ``under`` and the concepts below it (is-a).
        """
        found = self._resolve(url, version)
        where = self._where(found, text, active_only, under) if found else None
        if found is None or where is None:
            return
        sql, params = where
        limit = -1 if count is None else max(count, 0)
        rows = self._conn().execute(
            f"SELECT {COLUMNS} FROM concepts c WHERE {sql} ORDER BY c.id LIMIT ? OFFSET ?",
            (*params, limit, max(offset, 0)),
        )
        for row in rows:
            yield concept_of_row(row)

    def page_below(
        self, url: str, code: str, version: str | None, offset: int, count: int
    ) -> tuple[int, list[ConceptRow]]:
        """``code`` and the concepts below it (is-a) in load order: the total and one page
        of raw rows (see :func:`cmio.terminology._store_read.page_below`); ``(0, [])``
        when the code is unknown."""
        found = self._resolve(url, version)
        top = self._id(found, code) if found else None
        if top is None:
            return 0, []
        return page_below(self._conn(), top, offset, count)

    def count(
        self,
        url: str,
        version: str | None = None,
        *,
        text: str | None = None,
        active_only: bool = False,
        under: str | None = None,
    ) -> int:
        """How many concepts :meth:`iter_concepts` would yield without paging."""
        found = self._resolve(url, version)
        if found is None:
            return 0
        if not text and not active_only and under is None:
            return found.info.count
        where = self._where(found, text, active_only, under)
        if where is None:
            return 0
        sql, params = where
        row = (
            self._conn().execute(f"SELECT count(*) FROM concepts c WHERE {sql}", params).fetchone()
        )
        return int(row[0])

    def with_property(
        self, url: str, prop: str, value: str | None = None, version: str | None = None
    ) -> Iterator[str]:
        """Codes having property ``prop`` equal to ``value`` (any value when None).

        Booleans compare as ``true``/``false``, numbers by their decimal text.
        """
        found = self._resolve(url, version)
        if found is None:
            return
        if prop in found.unindexed:
            yield from scan_property(self._conn(), found.sid, prop, value)
            return
        if value is None:
            sql = "SELECT DISTINCT c.code, c.id FROM props p JOIN concepts c ON c.id = p.cid WHERE p.sid = ? AND p.prop = ? ORDER BY c.id"
            params: tuple[Any, ...] = (found.sid, prop)
        else:
            sql = "SELECT c.code FROM props p JOIN concepts c ON c.id = p.cid WHERE p.sid = ? AND p.prop = ? AND p.value = ? ORDER BY c.id"
            params = (found.sid, prop, value)
        for row in self._conn().execute(sql, params):
            yield row[0]
