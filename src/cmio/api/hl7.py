"""The HL7 v2 engine's view of the FHIR store, and interface health over HTTP.

:class:`RouterSink` applies the engine's transaction Bundles through the in-process
FHIR router (https://hl7.org/fhir/R4/http.html#transaction). Every batch of messages
shares one outer transaction (one commit: SQLite's own nesting, PostgreSQL's
:meth:`~cmio.store.postgres.PostgresRepository.atomic`) and each message is a SAVEPOINT
of its own: a refused message rolls back alone. An ADT^A40 merge runs after its
message's Bundle in the same savepoint, then the marker Provenance, so the three
commit together or not at all on both backends. Entries conditional on an identifier
whose resource the sink has seen are resolved by a primary-key read instead of a search,
and dropped when they would change nothing (:mod:`~cmio.interfaces.hl7v2.engine.shortcuts`).
A message prepared in the engine's worker process carries its entries' index rows
(:mod:`cmio.api.hl7_prepare`); the sink hands the worker what it needs for them
(:meth:`RouterSink.ahead_spec`, :meth:`RouterSink.learned_ids`).

:func:`health_routes` serves the dashboard's ``/interfaces/health`` (JSON) and the
Prometheus ``/metrics`` endpoint from the engine's journal file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cmio.api.hl7_prepare import AheadSpec, PreparedBundle
from cmio.api.http import FhirRequest
from cmio.api.ops.bundle import EntryAhead, PreparedTransaction
from cmio.api.router import FhirRouter
from cmio.interfaces.hl7v2.engine.destinations import SinkItem, SinkOutcome
from cmio.interfaces.hl7v2.engine.metrics import read_health, to_prometheus
from cmio.interfaces.hl7v2.engine.shortcuts import (
    IdentifierCondition,
    carries_identifier,
    identifier_condition,
    replace_references,
    same_content,
)
from cmio.store.base import GoneError, NotFoundError, StoredResource
from cmio.store.postgres import PostgresRepository

__all__ = ["RouterClient", "RouterSink", "health_routes"]

_HEADERS = {"content-type": "application/fhir+json", "prefer": "return=minimal"}
_KNOWN_IDS = 100_000  # identifiers remembered per sink (then it starts over)
_LOGGED = 20_000  # identifiers kept for the worker's copy (then the older half goes)
Key = tuple[str, str, str]


class _Refused(Exception):
    def __init__(self, outcome: SinkOutcome) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome


class RouterClient:
    """A FHIR client over the in-process router (the mapping's merge uses it)."""

    def __init__(self, router: FhirRouter) -> None:
        self.router = router

    def request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: dict[str, Any] | bytes | None,
        ahead: Mapping[str, EntryAhead] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Perform one interaction; the status and the parsed JSON body (given parsed or as JSON).

        ``ahead``: a transaction's entries' work done before it (by fullUrl).
        """
        raw = body if isinstance(body, bytes) else b"" if body is None else orjson.dumps(body)
        request = FhirRequest(method, path, list(query), headers=dict(_HEADERS), body=raw)
        if ahead:
            request = PreparedTransaction(method, path, list(query), headers=dict(_HEADERS),
                                          body=raw, entry_ahead=ahead)  # fmt: skip
        response = self.router.handle(request)
        parsed = orjson.loads(response.body) if response.body else {}
        return response.status, parsed if isinstance(parsed, dict) else {}


class RouterSink:
    """The engine's :class:`~cmio.interfaces.hl7v2.engine.destinations.TransactionSink`.

    Args:
        router: the in-process FHIR router.
        shortcuts: resolve identifier-conditional entries the sink has seen by a read,
            and drop those that would change nothing (False: every entry as mapped).
    """

    def __init__(self, router: FhirRouter, *, shortcuts: bool = True) -> None:
        self.router = router
        self.client = RouterClient(router)
        self.repository = router.env.repository
        self.shortcuts = shortcuts
        self._ids: dict[Key, str] = {}  # (type, system, value) -> id
        self.skipped = 0
        """Entries answered without a search or a write (resolved or unchanged)."""
        self._log: list[tuple[Key, str]] = []  # what _ids learned, for the worker's copy
        self._log_base = 0
        self._spec: AheadSpec | None = None
        self._spec_model: Any = None
        self.ahead_used = 0
        """Messages applied with work done ahead (the rest had theirs done here)."""

    def ahead_spec(self) -> AheadSpec | None:
        """What a worker process needs to index as this store does (None: it cannot).

        The same object while the store's indexer keeps its model; a new generation once
        custom SearchParameters change it (rows prepared under an older one are not used).
        """
        from cmio.api.app import WriteValidator
        from cmio.api.ops.reindex import sync_search_parameters
        from cmio.indexing import SearchIndexer

        indexer = self.repository.indexer
        if not isinstance(indexer, SearchIndexer):
            return None
        sync_search_parameters(self.router.env)
        model = indexer.model
        if self._spec is None or model is not self._spec_model:
            custom = None if model is indexer.base_model else model
            generation = 1 if self._spec is None else self._spec.generation + 1
            sha = indexer.base_model.package_sha256
            validator = self.router.env.validator  # its structural part done in the worker?
            structure = (
                isinstance(validator, WriteValidator) and validator.model.package_sha256 == sha
            )
            self._spec = AheadSpec(generation, sha, custom, self.router.env.settings.keep_urn_ids,
                                   indexer.full_text, structure)  # fmt: skip
            self._spec_model = model
        return self._spec

    def learned_ids(self, since: int) -> tuple[int, list[tuple[Key, str]]]:
        """The identifiers resolved since position ``since`` and the position now."""
        start = max(since - self._log_base, 0)
        return self._log_base + len(self._log), self._log[start:]

    def _remember(self, key: Key, rid: str) -> None:
        if len(self._ids) >= _KNOWN_IDS:
            self._ids.clear()
        self._ids[key] = rid
        self._log.append((key, rid))
        if len(self._log) > _LOGGED:
            half = len(self._log) // 2
            del self._log[:half]
            self._log_base += half

    def _ahead(self, prepared: Any) -> Mapping[str, EntryAhead] | None:
        """Work done ahead, if done with the model this store's indexer still has."""
        spec = self._spec
        if not isinstance(prepared, PreparedBundle) or spec is None:
            return None
        if prepared.generation != spec.generation:
            return None
        if getattr(self.repository.indexer, "model", None) is not self._spec_model:
            return None
        return prepared.entries

    def apply(self, items: Sequence[SinkItem]) -> list[SinkOutcome]:
        """Apply each item on its own (a savepoint each), all in one durable commit."""
        repository = self.repository
        outer: contextlib.AbstractContextManager[Any]
        if isinstance(repository, PostgresRepository):
            outer = repository.atomic()
        elif repository.dialect == "sqlite":
            outer = repository.transaction()
        else:  # a backend without nesting: each message in its own transaction
            return [self._isolated(item, nested=False) for item in items]
        with outer:
            return [self._isolated(item, nested=True) for item in items]

    def exists(self, resource_type: str, resource_id: str) -> bool:
        """Whether a resource is in the store (deleted counts as absent)."""
        try:
            self.repository.read(resource_type, resource_id)
        except (NotFoundError, GoneError):
            return False
        return True

    def _isolated(self, item: SinkItem, *, nested: bool) -> SinkOutcome:
        scope = self.repository.transaction() if nested else contextlib.nullcontext()
        auditor = self.router.env.auditor  # the sender is the agent of the message's records
        acting: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if auditor is not None and item.control_id:
            from cmio.security.audit.events import AuditSource

            source = AuditSource.hl7v2(item.channel, item.sender, item.control_id)
            acting = auditor.acting(source)
        try:
            with acting, scope as tx:
                return self._one(item, tx)
        except _Refused as refused:  # the savepoint rolled the message back alone
            return refused.outcome

    def _one(self, item: SinkItem, tx: Any = None) -> SinkOutcome:
        if self.shortcuts:
            bundle, known, targets, conds = self._shortcut(item.bundle, tx)
            raw = replace_references(orjson.dumps(bundle), targets)
        else:
            known, conds, raw = (), [], orjson.dumps(item.bundle)
        ahead = self._ahead(item.ahead)
        if ahead:
            self.ahead_used += 1
        status, body = self.client.request("POST", "", [], raw, ahead)
        if status != 200:
            raise _Refused(SinkOutcome(status, _diagnostics(body)))
        locations = known + tuple(_locations(body))
        self._learn(conds, body)
        if item.merge is not None:
            from cmio.interfaces.hl7v2.mapping import MappingError, apply_merge

            try:
                outcome = apply_merge(self.client, item.merge)
            except MappingError as exc:
                raise _Refused(SinkOutcome(422, f"merge: {exc}")) from exc
            locations += (f"merged Patient/{outcome.prior_id} into Patient/{outcome.surviving_id}"
                          f" ({outcome.moved} references moved)",)  # fmt: skip
        if item.marker is not None:
            marker = item.marker
            status, body = self.client.request("PUT", f"Provenance/{marker['id']}", [], marker)
            if status not in (200, 201):
                raise _Refused(SinkOutcome(status, f"marker: {_diagnostics(body)}"))
        return SinkOutcome(200, "", locations)

    def _shortcut(
        self, bundle: dict[str, Any], tx: Any
    ) -> tuple[dict[str, Any], tuple[str, ...], dict[str, str], list[IdentifierCondition | None]]:
        """The Bundle with identifier conditionals resolved by a read or an index probe.

        Returns it, the locations of the entries dropped, the references to point at them
        instead (``fullUrl`` -> ``Type/id``), and the condition behind each entry kept.
        """
        entries = bundle.get("entry") or []
        kept: list[dict[str, Any]] = []
        conds: list[IdentifierCondition | None] = []
        targets: dict[str, str] = {}
        known: list[str] = []
        for entry in entries:
            cond = identifier_condition(entry)
            found = None if cond is None else self._known(cond)
            if cond is not None and found is None:
                ids = self._probe(cond, tx)
                if ids == []:  # nothing carries the identifier: a plain create, no search
                    kept.append({**entry, "request": {"method": "POST",
                                                      "url": cond.resource_type}})  # fmt: skip
                    conds.append(cond)
                    self.skipped += 1
                    continue
                if ids:
                    self._remember(cond.key, ids[0])
                    found = self._known(cond)
            if cond is None or found is None:
                kept.append(entry)
                conds.append(cond)
                continue
            stored, data = found
            ref = f"{cond.resource_type}/{stored.id}"
            resource = entry.get("resource") or {}
            if cond.kind == "create" or same_content(data, resource):
                if entry.get("fullUrl"):
                    targets[entry["fullUrl"]] = ref
                known.append(f"{ref}/_history/{stored.version}")
            else:
                kept.append({**entry, "resource": {**resource, "id": stored.id},
                             "request": {"method": "PUT", "url": ref}})  # fmt: skip
                conds.append(None)
            self.skipped += 1
        if len(kept) == len(entries) and all(a is b for a, b in zip(kept, entries, strict=True)):
            return bundle, (), {}, conds  # as mapped
        return {**bundle, "entry": kept}, tuple(known), targets, conds

    def _probe(self, cond: IdentifierCondition, tx: Any) -> list[str] | None:
        """The ids carrying an identifier by one index probe (None: no probe, or several)."""
        probe = getattr(tx, "token_ids", None)
        if probe is None:
            return None
        ids: list[str] = probe(cond.resource_type, "identifier", cond.system or None, cond.value)
        return ids if len(ids) < 2 else None

    def _known(self, cond: IdentifierCondition) -> tuple[StoredResource, dict[str, Any]] | None:
        """The stored resource remembered for an identifier, if it still carries it."""
        rid = self._ids.get(cond.key)
        if rid is None:
            return None
        try:
            stored = self.repository.read(cond.resource_type, rid)
        except (NotFoundError, GoneError):
            self._ids.pop(cond.key, None)
            return None
        data = orjson.loads(stored.data) if stored.data else {}
        if not carries_identifier(data, cond.system, cond.value):
            self._ids.pop(cond.key, None)
            return None
        return stored, data

    def _learn(self, conds: list[IdentifierCondition | None], body: dict[str, Any]) -> None:
        """Remember which resource the store found or made for each identifier condition."""
        replies = body.get("entry") or []
        for cond, reply in zip(conds, replies, strict=False):
            location = str((reply.get("response") or {}).get("location") or "")
            parts = location.split("/fhir/", 1)[-1].split("/")
            if cond is None or len(parts) < 2 or parts[0] != cond.resource_type:
                continue
            self._remember(cond.key, parts[1])


def _locations(body: dict[str, Any]) -> Iterator[str]:
    for entry in body.get("entry") or []:
        location = (entry.get("response") or {}).get("location")
        if location:
            yield str(location).split("/fhir/", 1)[-1]


def _diagnostics(body: dict[str, Any]) -> str:
    issues = body.get("issue") if body.get("resourceType") == "OperationOutcome" else None
    if not issues:
        return orjson.dumps(body).decode()[:500]
    parts = []
    for issue in issues[:5]:
        where = ", ".join(issue.get("expression") or [])
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or ""
        parts.append(f"{where}: {text}" if where else text)
    return "; ".join(parts)[:1000]


def health_routes(journal: str | Path, server: Callable[[], str] | None = None) -> list[Route]:
    """``GET /interfaces/health`` (JSON for the dashboard) and ``GET /metrics`` (Prometheus).

    ``server`` renders the API server's own metrics (:mod:`cmio.api.metrics`), served
    after the HL7 engine's.
    """

    async def health(request: Request) -> Response:
        return JSONResponse(read_health(journal).to_dict())

    async def metrics(request: Request) -> Response:
        text = to_prometheus(read_health(journal))
        if server is not None:
            text = text.rstrip("\n") + "\n" + await asyncio.to_thread(server)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return [Route("/interfaces/health", health), Route("/metrics", metrics)]
