"""``cmio terminology load|list`` on the release-format fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cmio.cli import terminology_cmd
from cmio.cli.main import app
from cmio.store import open_repository
from cmio.store.base import SearchQuery

FIXTURES = Path(__file__).resolve().parents[1] / "terminology" / "loaders" / "fixtures"


def test_load_list_and_rerun(tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "fhir.db"
    args = [
        "terminology",
        "load",
        "snomed",
        str(FIXTURES / "snomed"),
        "rxnorm",
        str(FIXTURES / "rxnorm"),
        "--database",
        f"sqlite:///{db}",
        "--terminology-db",
        str(tmp_path / "t.db"),
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "15 concepts (loaded)" in first.output and "8 concepts (loaded)" in first.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and again.output.count("(unchanged)") == 2
    listing = runner.invoke(
        app, ["terminology", "list", "--terminology-db", str(tmp_path / "t.db")]
    )
    assert listing.exit_code == 0 and "2 with fewer than 500 concepts" in listing.output
    listing = runner.invoke(
        app, ["terminology", "list", "--all", "--terminology-db", str(tmp_path / "t.db")]
    )
    assert listing.exit_code == 0 and "http://snomed.info/sct" in listing.output
    repository = open_repository(f"sqlite:///{db}")
    try:
        page = repository.search(SearchQuery("CodeSystem", count=10))
        resources = [orjson.loads(r.data) for r in page.resources if r.data]
        by_url = {r["url"]: r for r in resources}
        snomed = by_url["http://snomed.info/sct"]
        assert snomed["content"] == "not-present" and snomed["count"] == 15
        assert snomed["version"].endswith("/900000000000207008/version/20250101")
        assert snomed["date"] == "2025-01-01" and snomed["status"] == "active"
        assert snomed["publisher"] == "SNOMED International"
        rx = by_url["http://www.nlm.nih.gov/research/umls/rxnorm"]
        assert rx["date"] == "2025-11-03" and rx["version"] == "11032025"
        versions = [int(r.version) for r in page.resources]
        assert versions == [1, 1]  # the re-run wrote nothing new
    finally:
        repository.close()


@pytest.mark.parametrize(
    ("words", "message"),
    [(["nosuch"], "unknown source"), (["loinc"], "needs the release folder")],
)
def test_bad_sources(words: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["terminology", "load", *words])
    assert result.exit_code == 2 and message in result.output


def test_default_content_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(terminology_cmd, "load_sources", lambda *a, **k: calls.append(a))
    from rich.console import Console

    db = tmp_path / "t.db"
    db.write_bytes(b"")
    console = Console(file=None, quiet=True)
    assert terminology_cmd.ensure_default_content(db, "sqlite:///x.db", console)
    assert calls[0][0] == [("core", None), ("icd10cm", None), ("ucum", None)]
    assert not terminology_cmd.ensure_default_content(db, "sqlite:///x.db", console)
    assert terminology_cmd.ensure_default_content(db, "sqlite:///other.db", console)
    assert len(calls) == 2
