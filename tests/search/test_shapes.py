"""Compiled searches reused by shape give exactly the statements of a fresh compilation.

https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

import copy
from dataclasses import replace
from itertools import product

import pytest

from cmio.model import Model
from cmio.search.compiler import SearchCompiler
from cmio.search.shapes import bind
from cmio.store._query import Sql
from cmio.store.base import InvalidRequestError, SearchClause, SearchQuery

from .test_sql_vs_memory import QUERIES

#: alternative values per parameter type: every form the compiler treats differently
POOL = {
    "token": ["a", "http://s|a", "|a", "http://s|", "a,b", "http://s|a,http://s|b,|c", "a,a"],
    "reference": [
        "p1",
        "Patient/p1",
        "http://x.org/fhir/Patient/p1",
        "p1,p2",
        "Patient/p1,p2,Patient/p1",
        "urn:uuid:1,Practitioner/d",
    ],
    "string": ["smi", "a", "ñúñ", "!!", "smi,jo"],
    "date": [
        f"{p}{d}"
        for p, d in product(["", "ge", "le", "gt", "lt", "ne", "sa", "eb"], ["2024", "2024-03-01"])
    ],
    "uri": ["http://p/a", "http://p/a,http://p/b"],
}


def _fresh(compiler: SearchCompiler, query: SearchQuery, dialect: str) -> tuple[Sql, Sql | None]:
    template, values = compiler.template(query, dialect)
    return template.statements(values)


def _variants(model: Model) -> list[SearchQuery]:
    """The test queries with each clause's values swapped for the pool's forms, and with
    paging, sorting and totals varied."""
    compiler = SearchCompiler(model)
    out: list[SearchQuery] = []
    for n, (rtype, clauses) in enumerate(QUERIES):
        base = SearchQuery(
            rtype, tuple(SearchClause(n, v) for n, v in clauses), count=20, total=True
        )
        out.append(base)
        if n % 4 == 0:
            out += [
                replace(base, total=False, offset=5),
                replace(base, estimate=True, snapshot="2030-01-01T00:00:00.000Z"),
                replace(base, after=("2024-01-01T00:00:00.000Z", rtype or "Patient", "x")),
                replace(base, sort=("-_lastUpdated", "_id")),
            ]
        for i, _ in enumerate(clauses):
            try:
                node_type = compiler.nodes(replace(base, clauses=(base.clauses[i],)))[0]
            except InvalidRequestError:
                continue
            kind = getattr(node_type, "type", None)
            for value in POOL.get(str(kind), []):
                changed = list(base.clauses)
                changed[i] = SearchClause(changed[i].name, tuple(value.split(",")))
                out.append(replace(base, clauses=tuple(changed)))
    return out


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_reused_statements_equal_fresh_ones(model: Model, dialect: str) -> None:
    """Every variant, compiled through the shape table (filled by the variants before
    it), gives the statements a fresh compilation gives; searches of one shape share
    one SQL text."""
    compiler = SearchCompiler(model)
    texts: dict[tuple[object, ...], set[str]] = {}
    bound = 0
    variants = _variants(model)
    if dialect == "postgres":  # the same walk; the rendering differs
        variants = variants[::3]
    for query in variants:
        try:
            want = _fresh(compiler, query, dialect)
        except InvalidRequestError:
            with pytest.raises(InvalidRequestError):
                compiler.compile(query, dialect)
            continue
        found = bind(compiler, query, dialect)
        if found is not None:
            bound += 1
            texts.setdefault(found[0], set()).add(want[0].text)
        if any(v.startswith("ap") for c in query.clauses for v in c.values):
            continue  # ``ap`` widens by 10% of the distance from now: values move
        assert compiler.compile(query, dialect) == want
        assert compiler.compile(query, dialect) == want  # from the table
    assert bound > len(variants) // 2
    assert all(len(t) == 1 for t in texts.values())
    assert len(compiler.shapes) > 100


def test_shape_table_starts_over_for_another_model(model: Model) -> None:
    """A model switch (custom SearchParameters after ``$reindex``) empties the table."""
    compiler = SearchCompiler(model)
    query = SearchQuery("Patient", (SearchClause("name", ("smi",)),), count=10)
    first = compiler.compile(query, "sqlite")
    compiler.compile(replace(query, total=False), "sqlite")
    assert len(compiler.shapes) == 2
    compiler.model = copy.copy(model)  # as SearchIndexer.use_model does
    assert compiler.compile(query, "sqlite") == first
    assert len(compiler.shapes) == 1
