"""Validate a ViewDefinition (JSON) and build its :class:`~cmio.views.tree.View`.

Implements the structural rules of SQL on FHIR v2
(https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#constraints):
a ``resource`` and at least one ``select``; at most one of ``forEach``,
``forEachOrNull`` and ``repeat`` per select, ``forEach`` a string and ``repeat``
a list of strings; columns with a valid unique name and a string ``path``;
``unionAll`` branches with the same column names in the same order; constants
with exactly one ``value[x]``; every ``%name`` defined; every FHIRPath parsable.
Errors raise :class:`ViewDefinitionError` naming the element path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from cmio.fhirpath import FhirPathError, parse
from cmio.fhirpath.syntax import EnvVar, Expr
from cmio.views.tree import (
    Column,
    Constant,
    ForEach,
    ForEachOrNull,
    Iteration,
    Repeat,
    Select,
    View,
    Where,
)

__all__ = ["ENVIRONMENT", "ViewDefinitionError", "env_names", "parse_view"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESOURCE = re.compile(r"^[A-Z][A-Za-z]+$")
_SELECT_KEYS = frozenset({"column", "select", "forEach", "forEachOrNull", "repeat", "unionAll"})
ENVIRONMENT = frozenset({"rowIndex", "resource", "rootResource", "context", "ucum", "sct", "loinc"})
"""Environment variables every view may use besides its constants."""


class ViewDefinitionError(ValueError):
    """An invalid ViewDefinition, or a path that fails on the data.

    Attributes:
        element: the element path in the ViewDefinition (``ViewDefinition.select[0].forEach``).
    """

    def __init__(self, message: str, element: str = "ViewDefinition") -> None:
        super().__init__(f"{element}: {message}")
        self.element = element
        self.detail = message

    def operation_outcome(self) -> dict[str, Any]:
        """The error as an R4 OperationOutcome (https://hl7.org/fhir/R4/operationoutcome.html)."""
        return {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": "invalid",
                    "diagnostics": self.detail,
                    "expression": [self.element],
                }
            ],
        }


def env_names(expr: Expr) -> Iterator[str]:
    """The ``%name`` variables an expression tree uses."""
    if isinstance(expr, EnvVar):
        yield expr.name
    for slot in type(expr).__slots__:
        value = getattr(expr, slot, None)
        if isinstance(value, Expr):
            yield from env_names(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Expr):
                    yield from env_names(item)


