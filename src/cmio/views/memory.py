"""The reference in-memory evaluator: a view run row by row with the FHIRPath engine.

Follows the processing algorithm of SQL on FHIR v2
(https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#processing-algorithm)
literally; it is the oracle the SQL engines are tested against and runs every
FHIRPath expression the engine supports (also those the SQL compilers refuse).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import product
from typing import Any

import pyarrow as pa

from cmio.fhirpath import FhirPathEngine, FhirPathError, FunctionSpec
from cmio.fhirpath.context import Context, TerminologyProvider
from cmio.fhirpath.fhirtypes import Node
from cmio.fhirpath.values import prim
from cmio.views.columns import arrow_schema, kind_of, python_value
from cmio.views.parse import ViewDefinitionError
from cmio.views.tree import Column, ForEach, ForEachOrNull, Repeat, Select, View

__all__ = ["MemoryEvaluator", "reference_key", "view_functions"]

_REFERENCE_TYPE = re.compile(r"getReferenceKey\(\s*([A-Za-z]+)\s*\)")
Row = dict[str, Any]


def reference_key(reference: str, wanted: str | None = None) -> str | None:
    """The key of the resource a reference points to (its id), None if it is not ``wanted``.

    Accepts relative (``Patient/1``), absolute (``http://x/fhir/Patient/1``) and
    versioned (``Patient/1/_history/2``) references; the key matches
    ``getResourceKey()`` of the target (its ``id``).
    """
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2:
        return None
    if wanted is not None and parts[-2] != wanted:
        return None
    return parts[-1] or None


def _resource_key(ctx: Context, items: list[Any]) -> list[Any]:
    out = []
    for item in items:
        value = item.value if type(item) is Node else item
        if type(value) is dict and isinstance(value.get("id"), str):
            out.append(value["id"])
    return out


def _reference_key(ctx: Context, items: list[Any], wanted: list[Any] | None = None) -> list[Any]:
    target = None
    if wanted:
        target = prim(wanted[0])
        if type(target) is not str:
            raise FhirPathError("getReferenceKey() takes a resource type")
    out = []
    for item in items:
        value = item.value if type(item) is Node else item
        reference = value.get("reference") if type(value) is dict else None
        if type(reference) is str:
            key = reference_key(reference, target)
            if key is not None:
                out.append(key)
    return out


def view_functions() -> dict[str, FunctionSpec]:
    """The functions SQL on FHIR adds to FHIRPath: ``getResourceKey()``, ``getReferenceKey([type])``.

    See https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#required-additional-functions.
    """
    return {
        "getResourceKey": FunctionSpec(_resource_key),
        "getReferenceKey": FunctionSpec(_reference_key, 0, 1),
    }


class MemoryEvaluator:
    """Runs views over resources (dicts) row by row.

    Args:
        engine: a FHIRPath engine created with :func:`view_functions` (one is made if None).
        terminology: answers ``memberOf()`` (e.g.
            :class:`cmio.views.valuesets.ExpansionMembership`); without one it is empty.
    """

    def __init__(
        self, engine: FhirPathEngine | None = None, terminology: TerminologyProvider | None = None
    ) -> None:
        self.engine = engine if engine is not None else FhirPathEngine(functions=view_functions())
        self.terminology = terminology

    def _compile(self, path: str, element: str) -> Any:
        try:
            return self.engine.compile(_REFERENCE_TYPE.sub(r"getReferenceKey('\1')", path))
        except FhirPathError as exc:
            raise ViewDefinitionError(f"invalid FHIRPath {path!r}: {exc}", element) from exc

    def _constants(self, view: View) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for constant in view.constants.values():
            info = self.engine.types.get(constant.type)
            if info is None or info.kind != "primitive":
                raise ViewDefinitionError(
                    f"unknown constant type {constant.type}", f"constant %{constant.name}"
                )
            out[constant.name] = Node(info.convert(constant.value), info)
        return out

    def _eval(self, path: str, element: str, focus: Any, env: dict[str, Any]) -> list[Any]:
        try:
            compiled = self._compile(path, element)
            return list(compiled.nodes(focus, env, terminology=self.terminology))
        except FhirPathError as exc:
            raise ViewDefinitionError(f"{path!r} failed: {exc}", element) from exc

    def _column(self, column: Column, focus: Any, env: dict[str, Any]) -> Any:
        items = self._eval(column.path, column.element, focus, env)
        kind = kind_of(column.type)
        try:
            values = [python_value(_public(item), kind) for item in items]
        except ValueError as exc:
            raise ViewDefinitionError(str(exc), f"{column.element}.path") from exc
        if column.collection:
            return values
        if len(values) > 1:
            raise ViewDefinitionError(
                f"{column.path!r} returned {len(values)} values; set collection: true",
                f"{column.element}.path",
            )
        return values[0] if values else None

    def _nulls(self, select: Select) -> Row:
        return {c.name: [] if c.collection else None for c in select.all_columns()}

    def _focuses(self, select: Select, focus: Any, env: dict[str, Any]) -> list[Any]:
        iteration = select.iteration
        if iteration is None:
            return [focus]
        if isinstance(iteration, ForEach | ForEachOrNull):
            element = f"{select.element}.{'forEach' if isinstance(iteration, ForEach) else 'forEachOrNull'}"
            return self._eval(iteration.path, element, focus, env)
        assert isinstance(iteration, Repeat)
        out: list[Any] = []

        def walk(node: Any) -> None:
            for i, path in enumerate(iteration.paths):
                for child in self._eval(path, f"{select.element}.repeat[{i}]", node, env):
                    out.append(child)
                    walk(child)

        walk(focus)
        return out

    def _rows(self, select: Select, focus: Any, env: dict[str, Any]) -> list[Row]:
        focuses = self._focuses(select, focus, env)
        if not focuses and isinstance(select.iteration, ForEachOrNull):
            nulls = self._nulls(select)
            scope = {**env, "rowIndex": 0}
            nulls.update({c.name: self._column(c, [], scope) for c in select.columns})
            return [nulls]
        rows: list[Row] = []
        for index, item in enumerate(focuses):
            scope = env if select.iteration is None else {**env, "rowIndex": index}
            own = {c.name: self._column(c, item, scope) for c in select.columns}
            parts: list[list[Row]] = [[own]]
            parts.extend(self._rows(s, item, scope) for s in select.selects)
            if select.union_all:
                parts.append([r for b in select.union_all for r in self._rows(b, item, scope)])
            for combo in product(*parts):
                row: Row = {}
                for part in combo:
                    row.update(part)
                rows.append(row)
        return rows

    def _keep(self, view: View, resource: Node, env: dict[str, Any]) -> bool:
        for where in view.where:
            result = [_public(i) for i in self._eval(where.path, where.element, resource, env)]
            if not result:
                return False
            if len(result) > 1 or not isinstance(result[0], bool):
                raise ViewDefinitionError(
                    f"where path {where.path!r} must return a boolean, not {result!r}",
                    where.element,
                )
            if not result[0]:
                return False
        return True

    def iter_rows(self, view: View, resources: Iterable[dict[str, Any]]) -> Iterator[Row]:
        """Yield the view's rows (dicts keyed by column name) for the resources of its type.

        Raises:
            ViewDefinitionError: a path fails, a non-collection column has several
                values, or a ``where`` returns a non-boolean.
        """
        constants = self._constants(view)
        info = self.engine.types.get(view.resource)
        if info is None or info.kind != "resource":
            raise ViewDefinitionError(
                f"unknown resource type {view.resource}", "ViewDefinition.resource"
            )
        order = view.column_names()
        for resource in resources:
            if resource.get("resourceType") != view.resource:
                continue
            node = Node(resource, info)
            env = {**constants, "rowIndex": 0}
            if not self._keep(view, node, env):
                continue
            for row in self._rows(view.select, node, env):
                yield {name: row.get(name) for name in order}

    def run(self, view: View, resources: Iterable[dict[str, Any]]) -> pa.Table:
        """The view's rows as an Arrow table (schema: :func:`~cmio.views.columns.arrow_schema`)."""
        schema = arrow_schema(view)
        return pa.Table.from_pylist(list(self.iter_rows(view, resources)), schema=schema)


def _public(item: Any) -> Any:
    if type(item) is Node:
        if item.value is None:
            return None
        value = prim(item)
        return item.value if value is item else value
    return item
