"""Compartment pages and bulk reads of current versions, for ``Patient/[id]/$everything``
(https://hl7.org/fhir/R4/patient-operation-everything.html).

:class:`CompartmentReads` is a mixin of :class:`cmio.store._sqlbase.SqlTransaction`,
which provides the primitives it declares abstract here.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from cmio.store._query import Sql, compartment_sql, known_total
from cmio.store._sqlrows import Row
from cmio.store.base import InvalidRequestError, SearchPage, StoredResource

__all__ = ["CompartmentReads"]

_CHUNK = 500


class CompartmentReads(abc.ABC):
    """A compartment's members in one statement, and current versions by key in a few."""

    #: the SQL dialect statements are rendered for
    dialect: str

    @abc.abstractmethod
    def _fetchone(self, sql: str, params: Sequence[Any]) -> Row | None: ...

    @abc.abstractmethod
    def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]: ...

    @abc.abstractmethod
    def _data_out(self, value: Any) -> bytes | None: ...

    def compartment(
        self,
        ctype: str,
        cid: str,
        *,
        types: tuple[str, ...] | None = None,
        since: str | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> SearchPage:
        """Members of a compartment in the store's member order: one statement for every
        type, no sort (:func:`cmio.store._query.compartment_sql`)."""
        rows, total = self._members(ctype, cid, types, since, count, offset, False)
        out = self._data_out
        resources = [StoredResource(r[0], r[1], r[2], r[3], False, out(r[4])) for r in rows]
        return SearchPage(resources, total)

    def compartment_rows(
        self,
        ctype: str,
        cid: str,
        *,
        types: tuple[str, ...] | None = None,
        since: str | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> tuple[list[tuple[str, str, bytes]], int]:
        """:meth:`compartment` as ``(type, id, data)`` rows and the total: the page
        statement selects only those columns."""
        rows, total = self._members(ctype, cid, types, since, count, offset, True)
        out = self._data_out
        # a current (not deleted) version always has its data
        return [(r[0], r[1], out(r[2])) for r in rows], total  # type: ignore[misc]

    def _members(
        self,
        ctype: str,
        cid: str,
        types: tuple[str, ...] | None,
        since: str | None,
        count: int,
        offset: int,
        data_only: bool,
    ) -> tuple[list[Row], int]:
        """A page's rows and the accurate total (counted only when the page is full)."""
        if types is not None and not types:
            raise InvalidRequestError("_type needs at least one resource type")
        page, count_sql = compartment_sql(
            self.dialect, "_compartment", ctype, cid, types, since, count, offset, data_only
        )
        rows = self._fetchall(page.text, page.params) if count > 0 else []
        total = known_total(count, offset, len(rows))  # the last page: no count statement
        return rows, self._count(count_sql) if total is None else total

    def _count(self, sql: Sql) -> int:
        found = self._fetchone(sql.text, sql.params)
        return int(found[0]) if found else 0

    def read_current(self, keys: Sequence[tuple[str, str]]) -> list[StoredResource]:
        """The current versions of ``keys`` in one statement per type and 500 ids (see
        :meth:`cmio.store.base.Transaction.read_current`)."""
        ids: dict[str, list[str]] = {}
        for rtype, rid in keys:
            ids.setdefault(rtype, []).append(rid)
        out = self._data_out
        found: dict[tuple[str, str], StoredResource] = {}
        for rtype, wanted in ids.items():
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                sql = (
                    "SELECT id, version, last_updated, data FROM resource WHERE type = ?"
                    f" AND id IN ({', '.join('?' * len(chunk))}) AND NOT deleted"
                )
                for r in self._fetchall(sql, (rtype, *chunk)):
                    found[rtype, r[0]] = StoredResource(rtype, r[0], r[1], r[2], False, out(r[3]))
        return [found[key] for key in keys if key in found]
