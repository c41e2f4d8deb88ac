"""The repository contract every storage backend implements.

A repository stores FHIR resources as versioned JSON documents
(https://hl7.org/fhir/R4/http.html#versions). Backends (``sqlite``,
``postgres``) implement :class:`Repository`; everything above the store
(REST router, bulk import, analytics) speaks only this interface.

All writes happen inside a :class:`Transaction`: it commits when the ``with``
block exits normally and rolls back when it raises, so a failed request or
Bundle entry leaves nothing behind. A commit that returns is durable.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from cmio.store.errors import (
    ConflictError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    StorageFullError,
    StoreError,
    VersionConflictError,
)

__all__ = [
    "ConflictError",
    "GoneError",
    "HistoryPage",
    "IndexRow",
    "Indexer",
    "InvalidRequestError",
    "NotFoundError",
    "Repository",
    "SearchClause",
    "SearchPage",
    "SearchQuery",
    "StorageFullError",
    "StoreError",
    "StoredResource",
    "TableRows",
    "Transaction",
    "VersionConflictError",
]

Json = dict[str, Any]
#: one resource's search-index rows per table, each ``(resource_type, resource_id, param,
#: *columns)`` (see :mod:`cmio.indexing.tables`)
TableRows = dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One version of one resource as stored.

    Attributes:
        type: resource type, e.g. ``"Patient"``.
        id: logical id.
        version: ``meta.versionId`` as an integer, 1-based.
        last_updated: ``meta.lastUpdated`` as an RFC 3339 instant string with
            millisecond precision and ``Z`` (for example
            ``2026-11-26T18:00:00.123Z``).
        deleted: True for the tombstone written by a delete.
        data: the resource JSON (UTF-8 bytes, ``meta.versionId`` and
            ``meta.lastUpdated`` already set) or ``None`` for a tombstone.
        method: the interaction that wrote this version: ``POST``, ``PUT``,
            ``PATCH`` or ``DELETE`` (used by history bundles).
    """

    type: str
    id: str
    version: int
    last_updated: str
    deleted: bool
    data: bytes | None
    method: str = "PUT"


class IndexRow(NamedTuple):
    """A search-index entry extracted from a resource at write time.

    ``kind`` names the index table (``token`` for now; ``string``, ``date``,
    ``reference``, ... arrive with the search issue). For ``token`` rows,
    ``system`` and ``value`` hold the coding system and code. A NamedTuple:
    bulk loads create millions of these.
    """

    kind: str
    param: str
    system: str | None
    value: str


class Indexer(abc.ABC):
    """Extracts search-index rows from a resource; runs inside the write transaction."""

    @abc.abstractmethod
    def rows(self, resource: Json) -> Sequence[IndexRow]:
        """Return the index rows for ``resource`` (a dict with ``resourceType``)."""


