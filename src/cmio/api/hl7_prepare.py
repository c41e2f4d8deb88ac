"""The store's share of an HL7 message's work done ahead, in the engine's worker process.

A mapped message is a transaction Bundle (https://hl7.org/fhir/R4/http.html#transaction).
Before the store's single writer applies it, :class:`BundleAhead` (run in the engine's
preparation process, :mod:`cmio.interfaces.hl7v2.engine.prepworker`) predicts each entry's
resource as the transaction will write it (the ids assigned, ``urn:uuid:`` references
rewritten to ``Type/id``) and extracts its search-index rows
(``SearchIndexer.table_rows``). The writer (:func:`cmio.api.ops.bundle.process_transaction`)
uses the rows only for a resource equal to the one predicted, so a wrong prediction costs
the extraction it would have done anyway, never a wrong index. When the writer's validator
keeps its structural part apart (:class:`cmio.api.app.WriteValidator`), the worker also
validates each entry's resource as the Bundle carries it (``validate_structure``,
https://hl7.org/fhir/R4/validation.html), and the writer skips that part for an entry equal
to the one validated (the store's own checks, profiles and rules still run there).

Predictions: a ``PUT Type/id`` keeps its id; a POST (or an identifier-conditional entry whose
identifier the sink has not resolved yet, which the sink turns into a plain create) is given
an id drawn here (or its ``urn:uuid`` with ``keep_urn_ids``), which the writer then assigns;
an identifier the sink has resolved before (``known``, sent by the engine) names that
resource. Custom SearchParameters: the spec carries the writer's model when it has any, and
rows are used only while the writer's indexer still has the model of the spec
(:meth:`AheadSpec.matches`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cmio.api.ops.bundle import EntryAhead, kept_urn_id, unresolved_urn
from cmio.api.references import rewrite_references
from cmio.interfaces.hl7v2.engine.shortcuts import identifier_condition
from cmio.model import Model
from cmio.store._common import new_id
from cmio.validation import validate_structure

__all__ = ["AheadSpec", "BundleAhead", "PreparedBundle"]

Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class PreparedBundle:
    """A Bundle's :data:`~cmio.api.ops.bundle.EntryAhead` by fullUrl, and the spec it used."""

    generation: int
    entries: dict[str, EntryAhead]


@dataclass(frozen=True, slots=True, eq=False)
class AheadSpec:
    """What the worker needs to index as the writer does (picklable).

    Attributes:
        generation: bumped by the sink whenever the writer's indexer model changes.
        package_sha256: the standard model's definitions (the worker loads the same).
        model: the writer's model when it carries custom SearchParameters (else None).
        keep_urn_ids: ``Settings.keep_urn_ids`` (a POST keeps its ``urn:uuid`` as id).
        full_text: the writer's indexer extracts ``_text``/``_content`` rows.
        structure: the writer takes structural validation done here (its validator's model
            is the standard one of ``package_sha256``).
    """

    generation: int
    package_sha256: str
    model: Model | None
    keep_urn_ids: bool
    full_text: bool
    structure: bool = False

    def build(self) -> BundleAhead | None:
        """The worker's preparer (None: this process cannot index as the writer does)."""
        from cmio.indexing import SearchIndexer
        from cmio.model import load_model

        model = self.model or load_model()
        if model.package_sha256 != self.package_sha256:
            return None
        return BundleAhead(SearchIndexer(model, full_text=self.full_text), self)

    def decode(self, blob: bytes) -> tuple[dict[str, Any], PreparedBundle]:
        """The Bundle and its work ahead from :meth:`BundleAhead.encode` (JSON: ~6x quicker
        to load than a pickle of the same, and the writer loads it)."""
        bundle, generation, entries = orjson.loads(blob)
        carried = {e.get("fullUrl"): e.get("resource") for e in bundle.get("entry") or ()}
        done: dict[str, EntryAhead] = {  # (true: the Bundle's resource; an object: this one)
            k: (v[0], v[1], v[2], carried.get(k) if v[3] is True else v[3] or None)
            for k, v in entries.items()
        }
        return bundle, PreparedBundle(generation, done)


class _Unresolved(Exception):
    """A conditional reference: only the store can resolve it."""


def _unresolved(ref: str) -> str:
    raise _Unresolved(ref)


