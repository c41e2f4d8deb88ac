"""The intermediate projection tree of a SQL on FHIR v2 ViewDefinition.

A validated ViewDefinition (see :mod:`cmio.views.parse`) becomes a :class:`View`:
immutable dataclasses that every engine consumes (the in-memory evaluator walks
them row by row; the SQL compiler turns them into one query).
Spec: https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html

The row semantics (https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#processing-algorithm):
a :class:`Select` produces, for each focus, the cross product of its own columns
(one row), its nested selects and its ``unionAll`` (the concatenation of the
branches' rows); an :data:`Iteration` (``forEach``, ``forEachOrNull``, ``repeat``)
first changes the focus to each item of a collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Column",
    "Constant",
    "ForEach",
    "ForEachOrNull",
    "Iteration",
    "Repeat",
    "Select",
    "View",
    "Where",
]


@dataclass(frozen=True, slots=True)
class Constant:
    """A ``constant``: ``%name`` in paths.

    Attributes:
        name: the constant's name (without ``%``).
        value: the JSON value of its ``value[x]``.
        type: the FHIR type of ``value[x]`` (``string``, ``integer``, ``dateTime``...).
    """

    name: str
    value: Any
    type: str


@dataclass(frozen=True, slots=True)
class Column:
    """A ``column``.

    Attributes:
        name: column name (``^[A-Za-z][A-Za-z0-9_]*$``).
        path: FHIRPath expression evaluated on the focus.
        type: the FHIR type of the values (``string``, ``integer``...), None when not given.
        collection: True: the column holds a list of every value (``[]`` when none);
            False: at most one value (several are an error).
        element: the element path of this column in the ViewDefinition, for errors
            (``ViewDefinition.select[0].column[1]``).
    """

    name: str
    path: str
    type: str | None = None
    collection: bool = False
    element: str = ""


@dataclass(frozen=True, slots=True)
class ForEach:
    """``forEach``: one focus per item of ``path``; no item, no row."""

    path: str


@dataclass(frozen=True, slots=True)
class ForEachOrNull:
    """``forEachOrNull``: like :class:`ForEach`, but no item gives one row of nulls."""

    path: str


@dataclass(frozen=True, slots=True)
class Repeat:
    """``repeat``: every node reachable by applying ``paths`` recursively, depth first."""

    paths: tuple[str, ...]


Iteration = ForEach | ForEachOrNull | Repeat
"""How a select changes its focus."""


@dataclass(frozen=True, slots=True)
class Select:
    """One ``select`` element.

    Attributes:
        columns: its own columns.
        selects: nested selects (cross product).
        union_all: the ``unionAll`` branches (their rows concatenated), or None.
        iteration: forEach / forEachOrNull / repeat, or None (the focus itself).
        element: element path in the ViewDefinition (for errors).
    """

    columns: tuple[Column, ...] = ()
    selects: tuple[Select, ...] = ()
    union_all: tuple[Select, ...] | None = None
    iteration: Iteration | None = None
    element: str = ""

    def column_names(self) -> list[str]:
        """The output columns in the spec's order: own, nested selects, then unionAll."""
        names = [column.name for column in self.columns]
        for select in self.selects:
            names.extend(select.column_names())
        if self.union_all:
            names.extend(self.union_all[0].column_names())
        return names

    def all_columns(self) -> list[Column]:
        """The :class:`Column` objects in output order (unionAll: the first branch's)."""
        columns = list(self.columns)
        for select in self.selects:
            columns.extend(select.all_columns())
        if self.union_all:
            columns.extend(self.union_all[0].all_columns())
        return columns


@dataclass(frozen=True, slots=True)
class Where:
    """A view-level ``where``: rows of resources for which ``path`` is not true are dropped."""

    path: str
    element: str = ""


@dataclass(frozen=True, slots=True)
class View:
    """A validated ViewDefinition.

    Attributes:
        resource: the FHIR resource type the view reads.
        select: the root select (the view's ``select`` list as nested selects).
        constants: the constants by name.
        where: the view-level filters (all must be true).
        name: the view's ``name`` (None when absent).
        source: the ViewDefinition JSON it was built from.
    """

    resource: str
    select: Select
    constants: dict[str, Constant] = field(default_factory=dict)
    where: tuple[Where, ...] = ()
    name: str | None = None
    source: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def column_names(self) -> list[str]:
        """The output column names, in order."""
        return self.select.column_names()

    def columns(self) -> list[Column]:
        """The output columns, in order."""
        return self.select.all_columns()

    def paths(self) -> list[str]:
        """Every FHIRPath expression of the view (columns, iterations, ``where``)."""
        out = [where.path for where in self.where]
        selects = [self.select]
        while selects:
            select = selects.pop()
            out.extend(column.path for column in select.columns)
            iteration = select.iteration
            if isinstance(iteration, Repeat):
                out.extend(iteration.paths)
            elif iteration is not None:
                out.append(iteration.path)
            selects.extend(select.selects)
            selects.extend(select.union_all or ())
        return out
