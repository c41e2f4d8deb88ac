"""Search contract tests: _id, _lastUpdated, identifier tokens, sort and paging."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cmio.store import (
    InvalidRequestError,
    Repository,
    SearchClause,
    SearchQuery,
    StoredResource,
)

S1 = "http://hl7.org/fhir/sid/us-npi"
S2 = "urn:oid:1.2.3"


def ids(repo: Repository, rtype: str | None, *clauses: SearchClause, **kw: Any) -> list[str]:
    return [r.id for r in repo.search(SearchQuery(rtype, clauses, **kw)).resources]


def make_three(repo: Repository) -> list[StoredResource]:
    out = []
    for id in ("c", "a", "b"):
        with repo.transaction() as tx:
            out.append(tx.create({"resourceType": "Patient"}, id=id))
        time.sleep(0.003)
    return out


def test_search_by_id(repo: Repository) -> None:
    make_three(repo)
    with repo.transaction() as tx:
        tx.create({"resourceType": "Observation"}, id="a")
        tx.create({"resourceType": "Patient"}, id="z")
        tx.delete("Patient", "z")
    assert sorted(ids(repo, "Patient", SearchClause("_id", ("a",)))) == ["a"]
    assert sorted(ids(repo, "Patient", SearchClause("_id", ("a", "b", "nope")))) == ["a", "b"]
    assert ids(repo, "Patient", SearchClause("_id", ("z",))) == []
    page = repo.search(SearchQuery(None, (SearchClause("_id", ("a",)),)))
    assert sorted(r.type for r in page.resources) == ["Observation", "Patient"]
    assert page.total == 2
    both = (SearchClause("_id", ("a", "b")), SearchClause("_id", ("b", "c")))
    assert ids(repo, "Patient", *both) == ["b"]


def test_search_last_updated_prefixes(repo: Repository) -> None:
    c, a, b = make_three(repo)  # created in this order, distinct instants
    t = a.last_updated

    def lu(value: str) -> list[str]:
        return ids(repo, "Patient", SearchClause("_lastUpdated", (value,)))

    assert lu(t) == ["a"] and lu(f"eq{t}") == ["a"]
    assert lu(f"ge{t}") == ["a", "b"]
    assert lu(f"gt{t}") == ["b"]
    assert lu(f"le{t}") == ["c", "a"]
    assert lu(f"lt{t}") == ["c"]
    assert lu(f"ne{t}") == ["c", "b"]
    assert lu(f"sa{t}") == ["b"] and lu(f"eb{t}") == ["c"]
    assert "a" in lu(f"ap{t}")
    # the same instant written with a zone offset
    moment = datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(
        timezone(timedelta(hours=2))
    )
    assert lu("eq" + moment.isoformat(timespec="milliseconds")) == ["a"]
    # precision-aware dates
    day = t[:10]
    if c.last_updated[:10] == b.last_updated[:10] == day:
        assert lu(f"ge{day}") == ["c", "a", "b"]
        assert lu(f"eq{day}") == ["c", "a", "b"]
        assert lu(f"lt{day}") == []
        assert lu(f"gt{day}") == []
        assert lu(f"le{day}") == ["c", "a", "b"]
    year = int(t[:4])
    assert lu(f"ge{year - 1}-01-01") == ["c", "a", "b"]
    assert lu(f"lt{year + 1}") == ["c", "a", "b"]
    assert lu(f"gt{year + 1}-06") == []
    second = t[:19]
    assert "a" in lu(second + "Z")
    for rid in lu(second + "Z"):
        assert _lu_of(repo, rid)[:19] == second
    # values OR-ed, clauses AND-ed
    assert ids(repo, "Patient", SearchClause("_lastUpdated", (f"lt{t}", f"gt{t}"))) == ["c", "b"]
    both = (SearchClause("_lastUpdated", (f"ge{t}",)), SearchClause("_lastUpdated", (f"le{t}",)))
    assert ids(repo, "Patient", *both) == ["a"]
    for bad in ("xx2026", "2026-13-01", "2026-01-01T25:00Z", "today"):
        with pytest.raises(InvalidRequestError):
            lu(bad)


def _lu_of(repo: Repository, id: str) -> str:
    return repo.read("Patient", id).last_updated


def _tokens(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.create(
            {
                "resourceType": "Patient",
                "identifier": [{"system": S1, "value": "100"}, {"value": "nosys"}],
            },
            id="p1",
        )
        tx.create(
            {"resourceType": "Patient", "identifier": [{"system": S2, "value": "100"}]}, id="p2"
        )
        tx.create({"resourceType": "Patient"}, id="p3")
        tx.create(
            {"resourceType": "Organization", "identifier": {"system": S1, "value": "100"}}, id="o1"
        )


@pytest.mark.parametrize(
    ("values", "modifier", "expected"),
    [
        ((f"{S1}|100",), None, ["p1"]),
        (("|100",), None, []),
        (("|nosys",), None, ["p1"]),
        (("100",), None, ["p1", "p2"]),
        ((f"{S2}|",), None, ["p2"]),
        ((f"{S1}|100", f"{S2}|100"), None, ["p1", "p2"]),
        ((f"{S1}|999",), None, []),
        ((f"{S1}|100",), "not", ["p2", "p3"]),
        (("true",), "missing", ["p3"]),
        (("false",), "missing", ["p1", "p2"]),
    ],
)
def test_search_identifier_tokens(
    repo: Repository, values: tuple[str, ...], modifier: str | None, expected: list[str]
) -> None:
    _tokens(repo)
    clause = SearchClause("identifier", values, modifier)
    assert sorted(ids(repo, "Patient", clause)) == expected


def test_search_tokens_system_level_and_reindex(repo: Repository) -> None:
    _tokens(repo)
    found = repo.search(SearchQuery(None, (SearchClause("identifier", (f"{S1}|100",)),)))
    assert sorted((r.type, r.id) for r in found.resources) == [
        ("Organization", "o1"),
        ("Patient", "p1"),
    ]
    with repo.transaction() as tx:
        tx.update(
            {"resourceType": "Patient", "id": "p1", "identifier": [{"system": S1, "value": "200"}]}
        )
    assert ids(repo, "Patient", SearchClause("identifier", (f"{S1}|100",))) == []
    assert ids(repo, "Patient", SearchClause("identifier", (f"{S1}|200",))) == ["p1"]
    assert ids(repo, "Patient", SearchClause("identifier", ("nosys",))) == []
    with pytest.raises(InvalidRequestError):
        ids(repo, "Patient", SearchClause("identifier", ("x",), "text"))
    with pytest.raises(InvalidRequestError):
        ids(repo, "Patient", SearchClause("_id", ("x",), "missing"))


def test_sort_count_offset_total(repo: Repository) -> None:
    make_three(repo)
    assert ids(repo, "Patient") == ["c", "a", "b"]
    assert ids(repo, "Patient", sort=("-_lastUpdated",)) == ["b", "a", "c"]
    assert ids(repo, "Patient", sort=("_id",)) == ["a", "b", "c"]
    assert ids(repo, "Patient", sort=("-_id",)) == ["c", "b", "a"]
    page = repo.search(SearchQuery("Patient", count=2, offset=1, sort=("_id",)))
    assert [r.id for r in page.resources] == ["b", "c"] and page.total == 3
    page = repo.search(SearchQuery("Patient", count=0))
    assert page.resources == [] and page.total == 3
    # Without a count the total is still given when the page shows it (not full).
    page = repo.search(SearchQuery("Patient", total=False))
    assert len(page.resources) == 3 and page.total == 3
    page = repo.search(SearchQuery("Patient", count=2, total=False))
    assert len(page.resources) == 2 and page.total is None
    page = repo.search(SearchQuery("Patient", count=2, offset=2, total=False))
    assert len(page.resources) == 1 and page.total == 3
    page = repo.search(SearchQuery("Patient", offset=5))
    assert page.resources == [] and page.total == 3
    assert repo.search(SearchQuery("Encounter")).total == 0
    with pytest.raises(InvalidRequestError):
        repo.search(SearchQuery("Patient", sort=("name",)))
    first = repo.search(SearchQuery("Patient", count=1, sort=("_id",))).resources[0]
    assert first.data == repo.read("Patient", "a").data


def test_utc_now_is_in_range(repo: Repository) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    with repo.transaction() as tx:
        stored = tx.create({"resourceType": "Patient"})
    moment = datetime.fromisoformat(stored.last_updated.replace("Z", "+00:00"))
    assert before <= moment <= datetime.now(UTC) + timedelta(seconds=1)


def test_search_type_clause_across_types(repo: Repository) -> None:
    _tokens(repo)
    with repo.transaction() as tx:
        tx.create({"resourceType": "Encounter"}, id="e1")
    types = SearchClause("_type", ("Organization", "Encounter"))
    found = repo.search(SearchQuery(None, (types,), sort=("_id",)))
    assert [(r.type, r.id) for r in found.resources] == [
        ("Encounter", "e1"),
        ("Organization", "o1"),
    ]
    both = (types, SearchClause("identifier", (f"{S1}|100",)))
    assert [(r.type, r.id) for r in repo.search(SearchQuery(None, both)).resources] == [
        ("Organization", "o1")
    ]
