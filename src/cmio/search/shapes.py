"""Compiled searches reused by shape: a prepared statement per query shape.

Two searches that differ only in their values (another patient, another code, another
date of the same prefix) compile to the same SQL text with other bind values. The
compiler keeps the text of each shape it has compiled, with where each placeholder
takes its value from; a later search of that shape gets its bind values from
:func:`bind` (a walk over the resolved clauses, no sqlglot tree built or rendered), and
SQLite's statement cache finds the same text prepared. This caches no results: every
search still runs its SQL. See https://hl7.org/fhir/R4/search.html.

:func:`bind` follows :class:`cmio.search.sql.SqlBuilder` and
:class:`cmio.search.compiler.SearchCompiler` branch by branch: it records each branch
taken (the shape) and each bind value in the order the builder asks for it. A shape
is kept only when its first compilation asked for exactly the values :func:`bind`
derived (otherwise the shape is compiled afresh every time); clause kinds it does not
follow (composites, full text, terminology modifiers, numbers, quantities...) are
always compiled afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import TYPE_CHECKING, Any

from cmio.indexing.values import normalize, reference_parts
from cmio.search import values as sv
from cmio.search.request import Chain, Filter, Has, Node
from cmio.search.sql import escape_like
from cmio.store._query import Sql
from cmio.store.base import InvalidRequestError, SearchQuery

if TYPE_CHECKING:
    from cmio.search.compiler import SearchCompiler

__all__ = ["Shapes", "Template", "bind"]

_COLUMNS = ("_id", "_type", "_lastUpdated")
_AT_OR_AFTER = {"eq": 0, "ge": 0, "gt": 1, "sa": 1, "ap": 0}
_BEFORE = {"eq": 1, "le": 1, "lt": 0, "eb": 0, "ap": 1}


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled search: statement texts with, per ``?``, the index of its bind value."""

    page: str
    page_slots: tuple[int, ...]
    count: str | None
    count_slots: tuple[int, ...]

    def statements(self, values: list[Any]) -> tuple[Sql, Sql | None]:
        """The page and count statements bound to ``values``."""
        page = Sql(self.page, tuple(values[i] for i in self.page_slots))
        if self.count is None:
            return page, None
        return page, Sql(self.count, tuple(values[i] for i in self.count_slots))


class _Skip(Exception):
    """A clause kind :func:`bind` does not follow (the search is compiled afresh)."""