class BundleAhead:
    """Predicts a Bundle's written resources and extracts their index rows.

    Args:
        indexer: a ``SearchIndexer`` with the writer's model.
        spec: the spec it was built from.
    """

    def __init__(self, indexer: Any, spec: AheadSpec) -> None:
        self.indexer = indexer
        self.spec = spec

    def __call__(self, bundle: dict[str, Any], known: Mapping[Key, str]) -> PreparedBundle:
        """The work ahead for ``bundle``; ``known``: ids of identifiers the sink resolved."""
        mapping: dict[str, str] = {}
        todo: list[tuple[str, dict[str, Any], str | None]] = []
        carried: set[str] = set()  # entries the writer gets as the Bundle has them ...
        dropped: dict[str, str] = {}  # ... but for references to known entries (see _carried)
        for entry in bundle.get("entry") or []:
            full_url, resource = entry.get("fullUrl"), entry.get("resource")
            request = entry.get("request") or {}
            if not isinstance(full_url, str) or not isinstance(resource, dict):
                continue
            method: str | None = request.get("method")
            url = str(request.get("url") or "")
            cond = identifier_condition(entry)
            if cond is not None:
                rid = known.get(cond.key)
                if rid is not None:  # the sink writes PUT Type/rid (or drops it, unchanged)
                    mapping[full_url] = dropped[full_url] = f"{cond.resource_type}/{rid}"
                    todo.append((full_url, {**resource, "id": rid}, None))
                    continue
                method, url = "POST", cond.resource_type  # the sink's plain create
            carried.add(full_url)
            if method == "POST" and "/" not in url and "?" not in url:
                if request.get("ifNoneExist") and cond is None:
                    continue  # a search decides
                drawn = self._post_id(full_url)
                mapping[full_url] = f"{url}/{drawn}"
                todo.append((full_url, resource, drawn))
            elif method == "PUT" and "?" not in url and url.count("/") == 1:
                rtype, rid = url.split("/")
                if resource.get("id") == rid and resource.get("resourceType") == rtype:
                    mapping[full_url] = url
                    todo.append((full_url, resource, None))
        out: dict[str, EntryAhead] = {}
        table_rows = self.indexer.table_rows
        for full_url, resource, post_id in todo:
            final = copy.deepcopy(resource)
            try:
                rewrite_references(final, mapping, _unresolved)
            except _Unresolved:
                continue
            indexed = final if post_id is None else {**final, "id": post_id}  # as the store will
            checked = self._carried(resource, dropped) if full_url in carried else None
            if checked is not None and not self._valid(checked, final):
                checked = None
            out[full_url] = (final, table_rows(indexed), post_id, checked)
        return PreparedBundle(self.spec.generation, out)

    @staticmethod
    def _carried(resource: dict[str, Any], dropped: Mapping[str, str]) -> dict[str, Any]:
        """The resource as the writer most likely gets it: the sink drops an entry it knows
        unchanged (the usual case) and points references to it at the stored resource
        (the writer compares before it trusts the validation: any other guess only costs
        the validation it would have done)."""
        if not dropped:
            return resource
        guessed = copy.deepcopy(resource)
        rewrite_references(guessed, dropped)
        return resource if guessed == resource else guessed

    def _valid(self, resource: dict[str, Any], final: dict[str, Any]) -> bool:
        """Whether ``resource`` passes structural validation and ``final`` keeps no ``urn:``
        reference (the writer's ``_check_unresolved``)."""
        if not self.spec.structure:
            return False
        if unresolved_urn(final):
            return False
        found = validate_structure(self.indexer.model, resource)
        return not any(issue.severity in ("error", "fatal") for issue in found)

    def encode(self, bundle: dict[str, Any], known: Mapping[Key, str]) -> bytes | None:
        """The Bundle and its work ahead as JSON for :meth:`AheadSpec.decode` (None: not
        exactly representable, e.g. a non-finite number)."""
        prepared = self(bundle, known)
        for _, rows, _, _ in prepared.entries.values():
            for found in (rows or {}).values():
                for row in found:
                    if any(isinstance(v, float) and not math.isfinite(v) for v in row):
                        return None
        carried = {id(e.get("resource")) for e in bundle.get("entry") or ()}
        entries = {  # (a resource validated that is the Bundle's own: a flag, decode finds it)
            k: (v[0], v[1], v[2], v[3] is not None and (id(v[3]) in carried or v[3]))
            for k, v in prepared.entries.items()
        }
        try:
            return orjson.dumps([bundle, prepared.generation, entries])
        except TypeError:
            return None

    def _post_id(self, full_url: str) -> str:
        """The id process_transaction gives a created entry (``keep_urn_ids`` first)."""
        return kept_urn_id(full_url, self.spec.keep_urn_ids) or new_id()
