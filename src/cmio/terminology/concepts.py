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

from collections.abc import Iterable, Iterator
from typing import Any

from cmio.terminology._store_base import StoreBase, StoredSystem
from cmio.terminology._store_read import (
    COLUMNS,
    ConceptRow,
    concept_of_row,
    like_terms,
    page_below,
    scan_property,
)
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


class ConceptStore(StoreBase):
    """Concepts of large code systems in one SQLite file (default ``cmio-data/terminology.db``).

    Many concurrent readers (per-thread connections), one writer; every system is
    keyed by (url, version). Closing the store closes every connection it opened.
    """

    # -- concepts ----------------------------------------------------------------
    def _id(self, sys_: StoredSystem, code: str) -> int | None:
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
        self, found: StoredSystem, text: str | None, active_only: bool, under: str | None
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