class _Binder:
    """Walks a search as the SQL builder does, recording branches and bind values."""

    def __init__(self) -> None:
        self.shape: list[object] = []
        self.values: list[Any] = []
        self.probe = False

    def p(self, value: Any) -> None:
        self.values.append(value)

    def mark(self, *branch: object) -> None:
        self.shape.append(branch)

    def ids(self, node: Node) -> None:
        if isinstance(node, Has):
            probe, self.probe = self.probe, False
            self.mark("has", node.rtype, node.source, node.code, probe)
            self.index(node.source, node.code)
            if probe:  # the inner clause probed per referrer (SqlBuilder.condition)
                self.probe = True
                self.mark("condition", True)
            self.ids(node.inner)
            self.probe = False
            self.p(node.rtype)
        elif isinstance(node, Chain):
            self.mark("chain", node.rtype, node.code, tuple(t for t, _ in node.inner))
            self.index(node.rtype, node.code)
            for target, branch in node.inner:
                self.ids(branch)
                self.p(target)
        else:
            self.filter(node)

    def index(self, rtype: str | None, code: str, keep_param: bool = False) -> None:
        if rtype is not None:
            self.p(rtype)
        self.mark("index", rtype is None, self.probe, keep_param)
        if self.probe:
            self.probe = False
            if not keep_param:
                self.p("")
        self.p(code)

    def filter(self, f: Filter) -> None:
        self.mark("f", f.rtype, f.code, f.type, f.modifier, f.targets, len(f.values))
        if f.code in _COLUMNS:
            if f.rtype is not None:
                self.p(f.rtype)
            self.resource(f)
            return
        if f.modifier == "missing":
            flags = {v.lower() for v in f.values}
            if not flags <= {"true", "false"} or len(flags) != 1:
                raise _Skip
            self.mark(flags == {"true"})
            self.index(f.rtype, f.code)
            return
        if f.type not in ("token", "reference", "string", "uri", "date"):
            raise _Skip
        if f.modifier not in (None, "not", "exact", "contains", "below", "above"):
            raise _Skip
        if f.type == "reference" and len(f.values) > 1:
            self.reference_values(f.values, f.targets)
        elif f.type == "reference":
            for value in f.values:
                self.reference(value, f.targets)
        elif f.type == "string":
            for value in f.values:
                self.string(value, f.modifier)
        elif f.type == "uri":
            for value in f.values:
                self.uri(value, f.modifier)
        elif f.type == "token" and f.modifier is None and len(f.values) > 1:
            self.token_values(f.values)
        elif f.type == "token":
            for value in f.values:
                self.token_pair(*sv.split_token(value))
        else:
            for value in f.values:
                self.date(value)
        # SqlBuilder._filter: a plain token probe keeps ``param`` indexed
        self.index(f.rtype, f.code, self.probe and f.type == "token" and f.modifier is None)

    def resource(self, f: Filter) -> None:
        """:func:`cmio.search.columns.resource_condition`."""
        if f.code == "_id" and f.modifier == "missing":
            self.mark("missing", f.values[0] == "false")
        elif f.code in ("_id", "_type"):
            for value in f.values:
                self.p(value)
        else:
            for value in f.values:
                prefix, low, high = self.date_range(value)
                bounds = (low, high)
                if prefix == "ne":
                    self.p(low)
                    self.p(high)
                    continue
                if prefix in _AT_OR_AFTER:
                    self.p(bounds[_AT_OR_AFTER[prefix]])
                if prefix in _BEFORE:
                    self.p(bounds[_BEFORE[prefix]])

    def token_pair(self, system: str | None, code: str | None) -> None:
        self.mark("pair", system is None, system == "", code is None)
        if system:
            self.p(system)
        if code is not None:
            self.p(code)

    def token_values(self, values: tuple[str, ...]) -> None:
        by_system: dict[str | None, list[str]] = {}
        for value in values:
            system, code = sv.split_token(value)
            if code is None or system == "":
                self.token_pair(system, code)
            else:
                by_system.setdefault(system, []).append(code)
        for system, codes in by_system.items():
            unique = list(dict.fromkeys(codes))
            self.mark("codes", len(unique), system is None)
            for code in unique:
                self.p(code)
            if system is not None:
                self.p(system)

    def string(self, value: str, modifier: str | None) -> None:
        if modifier == "exact":
            self.mark("exact")
            self.p(value)
            return
        norm = normalize(value)
        if modifier == "contains":
            self.mark("contains")
            self.p(f"%{escape_like(norm)}%")
            return
        self.mark("prefix", bool(norm))
        if norm:
            self.p(norm)
            self.p(sv.increment(norm))

    def uri(self, value: str, modifier: str | None) -> None:
        self.mark("uri", modifier)
        self.p(value)
        if modifier == "below":
            self.p(sv.increment(value))
        elif modifier == "above":
            self.p("%")

    def reference(self, value: str, targets: tuple[str, ...]) -> None:
        if "://" in value or value.startswith("urn:"):
            self.mark("url")
            self.p(reference_parts(value)[2])
            return
        if "/" in value:
            rtype, _, rid = value.partition("/")
            if "/" in rid:
                raise _Skip
            self.mark("typed")
            self.p(rtype)
            self.p(rid)
            return
        self.mark("bare", len(targets) == 1)
        self.p(value)
        if len(targets) == 1:
            self.p(targets[0])

    def reference_values(self, values: tuple[str, ...], targets: tuple[str, ...]) -> None:
        by_type: dict[str | None, list[str]] = {}
        for value in values:
            if "://" in value or value.startswith("urn:"):
                self.reference(value, targets)
                continue
            rtype: str | None
            if "/" in value:
                rtype, _, rid = value.partition("/")
                if "/" in rid:
                    raise _Skip
            else:
                rtype, rid = (targets[0] if len(targets) == 1 else None), value
            by_type.setdefault(rtype, []).append(rid)
        for rtype, ids in by_type.items():
            unique = list(dict.fromkeys(ids))
            self.mark("refs", len(unique), rtype is None)
            for rid in unique:
                self.p(rid)
            if rtype is not None:
                self.p(rtype)

    def date_range(self, value: str) -> tuple[str, str, str]:
        prefix, low, high = sv.parse_date(value)
        if prefix == "ap":
            low, high = sv.approximate(low, high)
        self.mark("date", prefix)
        return prefix, low, high

    def date(self, value: str) -> None:
        """:meth:`cmio.search.sql.SqlBuilder.range_condition` on ``low``/``high``."""
        prefix, low, high = self.date_range(value)
        self.p(low)
        self.p(high)
        if prefix == "ne":
            self.p(low)
            self.p(high)
        elif prefix in ("ge", "le"):
            self.p("")
            self.p(high if prefix == "ge" else low)


