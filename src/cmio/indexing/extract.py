"""Write-time extraction of every standard search parameter (https://hl7.org/fhir/R4/search.html).

:class:`SearchIndexer` compiles each parameter's FHIRPath expression once per
resource type and turns the results into rows of the typed index tables
(:mod:`cmio.indexing.tables`). It keeps the Patient-compartment rows of
:class:`~cmio.indexing.compartments.CompartmentIndexer` that ``$everything`` uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

from cmio.fhirpath import FhirPathEngine
from cmio.fhirpath.engine import CompiledExpression
from cmio.indexing import values as v
from cmio.indexing.compartments import COMPARTMENT_PARAM, CompartmentIndexer
from cmio.indexing.composite import CompositePlan, Memo, plan_composite
from cmio.indexing.direct import DirectPlan, TextMemo, plan_direct
from cmio.indexing.memo import memoize
from cmio.indexing.text import text_rows
from cmio.model import Model
from cmio.model.types import SearchParamDef
from cmio.store.base import IndexRow, TableRows

__all__ = ["NOT_INDEXED", "SearchIndexer", "resolve_targets", "rewrite_as", "search_expression"]

#: parameters answered from the resource table or not indexed
NOT_INDEXED = frozenset({"_id", "_lastUpdated", "_text", "_content", "_list", "_query", "_filter"})
_AS = re.compile(r"\(([A-Za-z0-9_.]+) as ([A-Za-z]+)\)")
_AS_CALL = re.compile(r"\.as\(([A-Za-z]+)\)")
_FHIR_PRIMITIVE = {
    "Boolean": "boolean",
    "String": "string",
    "Integer": "integer",
    "Decimal": "decimal",
    "Date": "date",
    "DateTime": "dateTime",
    "Time": "time",
}
_SYSTEM_OF_TYPE = re.compile(r"\.ofType\((" + "|".join(_FHIR_PRIMITIVE) + r")\)")
_RESOLVE_IS = re.compile(r"\.where\(resolve\(\) is ([A-Za-z]+)\)")
_HEAD = re.compile(r"^\(?([A-Za-z]+)\.([A-Za-z]+)\b")
Adder = Callable[[v.Rows, str, Any], None]
Step = tuple[str, CompiledExpression, Adder, frozenset[str] | None, DirectPlan | None]
_STEP_CACHE_LIMIT = 4096


def search_expression(spd: SearchParamDef, rtype: str) -> str | None:
    """The expression of ``spd`` for ``rtype`` with ``as`` rewritten to ``ofType()``.

    ``(Observation.value as Quantity)`` fails on repeated elements; ``ofType``
    has the intended meaning (https://hl7.org/fhir/R4/searchparameter.html).
    """
    expression = spd.expression_for(rtype)
    if not expression:
        return None
    return rewrite_as(_RESOLVE_IS.sub("", expression))


def rewrite_as(expression: str) -> str:
    """``(x as T)`` and ``x.as(T)`` as ``x.ofType(T)``.

    A System primitive type name there (``DateTime``) names the FHIR primitive
    (``dateTime``): R4's ``Observation-value-date`` component of ``code-value-date``
    reads ``value.as(DateTime)``, which matches no FHIR element; R5 corrected it to
    ``value.as(dateTime)`` (https://hl7.org/fhir/R5/observation-search.html).
    """
    rewritten = _AS_CALL.sub(r".ofType(\1)", _AS.sub(r"\1.ofType(\2)", expression))
    return _SYSTEM_OF_TYPE.sub(lambda m: f".ofType({_FHIR_PRIMITIVE[m.group(1)]})", rewritten)


def resolve_targets(spd: SearchParamDef, rtype: str) -> tuple[str, ...]:
    """Types named by ``where(resolve() is T)`` in the expression for ``rtype``.

    Such filters need no resolver: the reference's own type decides, so the
    filter is applied to the extracted reference rows instead.
    """
    return tuple(_RESOLVE_IS.findall(spd.expression_for(rtype) or ""))


class SearchIndexer(CompartmentIndexer):
    """Extracts rows for all the resource type's search parameters, grouped by table.

    Args:
        model: the FHIR model (parameter definitions).
        engine: FHIRPath engine (one is made when omitted).
        full_text: also index ``_text`` and ``_content`` (:mod:`cmio.indexing.text`).
    """

    def __init__(
        self, model: Model, engine: FhirPathEngine | None = None, *, full_text: bool = True
    ) -> None:
        super().__init__(model)
        self.model = model
        #: the model without custom SearchParameters (:meth:`use_model` keeps it)
        self.base_model = model
        self.engine = engine if engine is not None else FhirPathEngine(model)
        #: extract ``_text``/``_content`` rows (the bulk of the write cost of a resource)
        self.full_text = full_text
        self._units: dict[str, tuple[Decimal, str] | None] = {}
        #: date texts met before -> their ``[low, high)`` (``date_range`` memo)
        self._ranges: dict[str, tuple[str, str] | None] = {}
        self._date_texts: TextMemo = {}
        #: adders by parameter type (and reference targets), each with its own memo
        self._adders: dict[tuple[Any, ...], Adder] = {}
        self._plans = lru_cache(maxsize=None)(self._plan)
        self._composites = lru_cache(maxsize=None)(self._plan_composites)
        #: (resource type, top-level JSON keys) -> the plan steps that can find a value
        #: and the composites that can add rows
        self._steps: dict[tuple[str, ...], tuple[tuple[Step, ...], tuple[CompositePlan, ...]]] = {}
        from cmio.search.compiler import SearchCompiler  # cmio.search imports this package

        #: used by the SQL stores to compile searches over these tables
        self.search_compiler = SearchCompiler(model)

    def use_model(self, model: Model) -> None:
        """Index (and search) with ``model`` from now on, e.g. one extended with custom
        SearchParameters (:func:`cmio.indexing.custom.extend_model`)."""
        self.model = model
        self._plans = lru_cache(maxsize=None)(self._plan)
        self._composites = lru_cache(maxsize=None)(self._plan_composites)
        self._steps = {}
        self.search_compiler.model = model

    def _plan(self, rtype: str) -> tuple[Step, ...]:
        plan: list[Step] = []
        for code, spd in sorted(self.model.search_params_for(rtype).items()):
            adder = self._adder(spd, resolve_targets(spd, rtype))
            expression = search_expression(spd, rtype)
            if adder is None or expression is None or code in NOT_INDEXED:
                continue
            dates = self._date_texts if spd.type == "date" else None
            direct = plan_direct(self.engine.types, rtype, expression, dates)
            # a direct walk knows exactly which properties it reads (``value-concept``
            # reads ``valueCodeableConcept``, not every ``value[x]``)
            keys = direct.keys() if direct is not None else self._json_keys(rtype, expression)
            plan.append((code, self.engine.compile(expression), adder, keys, direct))
        return tuple(plan)

    def _steps_for(
        self, rtype: str, resource: dict[str, Any]
    ) -> tuple[tuple[Step, ...], tuple[CompositePlan, ...]]:
        """The plan steps whose JSON properties ``resource`` has, and the composites
        that can add rows to it (:meth:`CompositePlan.idle`), cached by key set."""
        signature = (rtype, *resource)
        found = self._steps.get(signature)
        if found is None:
            steps = tuple(
                step
                for step in self._plans(rtype)
                if step[3] is None or not step[3].isdisjoint(resource)
            )
            composites = tuple(c for c in self._composites(rtype) if not c.idle(resource))
            if len(self._steps) >= _STEP_CACHE_LIMIT:
                self._steps.clear()
            found = self._steps[signature] = (steps, composites)
        return found

    def _plan_composites(self, rtype: str) -> tuple[CompositePlan, ...]:
        adders = {
            t: a
            for t in ("string", "token", "date", "number", "quantity", "uri")
            if (a := self._adder_for(t)) is not None
        }
        adders["reference"] = self._reference_adder((), False)
        plans: list[CompositePlan] = []
        for _, spd in sorted(self.model.search_params_for(rtype).items()):
            base = search_expression(spd, rtype) if spd.type == "composite" else None
            if base is not None:
                found = plan_composite(self.engine, self.model, spd, base, adders)
                if found is not None:
                    plans.append(found)
        return tuple(plans)

    def _json_keys(self, rtype: str, expression: str) -> frozenset[str] | None:
        """The top-level JSON properties the expression can read, or None if unsure.

        A resource holding none of them has no value for the parameter, so the
        expression is not evaluated at all (most parameters, for most resources).
        """
        elements = self.model.types[rtype].elements
        keys: set[str] = set()
        for branch in expression.split("|"):
            m = _HEAD.match(branch.strip())
            if m is None or m.group(1) not in (rtype, "Resource", "DomainResource"):
                return None
            element = elements.get(m.group(2)) or elements.get(m.group(2) + "[x]")
            if element is None:
                return None
            keys.update(element.json_name(t) for t in element.types)
            keys.update("_" + k for k in list(keys))
        return frozenset(keys)

    def _adder(self, spd: SearchParamDef, only: tuple[str, ...]) -> Adder | None:
        if spd.type == "reference":
            return self._reference_adder(tuple(only or spd.target), bool(only))
        return self._adder_for(spd.type)

    def _reference_adder(self, targets: tuple[str, ...], strict: bool) -> Adder:
        """The reference adder for ``targets`` (one per distinct targets: one memo each)."""
        slot = ("reference", targets, strict)
        found = self._adders.get(slot)
        if found is None:

            def add(out: v.Rows, code: str, value: Any) -> None:
                v.add_reference(out, code, value, targets, strict)

            found = self._adders[slot] = memoize(add)
        return found

    def _adder_for(self, ptype: str) -> Adder | None:
        """The adder of a parameter type, its rows remembered per JSON object
        (:func:`cmio.indexing.memo.memoize`; one per type, shared by every parameter)."""
        found = self._adders.get((ptype,))
        if found is not None:
            return found
        adder: Adder | None
        if ptype == "quantity":
            units = self._units

            def adder(out: v.Rows, code: str, value: Any) -> None:
                v.add_quantity(out, code, value, units)

        elif ptype == "date":
            ranges = self._ranges

            def adder(out: v.Rows, code: str, value: Any) -> None:
                v.add_date(out, code, value, ranges)

        else:
            adder = {
                "string": v.add_string,
                "token": v.add_token,
                "number": v.add_number,
                "uri": v.add_uri,
            }.get(ptype)
        if adder is None:
            return None
        found = self._adders[(ptype,)] = memoize(adder)
        return found

    def table_rows(self, resource: dict[str, Any]) -> v.Rows:
        """Rows per table name, each ``(param, *columns)``, duplicates removed."""
        out = self._collect(resource)
        return {table: list(dict.fromkeys(rows)) for table, rows in out.items() if rows}

    def _collect(self, resource: dict[str, Any]) -> v.Rows:
        """The rows of :meth:`table_rows`, duplicates not yet removed."""
        rtype = resource.get("resourceType")
        out: v.Rows = {}
        if not isinstance(rtype, str) or not self.model.is_resource_type(rtype):
            return out
        steps, composites = self._steps_for(rtype, resource)
        for code, compiled, adder, _, direct in steps:
            try:
                found = direct.values(resource) if direct is not None else None
                if found is None:
                    found = compiled.evaluate(resource)
            except Exception:
                continue
            for item in found:
                adder(out, code, item)
        if composites:
            memo: Memo = {}
            for composite in composites:
                composite.add(out, resource, memo)
        members = self.members(resource)
        if members:
            out.setdefault("token_index", []).extend(
                [(COMPARTMENT_PARAM, "Patient", pid) for pid in members]
            )
        if self.full_text:
            texts = text_rows(resource)
            if texts:
                out["text_index"] = list(texts)
        return out

    def keyed_rows(self, resource: dict[str, Any]) -> TableRows:
        """:meth:`table_rows` with ``resource_type, resource_id`` in front of every row:
        what ``Transaction.put_many`` accepts as precomputed ``index`` rows (keyed while
        the duplicates are dropped: one new tuple per row)."""
        key = (resource.get("resourceType"), resource.get("id"))
        return {
            table: [key + row for row in (rows if len(rows) == 1 else dict.fromkeys(rows))]
            for table, rows in self._collect(resource).items()
            if rows
        }

    def rows(self, resource: dict[str, Any]) -> Sequence[IndexRow]:
        """Token rows as :class:`IndexRow` (for callers of the plain Indexer contract)."""
        tokens = self.table_rows(resource).get("token_index", [])
        return [IndexRow("token", p, s, val) for p, s, val in tokens]
