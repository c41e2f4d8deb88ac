"""``cmio rules install|list|run`` over a SQLite store."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from cmio.cds import store_feedback
from cmio.cli.main import app
from cmio.store import open_repository


def test_install_list_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cmio.db'}"
    repository = open_repository(url)
    with repository.transaction() as tx:
        tx.create({"resourceType": "Patient"}, id="p1")
        tx.create({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}},
                  id="e1")  # fmt: skip
    repository.close()
    runner = CliRunner()
    result = runner.invoke(app, ["rules", "install", "--database", url])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["rules", "install", "--database", url])
    assert "0 Library" in again.output  # idempotent: versions are never rewritten
    listed = runner.invoke(app, ["rules", "list", "--database", url])
    assert "patient-mrn" in listed.output
    out = tmp_path / "findings.csv"
    result = runner.invoke(app, ["rules", "run", "--database", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["rule"], r["resource"], r["severity"]) for r in rows} == {
        ("patient-mrn", "Patient/p1", "warning"),
        ("encounter-start", "Encounter/e1", "warning"),
    }
    only = runner.invoke(app, ["rules", "run", "--database", url, "--type", "Patient"])
    assert "1 finding(s)" in only.output
    repository = open_repository(url)
    item = {"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-01-02T00:00:00Z",
            "overrideReason": {"reason": {"system": "s", "code": "patient-declined"}}}  # fmt: skip
    store_feedback(repository, "drug-allergy", [item, {**item, "outcome": "accepted"}])
    repository.close()
    rates = tmp_path / "rates.csv"
    result = runner.invoke(app, ["rules", "cds-rates", "--database", url, "--out", str(rates)])
    assert result.exit_code == 0, result.output
    with rates.open(encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["service"], row["accepted"], row["overridden"]) == ("drug-allergy", "1", "1")
    assert row["top_override_reason"] == "patient-declined"
