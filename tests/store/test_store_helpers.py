"""Unit tests: URL handling, date ranges, token values, the default indexer."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmio.store import (
    DEFAULT_DATABASE_URL,
    DefaultIndexer,
    IndexRow,
    InvalidRequestError,
    PostgresRepository,
    SqliteRepository,
    default_database_url,
    open_repository,
)
from cmio.store._common import Clock, parse_date_range
from cmio.store._query import split_token
from cmio.testing.pg import with_database, with_search_path


def test_default_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CMIO_DATABASE_URL", raising=False)
    assert default_database_url() == DEFAULT_DATABASE_URL == "sqlite:///cmio-data/cmio.db"
    monkeypatch.setenv("CMIO_DATABASE_URL", "postgresql://db/x")
    assert default_database_url() == "postgresql://db/x"


def test_open_repository_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CMIO_DATABASE_URL", raising=False)
    repo = open_repository()
    try:
        assert isinstance(repo, SqliteRepository) and repo.dialect == "sqlite"
        assert (tmp_path / "cmio-data" / "cmio.db").exists()
    finally:
        repo.close()
    absolute = tmp_path / "abs" / "deep" / "x.db"
    repo = open_repository(f"sqlite:///{absolute}")
    try:
        assert isinstance(repo, SqliteRepository) and repo.path == absolute and absolute.exists()
    finally:
        repo.close()
    with pytest.raises(ValueError):
        open_repository("mysql://x/y")
    with pytest.raises(ValueError):
        open_repository("sqlite://:memory:")


@pytest.mark.postgres
def test_open_repository_postgres_urls(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        repo = open_repository(url)
        try:
            assert isinstance(repo, PostgresRepository) and repo.dialect == "postgres"
        finally:
            repo.close()


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2026", "2026-01-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"),
        ("2026-02", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"),
        ("2026-12", "2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"),
        ("2026-01-31", "2026-01-31T00:00:00.000Z", "2026-02-01T00:00:00.000Z"),
        ("2026-01-01T10:00Z", "2026-01-01T10:00:00.000Z", "2026-01-01T10:01:00.000Z"),
        ("2026-01-01T10:00:05+02:00", "2026-01-01T08:00:05.000Z", "2026-01-01T08:00:06.000Z"),
        ("2026-01-01T10:00:05.5Z", "2026-01-01T10:00:05.500Z", "2026-01-01T10:00:05.600Z"),
        ("2026-01-01T10:00:05.123Z", "2026-01-01T10:00:05.123Z", "2026-01-01T10:00:05.124Z"),
        ("9999", "9999-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z~"),
    ],
)
def test_parse_date_range(value: str, low: str, high: str) -> None:
    assert parse_date_range(value) == (low, high)


@pytest.mark.parametrize("value", ["", "26", "2026-1", "2026-02-30", "2026-01-01T10", "now"])
def test_parse_date_range_rejects(value: str) -> None:
    with pytest.raises(InvalidRequestError):
        parse_date_range(value)


def test_clock_never_goes_back() -> None:
    clock = Clock()
    stamps = [clock.now() for _ in range(1000)]
    assert stamps == sorted(stamps)
    assert clock.now("2999-01-01T00:00:00.000Z") == "2999-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s|c", ("s", "c")),
        ("|c", ("", "c")),
        ("s|", ("s", None)),
        ("c", (None, "c")),
        ("http://x.org/a|b|c", ("http://x.org/a", "b|c")),
        (r"a\|b", (None, "a|b")),
    ],
)
def test_split_token(value: str, expected: tuple[str | None, str | None]) -> None:
    assert split_token(value) == expected


def test_default_indexer() -> None:
    rows = DefaultIndexer().rows(
        {
            "resourceType": "Patient",
            "identifier": [
                {"system": "urn:a", "value": "1"},
                {"value": "2"},
                {"system": "urn:a", "value": "1"},
                {"system": "urn:b"},
                {"system": "", "value": "3"},
                "junk",
            ],
            "contained": [{"resourceType": "Patient", "identifier": [{"value": "9"}]}],
        }
    )
    assert list(rows) == [
        IndexRow("token", "identifier", "urn:a", "1"),
        IndexRow("token", "identifier", None, "2"),
        IndexRow("token", "identifier", None, "3"),
    ]
    single = DefaultIndexer().rows({"resourceType": "Bundle", "identifier": {"value": "b"}})
    assert list(single) == [IndexRow("token", "identifier", None, "b")]
    assert list(DefaultIndexer().rows({"resourceType": "Patient"})) == []


def test_pg_url_helpers() -> None:
    url = "postgresql://u:p@h:5433/old?sslmode=disable&options=-cfoo%3D1"
    assert (
        with_database(url, "new") == "postgresql://u:p@h:5433/new?sslmode=disable&options=-cfoo%3D1"
    )
    assert with_search_path(url, "s1") == (
        "postgresql://u:p@h:5433/old?sslmode=disable&options=-csearch_path%3Ds1"
    )


def test_new_ids_are_time_ordered_uuids() -> None:
    import time
    import uuid

    from cmio.store._common import check_id, new_id

    earlier = [new_id() for _ in range(1000)]
    time.sleep(0.002)
    later = new_id()
    assert len(set(earlier)) == 1000
    for made in [*earlier, later]:
        value = uuid.UUID(made)
        assert (value.version, value.variant) == (7, uuid.RFC_4122)
        assert str(value) == made and check_id(made) == made
        assert abs((value.int >> 80) - time.time_ns() // 1_000_000) < 60_000  # ms since 1970
    assert max(earlier) < later  # a later millisecond sorts after
