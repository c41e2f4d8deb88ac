"""Injection attempts in every search parameter type and modifier, on SQLite and PostgreSQL.

For each parameter type (string, token, reference, date, number, quantity, uri,
composite, special) and its modifiers, values carrying SQL metacharacters, quotes,
NUL, LIKE wildcards (``%``, ``_``), full-text operators, unicode and very long values
are searched through the router. Every answer is a 200 or a 4xx OperationOutcome
(never a 5xx); a 200 matches exactly what the independent in-memory matcher finds
(a ``%`` matches only values holding a ``%``); and the database is unchanged
(resources, versions and tables).
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest

from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.indexing import SearchIndexer
from cmio.model import Model, load_model
from cmio.search.memory import MemoryIndex
from cmio.store.base import InvalidRequestError, SearchClause, SearchQuery
from cmio.testing.pg import with_search_path

PAYLOADS: tuple[str, ...] = (
    "%",
    "_",
    "%_%",
    "100%",
    "under_",
    "' OR '1'='1",
    "'; DROP TABLE resources; --",
    '" OR ""="',
    "x' UNION SELECT name FROM sqlite_master --",
    "1; SELECT pg_sleep(3)",
    "\\",
    "\\%",
    "O'Brien",
    "a\x00b",
    "Ω💥",
    "Siobhán",
    "*",
    '"quoted" AND NOT x',
    "NEAR(a b)",
    "|",
    "http://x|%",
    "gt' OR 1=1",
    "1e999",
    "NaN",
    "a" * 3000,
    "%" * 500,
)
PARAMETERS: tuple[tuple[str, str, str, tuple[str | None, ...]], ...] = (
    ("string", "Patient", "name", (None, "exact", "contains", "missing")),
    ("string", "Patient", "family", (None, "contains")),
    ("token", "Patient", "identifier", (None, "not", "text", "of-type")),
    ("token", "Patient", "gender", (None, "not")),
    ("token", "Observation", "code", (None, "text", "not")),
    ("reference", "Observation", "subject", (None, "missing", "identifier", "Patient")),
    ("reference", "Observation", "patient.name", (None,)),
    ("date", "Patient", "birthdate", (None, "missing")),
    ("number", "RiskAssessment", "probability", (None,)),
    ("quantity", "Observation", "value-quantity", (None,)),
    ("uri", "ValueSet", "url", (None, "below", "above")),
    ("composite", "Observation", "code-value-quantity", (None,)),
    ("special", "Patient", "_text", (None,)),
    ("special", "Patient", "_content", (None,)),
    ("special", "Location", "near", (None,)),
    ("token", "Patient", "_id", (None,)),
    ("date", "Patient", "_lastUpdated", (None,)),
    ("token", "Patient", "_tag", (None,)),
)
CORPUS: list[dict[str, Any]] = [
    {
        "resourceType": "Patient",
        "id": "inj-1",
        "name": [{"family": "O'Brien", "given": ["Siobhán"]}],
        "identifier": [{"system": "http://x", "value": "A%1"}],
        "gender": "female",
        "birthDate": "1970-01-01",
        "meta": {"tag": [{"system": "http://t", "code": "x'y"}]},
    },
    {
        "resourceType": "Patient",
        "id": "inj-2",
        "name": [{"family": "100%_Sure", "given": ["Under_score"]}],
        "identifier": [{"system": "http://x", "value": "B_2"}],
        "gender": "male",
        "birthDate": "1980-05-05",
    },
    {
        "resourceType": "Patient",
        "id": "inj-3",
        "name": [{"family": "Ωmega", "given": ["Back\\slash"]}],
        "gender": "other",
    },
    {"resourceType": "Patient", "id": "inj-4", "name": [{"family": "Smith"}]},
    {
        "resourceType": "Observation",
        "id": "inj-o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart %"},
        "subject": {"reference": "Patient/inj-1"},
        "valueQuantity": {"value": 72, "system": "http://unitsofmeasure.org", "code": "/min"},
    },
    {
        "resourceType": "Observation",
        "id": "inj-o2",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/inj-2"},
        "valueQuantity": {"value": 70, "system": "http://unitsofmeasure.org", "code": "kg"},
    },
    {
        "resourceType": "RiskAssessment",
        "id": "inj-r1",
        "status": "final",
        "subject": {"reference": "Patient/inj-1"},
        "prediction": [{"probabilityDecimal": 0.5}],
    },
    {
        "resourceType": "ValueSet",
        "id": "inj-v1",
        "url": "http://example.org/vs/under_score%25",
        "status": "active",
    },
    {
        "resourceType": "Location",
        "id": "inj-l1",
        "status": "active",
        "position": {"latitude": 42.0, "longitude": -71.0},
    },
]


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def memory(model: Model) -> MemoryIndex:
    return MemoryIndex(SearchIndexer(model), CORPUS)


def fingerprint(url: str, kind: str) -> tuple[Any, ...]:
    """Everything stored: each table's name, row count and a digest of all its rows."""
    out: list[tuple[str, int, str]] = []
    if kind == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
            tables = [
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            for table in sorted(tables):
                rows = sorted(repr(r) for r in con.execute(f'SELECT * FROM "{table}"'))
                out.append((table, len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()))
        return tuple(out)
    with psycopg.connect(url) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        ]
        for table in sorted(tables):
            row = con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))"
                f' FROM "{table}" t'
            ).fetchone()
            assert row is not None
            out.append((table, int(row[0]), str(row[1])))
    return tuple(out)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model: Model
) -> Iterator[tuple[FhirRouter, str, str]]:
    kind: str = request.param
    tmp = tmp_path_factory.mktemp(f"inj-{kind}")
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'inj.db'}"
    else:
        server: str = request.getfixturevalue("postgres_url")
        schema = f"inj_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as con:
            con.execute(f"CREATE SCHEMA {schema}")
        url = with_search_path(server, schema)
    settings = Settings(terminology_db=None, validation="off", export_dir=str(tmp / "exports"))
    env = build_env(url, settings, model=model)
    router = FhirRouter(env)
    for resource in CORPUS:
        path = f"{resource['resourceType']}/{resource['id']}"
        done = router.handle(FhirRequest("PUT", path, body=orjson.dumps(resource)))
        assert done.status in (200, 201), done.body
    try:
        yield router, url, kind
    finally:
        env.repository.close()