class _Parser:
    def __init__(self, constants: dict[str, Constant]) -> None:
        self.constants = constants
        self.names: dict[str, str] = {}

    def path(self, value: Any, element: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ViewDefinitionError("a FHIRPath expression (string) is required", element)
        try:
            tree = parse(value)
        except FhirPathError as exc:
            raise ViewDefinitionError(f"invalid FHIRPath {value!r}: {exc}", element) from exc
        for name in env_names(tree):
            if name not in self.constants and name not in ENVIRONMENT:
                raise ViewDefinitionError(f"undefined constant %{name} in {value!r}", element)
        return value

    def column(self, data: Any, element: str) -> Column:
        if not isinstance(data, dict):
            raise ViewDefinitionError("a column must be an object", element)
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ViewDefinitionError(
                f"column name {name!r} must match {_NAME.pattern}", f"{element}.name"
            )
        path = self.path(data.get("path"), f"{element}.path")
        ctype = data.get("type")
        if ctype is not None and (not isinstance(ctype, str) or not ctype):
            raise ViewDefinitionError("type must be a FHIR type name", f"{element}.type")
        collection = data.get("collection", False)
        if not isinstance(collection, bool):
            raise ViewDefinitionError("collection must be a boolean", f"{element}.collection")
        return Column(name, path, ctype, collection, element)

    def iteration(self, data: dict[str, Any], element: str) -> Iteration | None:
        present = [key for key in ("forEach", "forEachOrNull", "repeat") if key in data]
        if len(present) > 1:
            raise ViewDefinitionError(f"{' and '.join(present)} are exclusive", element)
        if "forEach" in data:
            return ForEach(self.path(data["forEach"], f"{element}.forEach"))
        if "forEachOrNull" in data:
            return ForEachOrNull(self.path(data["forEachOrNull"], f"{element}.forEachOrNull"))
        if "repeat" in data:
            paths = data["repeat"]
            if not isinstance(paths, list) or not paths:
                raise ViewDefinitionError("repeat must be a non-empty list", f"{element}.repeat")
            return Repeat(
                tuple(self.path(p, f"{element}.repeat[{i}]") for i, p in enumerate(paths))
            )
        return None

    def select(self, data: Any, element: str) -> Select:
        if not isinstance(data, dict):
            raise ViewDefinitionError("a select must be an object", element)
        unknown = sorted(set(data) - _SELECT_KEYS)
        if unknown:
            raise ViewDefinitionError(f"unknown element(s) {', '.join(unknown)}", element)
        iteration = self.iteration(data, element)
        columns = tuple(
            self.column(c, f"{element}.column[{i}]")
            for i, c in enumerate(self.listing(data, "column", element))
        )
        selects = tuple(
            self.select(s, f"{element}.select[{i}]")
            for i, s in enumerate(self.listing(data, "select", element))
        )
        union_all: tuple[Select, ...] | None = None
        if "unionAll" in data:
            branches = self.listing(data, "unionAll", element)
            if not branches:
                raise ViewDefinitionError("unionAll must not be empty", f"{element}.unionAll")
            union_all = tuple(
                self.select(s, f"{element}.unionAll[{i}]") for i, s in enumerate(branches)
            )
            first = union_all[0].column_names()
            for i, branch in enumerate(union_all[1:], 1):
                if branch.column_names() != first:
                    raise ViewDefinitionError(
                        f"unionAll branches must have the same columns in the same order: "
                        f"{first} != {branch.column_names()}",
                        f"{element}.unionAll[{i}]",
                    )
        if not columns and not selects and union_all is None:
            raise ViewDefinitionError("a select needs a column, select or unionAll", element)
        return Select(columns, selects, union_all, iteration, element)

    @staticmethod
    def listing(data: dict[str, Any], key: str, element: str) -> list[Any]:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise ViewDefinitionError(f"{key} must be a list", f"{element}.{key}")
        return value


def _constant(data: Any, element: str) -> Constant:
    if not isinstance(data, dict):
        raise ViewDefinitionError("a constant must be an object", element)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ViewDefinitionError(f"constant name {name!r} is invalid", f"{element}.name")
    values = [key for key in data if key.startswith("value") and len(key) > 5]
    if len(values) != 1:
        raise ViewDefinitionError(
            f"constant %{name} needs exactly one value[x], found {len(values)}", element
        )
    key = values[0]
    ftype = key[5].lower() + key[6:]
    value = data[key]
    if value is None or isinstance(value, dict | list):
        raise ViewDefinitionError(f"constant %{name} must be a primitive", f"{element}.{key}")
    return Constant(name, value, ftype)


def _check_names(select: Select) -> None:
    seen: set[str] = set()
    for column in select.all_columns():
        if column.name in seen:
            raise ViewDefinitionError(f"duplicate column name {column.name!r}", column.element)
        seen.add(column.name)


def parse_view(data: Any) -> View:
    """Validate a ViewDefinition and build its projection tree.

    See https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html.

    Args:
        data: the ViewDefinition JSON (``resourceType`` optional).

    Returns:
        The :class:`~cmio.views.tree.View`.

    Raises:
        ViewDefinitionError: naming the offending element.
    """
    if not isinstance(data, dict):
        raise ViewDefinitionError("a ViewDefinition must be a JSON object")
    if data.get("resourceType", "ViewDefinition") != "ViewDefinition":
        raise ViewDefinitionError("resourceType must be ViewDefinition", "ViewDefinition")
    resource = data.get("resource")
    if not isinstance(resource, str) or not _RESOURCE.match(resource):
        raise ViewDefinitionError(
            "resource (a FHIR resource type) is required", "ViewDefinition.resource"
        )
    constants: dict[str, Constant] = {}
    raw_constants = data.get("constant", [])
    if not isinstance(raw_constants, list):
        raise ViewDefinitionError("constant must be a list", "ViewDefinition.constant")
    for i, raw in enumerate(raw_constants):
        constant = _constant(raw, f"ViewDefinition.constant[{i}]")
        if constant.name in constants or constant.name in ENVIRONMENT:
            raise ViewDefinitionError(
                f"constant %{constant.name} is defined twice", f"ViewDefinition.constant[{i}]"
            )
        constants[constant.name] = constant
    parser = _Parser(constants)
    selects = data.get("select")
    if not isinstance(selects, list) or not selects:
        raise ViewDefinitionError("at least one select is required", "ViewDefinition.select")
    root = Select(
        selects=tuple(
            parser.select(s, f"ViewDefinition.select[{i}]") for i, s in enumerate(selects)
        ),
        element="ViewDefinition",
    )
    _check_names(root)
    raw_where = data.get("where", [])
    if not isinstance(raw_where, list):
        raise ViewDefinitionError("where must be a list", "ViewDefinition.where")
    where = []
    for i, item in enumerate(raw_where):
        element = f"ViewDefinition.where[{i}]"
        if not isinstance(item, dict):
            raise ViewDefinitionError("a where must be an object", element)
        where.append(Where(parser.path(item.get("path"), f"{element}.path"), f"{element}.path"))
    name = data.get("name")
    return View(
        resource,
        root,
        constants,
        tuple(where),
        name if isinstance(name, str) else None,
        data,
    )