@dataclass(frozen=True, slots=True)
class SearchClause:
    """One search parameter with its OR-ed values (https://hl7.org/fhir/R4/search.html).

    Supported by the backends now: ``_id`` (values are ids), ``_type`` (values are
    resource types, for searches across types), ``_lastUpdated``
    (values carry a prefix such as ``ge2026-01-01``), and token parameters
    present in the index (values ``system|code``, ``|code``, ``system|`` or ``code``).
    """

    name: str
    values: tuple[str, ...]
    modifier: str | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed search: clauses are AND-ed; results ordered by ``_lastUpdated`` then id
    unless ``sort`` names ``_lastUpdated`` / ``-_lastUpdated`` / ``_id`` / ``-_id``."""

    type: str | None
    clauses: tuple[SearchClause, ...] = ()
    count: int = 50
    offset: int = 0
    sort: tuple[str, ...] = ()
    total: bool = True
    #: ``total`` may be an estimate (``_total=estimate``): exact when the page is not
    #: full, otherwise a count stopped at a bound
    estimate: bool = False
    #: only resources whose current version is no newer than this instant (a search's
    #: snapshot, kept by its paging links so that later writes do not shift the pages)
    snapshot: str | None = None
    #: keyset paging with the default order: only resources after this
    #: ``(last_updated, type, id)`` (https://hl7.org/fhir/R4/http.html#paging)
    after: tuple[str, str, str] | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of search results (current, non-deleted versions only)."""

    resources: list[StoredResource]
    total: int | None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of history, newest first (https://hl7.org/fhir/R4/http.html#history)."""

    entries: list[StoredResource]
    total: int
    extra: dict[str, Any] = field(default_factory=dict)


class Transaction(abc.ABC):
    """A unit of work. Reads see the transaction's own writes.

    A write transaction opened while its repository has a ``before_commit`` hook keeps
    the versions it wrote in ``written`` and calls the hook with itself just before
    it commits (or releases its savepoint); an exception from the hook rolls the
    whole unit back. The audit trail uses this to commit with the write it records.
    """

    #: the versions written so far (None: not kept, no hook is set)
    written: list[StoredResource] | None = None
    #: called with this transaction before it commits, when it wrote anything
    before_commit: Callable[[Transaction], None] | None = None

    @abc.abstractmethod
    def read(self, type: str, id: str) -> StoredResource:
        """Current version. Raises NotFoundError, or GoneError if the current version is a tombstone."""

    @abc.abstractmethod
    def vread(self, type: str, id: str, version: int) -> StoredResource:
        """A given version (a tombstone version raises GoneError). Raises NotFoundError."""

    @abc.abstractmethod
    def current(self, type: str, id: str) -> StoredResource | None:
        """Current version including tombstones, or None if the id was never used."""

    @abc.abstractmethod
    def create(
        self, resource: Json, *, id: str | None = None, ahead: TableRows | None = None
    ) -> StoredResource:
        """Store a new resource as version 1; a fresh id is assigned unless ``id`` is given.

        ``resource`` is modified in place: ``id`` and ``meta`` are set. Raises
        ConflictError if ``id`` is given and already in use (even deleted).
        ``ahead``: the resource's index rows computed before the transaction, as
        ``SearchIndexer.table_rows`` returns them (``(param, *columns)``); None: extract.
        """

    @abc.abstractmethod
    def update(
        self,
        resource: Json,
        *,
        if_match: int | None = None,
        method: str = "PUT",
        ahead: TableRows | None = None,
    ) -> tuple[StoredResource, bool]:
        """Store a new version of ``resource['id']``; creates it if absent (update-as-create).

        Returns (stored, created). Raises VersionConflictError when ``if_match``
        is not the current version. ``resource`` is modified in place (meta set).
        ``ahead``: index rows computed before the transaction, as for :meth:`create`.
        """

    @abc.abstractmethod
    def delete(self, type: str, id: str) -> StoredResource | None:
        """Write a tombstone version. Returns it, or None if there was nothing to delete."""

    @abc.abstractmethod
    def search(self, query: SearchQuery) -> SearchPage:
        """Run a search over current, non-deleted resources.

        ``SearchPage.total`` is counted when ``query.total`` asks for it; otherwise it is
        still filled whenever the page shows it without a count (a page that is not full,
        see :func:`cmio.store._query.known_total`), and None when it would need a count
        (https://hl7.org/fhir/R4/search.html#total).
        """

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
        """One page of the members of compartment ``ctype/cid`` (``Patient/[id]/$everything``).

        Members are found by their write-time ``_compartment`` token, in one stable
        order that backends may choose (the operation asks for none:
        https://hl7.org/fhir/R4/patient-operation-everything.html); ``types`` keeps only
        those resource types, ``since`` those changed at or after that instant. The
        total is accurate. This default searches in ``_lastUpdated`` order.

        Raises:
            InvalidRequestError: a malformed ``since`` or an empty ``types``.
        """
        clauses = [SearchClause("_compartment", (f"{ctype}|{cid}",))]
        if types is not None:
            clauses.append(SearchClause("_type", types))
        if since is not None:
            clauses.append(SearchClause("_lastUpdated", (f"ge{since}",)))
        query = SearchQuery(None, tuple(clauses), count, offset, ("_lastUpdated",), True)
        return self.search(query)

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
        """:meth:`compartment`'s page as ``(type, id, data)`` rows, and its total: the same
        members in the same order, without an object per member (``$everything`` splices
        the bytes into its Bundle). This default derives them from :meth:`compartment`."""
        page = self.compartment(ctype, cid, types=types, since=since, count=count, offset=offset)
        rows = [(s.type, s.id, s.data) for s in page.resources if s.data is not None]
        return rows, len(rows) if page.total is None else page.total

    def read_current(self, keys: Sequence[tuple[str, str]]) -> list[StoredResource]:
        """The current versions of ``keys`` (``(type, id)``), as :meth:`read` answers each
        (https://hl7.org/fhir/R4/http.html#read), in the order of ``keys``; unknown and
        deleted resources are left out. This default reads them one by one."""
        found: list[StoredResource] = []
        for rtype, rid in keys:
            try:
                found.append(self.read(rtype, rid))
            except (NotFoundError, GoneError):
                continue
        return found

    @abc.abstractmethod
    def history(
        self,
        type: str | None = None,
        id: str | None = None,
        *,
        since: str | None = None,
        at: str | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> HistoryPage:
        """History at system (no type), type, or instance level, newest first.

        ``since`` keeps versions with lastUpdated >= since; ``at`` keeps, per
        resource, the version current at that instant.
        """

    def scan(self, after: tuple[str, str] | None, limit: int) -> list[StoredResource]:
        """Up to ``limit`` current, non-deleted resources after ``(type, id)`` in that
        order (a resumable walk over the store, e.g. for ``$reindex``)."""
        raise NotImplementedError

    def replace_index(self, keys: Sequence[tuple[str, str]], rows: Sequence[TableRows]) -> None:
        """Replace the search-index rows of the resources ``keys`` by ``rows`` (aligned)."""
        raise NotImplementedError

    def job_state(self, name: str) -> str | None:
        """The saved state of the background job ``name`` (JSON text), if any."""
        raise NotImplementedError

    def set_job_state(self, name: str, state: str) -> None:
        """Save the state of the background job ``name`` (in this transaction)."""
        raise NotImplementedError

    def audit_head(self) -> tuple[int, str] | None:
        """The last ``(seq, hash)`` of the audit chain (None: empty), locking the chain's
        head until this transaction ends so appends stay in one unbroken order."""
        raise NotImplementedError

    def audit_append(self, rows: Sequence[Any]) -> None:
        """Append :class:`cmio.store._audit.AuditRow` rows to the audit table."""
        raise NotImplementedError

    def audit_rows(self, after: int, limit: int) -> list[Any]:
        """Up to ``limit`` audit rows with ``seq > after``, in chain order."""
        raise NotImplementedError

    def put_many(
        self, resources: Sequence[Json], index: Sequence[TableRows | None] | None = None
    ) -> list[StoredResource]:
        """Update-as-create many resources that carry their ids (bulk import fast path).

        For each resource (in order) this behaves like :meth:`update` with method
        ``PUT``, except that no new version is written when the resource equals the
        stored current version ignoring ``meta.versionId`` and ``meta.lastUpdated``:
        the current version is returned instead, so re-importing the same data is
        idempotent. Each resource is modified in place (``meta`` set to the stored
        version's). Backends override this with batched statements.

        ``index``, aligned with ``resources``, may carry each resource's search-index
        rows computed ahead (by import workers, with the store's own indexer); a
        backend may use them instead of extracting the rows again (None: extract).
        """
        out: list[StoredResource] = []
        for resource in resources:
            rtype, id = resource.get("resourceType"), resource.get("id")
            if not isinstance(rtype, str) or not isinstance(id, str):
                raise InvalidRequestError("put_many needs resourceType and id on every resource")
            cur = self.current(rtype, id)
            if cur is not None and not cur.deleted and cur.data is not None:
                stored = orjson.loads(cur.data)
                if _strip_meta(stored) == _strip_meta(resource):
                    resource["meta"] = stored.get("meta", {})
                    out.append(cur)
                    continue
            out.append(self.update(resource)[0])
        return out


class Repository(abc.ABC):
    """A storage backend. Thread-safe: each thread gets its own connection."""

    dialect: str
    #: set by the audit trail: see :attr:`Transaction.before_commit`
    before_commit: Callable[[Transaction], None] | None = None

    def in_transaction(self) -> bool:
        """Whether the calling thread already has a transaction open on this repository
        (a new write transaction would then nest in it)."""
        return False

    @property
    def indexer(self) -> Indexer | None:
        """The search-index extractor writes go through (None if the backend has none)."""
        return getattr(self, "_indexer", None)

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """Open a unit of work; commit on normal exit, roll back on exception."""

    def bulk_load(self, expected: int = 0) -> contextlib.AbstractContextManager[None]:
        """Tune the calling thread's writes for a bulk load (large batches) while open.

        ``expected`` estimates how many resources the load writes. Everything written
        is durable when the context exits normally (single commits inside may not be
        until then). The default does nothing; SQLite checkpoints its write-ahead log
        less often and, for loads large relative to the store, rebuilds its search
        indexes once at the end (:mod:`cmio.store._sqlitebulk`).
        """
        return contextlib.nullcontext()

    def read_transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """Open a unit of work that only reads (writes in it raise StoreError).

        Backends may make this cheaper than :meth:`transaction` (SQLite starts a
        deferred transaction that never waits for the write lock).
        """
        return self.transaction()

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    def read(self, type: str, id: str) -> StoredResource:
        """Read the current version in its own short transaction."""
        with self.read_transaction() as tx:
            return tx.read(type, id)

    def vread(self, type: str, id: str, version: int) -> StoredResource:
        """Read one version in its own short transaction."""
        with self.read_transaction() as tx:
            return tx.vread(type, id, version)

    def search(self, query: SearchQuery) -> SearchPage:
        """Search in its own short transaction."""
        with self.read_transaction() as tx:
            return tx.search(query)

    def iter_current(
        self, types: Sequence[str] | None = None, since: str | None = None
    ) -> Iterator[StoredResource]:
        """Stream every current, non-deleted resource (for export), optionally filtered.

        Backends should override this with a server-side cursor.
        """
        raise NotImplementedError


def _strip_meta(resource: Json) -> Json:
    """``resource`` without ``meta.versionId``/``meta.lastUpdated`` (and without an empty meta)."""
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return resource
    rest = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if rest:
        out["meta"] = rest
    return out
