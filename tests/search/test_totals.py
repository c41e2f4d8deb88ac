"""``_total=accurate`` and ``estimate`` on every page: a page that is not full gives the
total without a count query, and it equals the number of matches.

https://hl7.org/fhir/R4/search.html#total
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from cmio.search.memory import MemoryIndex
from cmio.store import Repository
from cmio.store.base import SearchClause, SearchQuery

QUERIES = [
    ("Observation", (("code", ("http://loinc.org|29463-7",)),)),
    ("Observation", (("patient", ("edge-p1", "edge-p2")),)),
    ("Patient", (("gender", ("female",)),)),
    ("Condition", (("clinical-status", ("active",)),)),
    ("Patient", (("name", ("zzz-no-match",)),)),
]


@pytest.mark.parametrize("q", QUERIES, ids=lambda q: f"{q[0]}?{q[1][0][0]}")
def test_total_on_every_page(loaded: tuple[Repository, MemoryIndex], q: tuple) -> None:
    repo, memory = loaded
    base = SearchQuery(q[0], tuple(SearchClause(n, v) for n, v in q[1]), count=3, total=True)
    expected = len(memory.search(base))
    pages = 0
    for offset in (0, 1, 2, 3, expected - 1, expected, expected + 2):
        if offset < 0:
            continue
        query = replace(base, offset=offset)
        page = repo.search(query)
        assert page.total == expected
        assert len(page.resources) == max(0, min(3, expected - offset))
        pages += 1
    for count in (1, expected, expected + 1):
        if count > 0:
            assert repo.search(replace(base, count=count)).total == expected
    assert repo.search(replace(base, count=0)).total == expected
    first = repo.search(base).resources
    if first:  # keyset paging: the total counts every match, not those after the cursor
        last = first[-1]
        after = replace(base, after=(last.last_updated, last.type, last.id))
        assert repo.search(after).total == expected
    assert pages >= 4


@pytest.mark.parametrize("q", QUERIES, ids=lambda q: f"{q[0]}?{q[1][0][0]}")
def test_known_total_without_a_count(loaded: tuple[Repository, MemoryIndex], q: tuple) -> None:
    """Without ``total`` the store still gives the total when a page that is not full
    makes it known (no count statement), and none when the page is full, empty after an
    offset, or after a keyset cursor."""
    repo, memory = loaded
    base = SearchQuery(q[0], tuple(SearchClause(n, v) for n, v in q[1]), count=3, total=False)
    expected = len(memory.search(base))
    for offset in (0, 1, 2, 3, expected - 1, expected, expected + 2):
        if offset < 0:
            continue
        page = repo.search(replace(base, offset=offset))
        found = len(page.resources)
        known = found < 3 and (found > 0 or offset == 0)
        assert page.total == (expected if known else None), offset
    assert repo.search(replace(base, count=expected + 1)).total == expected
    assert repo.search(replace(base, count=0)).total is None
    first = repo.search(base).resources
    if first:  # after a cursor, the matches before it are not on the page
        last = first[-1]
        after = repo.search(replace(base, after=(last.last_updated, last.type, last.id)))
        assert after.total is None
