"""Composite search parameters (https://hl7.org/fhir/R4/search.html#composite).

For each item of the composite's expression (the resource itself, or e.g. each
``Observation.component``), every component expression is evaluated on that
item; when all components have values, their rows are written to the typed
tables under the parameter name ``<code>$<k>:<n>`` (component ``k`` of item
``n``). A search joins the components of the same item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cmio.fhirpath import FhirPathEngine
from cmio.fhirpath.engine import CompiledExpression
from cmio.indexing import values as v
from cmio.model import Model
from cmio.model.types import SearchParamDef

__all__ = ["CompositePlan", "component_types", "composite_param", "plan_composite"]

Adder = Callable[[v.Rows, str, Any], None]


def composite_param(code: str, component: int, item: int | None = None) -> str:
    """The index parameter name of a composite component (``item`` None: the prefix)."""
    return f"{code}${component}:" + ("" if item is None else str(item))


def component_types(model: Model, spd: SearchParamDef) -> tuple[str, ...] | None:
    """The search types of the components, or None if one is not a standard parameter."""
    by_url = {p.url: p for p in model.search_params if p.url in {c[0] for c in spd.components}}
    found = [by_url.get(url) for url, _ in spd.components]
    if any(p is None or p.type in ("composite", "special") for p in found):
        return None
    return tuple(p.type for p in found if p is not None)


class CompositePlan:
    """The compiled base and component expressions of one composite parameter."""

    def __init__(
        self,
        code: str,
        base: CompiledExpression,
        components: list[tuple[CompiledExpression, Adder]],
    ) -> None:
        self.code = code
        self.base = base
        self.components = components

    def add(self, out: v.Rows, resource: dict[str, Any]) -> None:
        """Append this parameter's rows for ``resource`` to ``out``."""
        try:
            items = self.base.nodes(resource)
        except Exception:
            return
        for n, item in enumerate(items):
            rows: v.Rows = {}
            complete = True
            for k, (compiled, adder) in enumerate(self.components):
                try:
                    found = compiled.evaluate([item])
                except Exception:
                    found = []
                if not found:
                    complete = False
                    break
                for value in found:
                    adder(rows, composite_param(self.code, k, n), value)
            if not complete:
                continue
            for table, table_rows in rows.items():
                if table == "string_index":  # no :text rows for components
                    table_rows = [r for r in table_rows if not r[0].endswith(":text")]
                out.setdefault(table, []).extend(table_rows)


def plan_composite(
    engine: FhirPathEngine,
    model: Model,
    spd: SearchParamDef,
    base: str,
    adders: dict[str, Adder],
) -> CompositePlan | None:
    """Compile one composite parameter for a resource type (None if unsupported)."""
    from cmio.indexing.extract import rewrite_as

    types = component_types(model, spd)
    if types is None:
        return None
    components: list[tuple[CompiledExpression, Adder]] = []
    for (_, expression), ptype in zip(spd.components, types, strict=True):
        adder = adders.get(ptype)
        if adder is None:
            return None
        components.append((engine.compile(rewrite_as(expression)), adder))
    return CompositePlan(spd.code, engine.compile(base), components)