def bind(
    compiler: SearchCompiler, query: SearchQuery, dialect: str
) -> tuple[tuple[object, ...], list[Any]] | None:
    """``(shape, bind values)`` of a search, as :meth:`SearchCompiler.compile` would ask
    for them; None when a clause is of a kind this does not follow or is malformed."""
    from cmio.search.compiler import ESTIMATE_BOUND, parse_sort, selectivity

    b = _Binder()
    b.mark(dialect, query.type, query.sort, query.total, query.estimate)
    b.mark(query.snapshot is None, query.after is None)
    try:
        if query.snapshot is not None:
            b.p(query.snapshot)
        nodes = sorted(compiler.nodes(query), key=selectivity)
        if query.type is None:
            b.mark("pair")
        elif nodes and not (isinstance(nodes[0], Filter) and nodes[0].code in _COLUMNS):
            b.mark("pair")
            b.p("")
            b.p(query.type)
        else:
            b.mark("id")
            b.p(query.type)
        driving = True
        for node in nodes:
            if isinstance(node, Filter) and node.code in _COLUMNS:
                b.mark("column", node.code, node.modifier, len(node.values))
                b.resource(node)
                driving = driving and node.code != "_id"
                continue
            b.probe = not driving and query.type is not None
            b.mark("condition", b.probe)
            b.ids(node)
            b.probe = False
            driving = False
        if query.after is not None and not query.sort:
            lu, rtype, rid = query.after
            for value in (lu, rid) if query.type else (lu, rtype, rid):
                b.p(value)
        seen: set[str] = set()
        for code, _, ptype in parse_sort(
            compiler.model, query.type, query.sort or ("_lastUpdated",)
        ):
            if code in seen:
                continue
            seen.add(code)
            if ptype != "special":
                b.p("")
                b.p(code)
        b.p(max(0, query.count))
        b.p(max(0, query.offset))
        if query.total and query.estimate:
            b.p(ESTIMATE_BOUND)
    except (_Skip, InvalidRequestError, ValueError, ArithmeticError):
        return None
    return tuple(b.shape), b.values


class Shapes:
    """The compiled templates of one compiler, by shape (at most ``size``; when full, the
    table starts over). Shared by threads: a dict read, and writes under a lock.

    Args:
        size: how many shapes are kept.
    """

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._templates: dict[tuple[object, ...], Template | None] = {}
        self._lock = Lock()
        self._model: object = None  # the model the templates were compiled for

    def compile(
        self,
        compiler: SearchCompiler,
        query: SearchQuery,
        dialect: str,
        fresh: Callable[[SearchQuery, str], tuple[Template, list[Any]]],
    ) -> tuple[Sql, Sql | None]:
        """The statements of ``query``: from its shape's template, or ``fresh`` (which
        compiles it and returns the template and the values it bound)."""
        if compiler.model is not self._model:
            with self._lock:  # another model (custom SearchParameters): start over
                self._templates.clear()
                self._model = compiler.model
        bound = bind(compiler, query, dialect)
        if bound is None:
            template, values = fresh(query, dialect)
            return template.statements(values)
        shape, values = bound
        found = self._templates.get(shape, False)
        if found is None:  # this shape did not bind as compiled: always fresh
            template, values = fresh(query, dialect)
            return template.statements(values)
        if found is not False:
            assert isinstance(found, Template)
            return found.statements(values)
        template, compiled = fresh(query, dialect)
        same = len(compiled) == len(values) and all(
            type(a) is type(b) and a == b for a, b in zip(compiled, values, strict=True)
        )
        with self._lock:
            if len(self._templates) >= self.size:
                self._templates.clear()
            self._templates[shape] = template if same else None
        return template.statements(compiled)

    def __len__(self) -> int:
        return len(self._templates)
