"""Every standard search parameter is indexed and queryable (both backends).

For each of the 1,375 R4 SearchParameters and each of its base types, a minimal
resource with a value for it is stored and searched for with a matching value.
Parameters no plain resource can exercise this way are listed by
:func:`uncovered` with the reason; the test pins their number.
https://hl7.org/fhir/R4/searchparameter-registry.html
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from cmio.indexing import SearchIndexer
from cmio.indexing.extract import NOT_INDEXED
from cmio.model import Model
from cmio.store import Repository
from cmio.store.base import SearchClause, SearchQuery
from cmio.store.postgres import PostgresRepository
from cmio.store.sqlite import SqliteRepository
from cmio.testing.pg import with_search_path

from .coverage import example

Case = tuple[str, str, dict[str, Any], str]


def cases(model: Model) -> tuple[list[Case], dict[str, str]]:
    """Runnable cases ``(type, code, resource, value)`` and the uncovered ``type.code -> reason``."""
    runnable: list[Case] = []
    missing: dict[str, str] = {}
    for spd in model.search_params:
        for rtype in spd.base:
            name = f"{rtype}.{spd.code}"
            if rtype in ("Resource", "DomainResource"):
                rtype = "Patient"
            if spd.type == "composite":
                missing[name] = "composite: exercised in test_sql_vs_memory, not generated here"
                continue
            if spd.type == "special" or spd.code in NOT_INDEXED:
                missing[name] = f"{spd.type} parameter: not indexed"
                continue
            found = example(model, spd, rtype)
            if isinstance(found, str):
                missing[name] = found
                continue
            resource, value = found
            resource["id"] = f"cov-{len(runnable)}"
            runnable.append((rtype, spd.code, resource, value))
    return runnable, missing


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def repo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, indexer: SearchIndexer
) -> Iterator[Repository]:
    store: Repository
    if request.param == "sqlite":
        store = SqliteRepository(tmp_path_factory.mktemp("cov") / "c.db", indexer=indexer)
    else:
        url: str = request.getfixturevalue("postgres_url")
        schema = f"c_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        store = PostgresRepository(with_search_path(url, schema), indexer=indexer)
    yield store
    store.close()


def test_every_parameter_is_queryable(repo: Repository, model: Model) -> None:
    runnable, missing = cases(model)
    with repo.transaction() as tx:
        tx.put_many([c[2] for c in runnable])
    failures: list[str] = []
    for rtype, code, resource, value in runnable:
        query = SearchQuery(rtype, (SearchClause(code, (value,)),), count=5, total=False)
        ids = {s.id for s in repo.search(query).resources}
        if resource["id"] not in ids:
            failures.append(f"{rtype}.{code}={value}")
    assert failures == [], failures
    # 1,375 definitions expand to more (type, code) pairs (shared parameters); the rest
    # are composite/special parameters or expressions with where()/functions.
    assert len(runnable) >= 1400, len(runnable)
    assert len(missing) <= 200, sorted(missing)


def test_searchable_parameters_resolve(model: Model) -> None:
    """Every parameter the CapabilityStatement may advertise resolves without error."""
    from cmio.indexing.composite import component_types
    from cmio.search.request import resolve, searchable

    count = 0
    for rtype in sorted(model.resource_types):
        for spd in searchable(model, rtype):
            parts = len(component_types(model, spd) or ()) if spd.type == "composite" else 1
            resolve(model, rtype, spd.code, ("$".join(["x"] * parts),))
            count += 1
    assert count > 1500