def ids(body: bytes) -> set[tuple[str, str]]:
    bundle = orjson.loads(body)
    return {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle.get("entry", ())
        if e.get("search", {}).get("mode", "match") == "match"
    }


def test_injection_in_every_parameter_type(
    store: tuple[FhirRouter, str, str], memory: MemoryIndex
) -> None:
    router, url, kind = store
    before = fingerprint(url, kind)
    types_seen: set[str] = set()
    compared = 0
    problems: list[str] = []
    for ptype, rtype, name, modifiers in PARAMETERS:
        for modifier in modifiers:
            key = f"{name}:{modifier}" if modifier else name
            for payload in PAYLOADS:
                query = [(key, payload), ("_count", "1000")]
                response = router.handle(FhirRequest("GET", rtype, query))
                label = f"{kind} {rtype}?{key}={payload[:40]!r}"
                if response.status >= 500:
                    problems.append(f"{label}: {response.status} {response.body[:200]!r}")
                    continue
                if response.status != 200:
                    outcome = orjson.loads(response.body)
                    assert outcome["resourceType"] == "OperationOutcome", label
                    continue
                types_seen.add(ptype)
                if "," in payload or name in ("_text", "_content", "near"):
                    continue  # OR-lists and full text: status checked, no oracle
                try:
                    expected = memory.search(
                        SearchQuery(rtype, (SearchClause(name, (payload,), modifier),))
                    )
                except (InvalidRequestError, ValueError):
                    continue
                compared += 1
                got = ids(response.body)
                if got != expected:
                    problems.append(f"{label}: got {sorted(got)}, expected {sorted(expected)}")
    assert problems == []
    assert compared > 200
    assert types_seen >= {"string", "token", "reference", "uri", "quantity", "special"}
    assert fingerprint(url, kind) == before


def test_like_wildcards_match_only_themselves(store: tuple[FhirRouter, str, str]) -> None:
    router, _, _ = store

    def search(rtype: str, key: str, value: str) -> set[str]:
        response = router.handle(FhirRequest("GET", rtype, [(key, value)]))
        assert response.status == 200, response.body
        return {i for _, i in ids(response.body)}

    assert search("Patient", "name", "%") == set()
    assert search("Patient", "name", "_") == set()
    assert search("Patient", "name:contains", "%") == {"inj-2"}
    assert search("Patient", "name:contains", "_") == {"inj-2"}
    assert search("Patient", "name:contains", "%_s") == {"inj-2"}
    assert search("Patient", "name:exact", "100%_Sure") == {"inj-2"}
    assert search("Patient", "name:exact", "100%") == set()
    assert search("Patient", "name", "o'b") == {"inj-1"}
    assert search("Patient", "name:contains", "\\") == {"inj-3"}
    assert search("Patient", "identifier", "A%1") == {"inj-1"}
    assert search("Patient", "identifier", "A_1") == set()
    assert search("Patient", "identifier", "%") == set()
    assert search("Observation", "code:text", "heart") == {"inj-o1"}  # "Heart %"
    assert search("Observation", "code:text", "%") == set()
    assert search("ValueSet", "url:below", "http://example.org/vs/under") == {"inj-v1"}
    assert search("ValueSet", "url:below", "http://example.org/vs/%") == set()


def test_sql_text_is_data(store: tuple[FhirRouter, str, str]) -> None:
    """A quote-carrying value is stored and found as data, and searching it changes nothing."""
    router, url, kind = store
    before = fingerprint(url, kind)
    for value in ("' OR 1=1 --", "Robert'); DROP TABLE resources;--", "x\x00y"):
        response = router.handle(FhirRequest("GET", "Patient", [("name", value)]))
        assert response.status in (200, 400)
        if response.status == 200:
            assert ids(response.body) == set()
    assert fingerprint(url, kind) == before
