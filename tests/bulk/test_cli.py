"""``cmio import`` and ``cmio export``: exit codes, summary, and export -> re-import round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cmio.cli.main import app
from cmio.store import open_repository

from .conftest import new_database


def content(url: str) -> dict[tuple[str, str], Any]:
    """Every current resource without ``meta.versionId``/``meta.lastUpdated``."""
    repository = open_repository(url)
    try:
        out: dict[tuple[str, str], Any] = {}
        for stored in repository.iter_current():
            resource = orjson.loads(stored.data or b"{}")
            meta = resource.pop("meta", {})
            meta.pop("versionId", None)
            meta.pop("lastUpdated", None)
            if meta:
                resource["meta"] = meta
            out[(stored.type, stored.id)] = resource
        return out
    finally:
        repository.close()


def test_import_then_export_round_trip(
    backend: str,
    synthea: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    runner = CliRunner()
    url = new_database(backend, request, tmp_path)
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(b'{"resourceType":"Patient","id":"p-bad","birthDate":"1999-13-01"}\n')
    report = tmp_path / "report.ndjson"
    inputs = [str(synthea / "bulk-ndjson-10-patients-partial"), str(bad)]
    done = runner.invoke(
        app, ["import", *inputs, "--database", url, "--workers", "0", "--report", str(report)]
    )
    assert done.exit_code == 1, done.output
    assert "Procedure" in done.output and "2,056" in done.output
    assert "1 resources rejected" in done.output
    assert orjson.loads(report.read_bytes())["issues"][0]["expression"] == "Patient.birthDate"

    out = tmp_path / "export"
    exported = runner.invoke(app, ["export", "--database", url, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert (out / "Patient.ndjson").read_bytes().count(b"\n") == 13
    assert sorted(p.name for p in out.iterdir())[:2] == [
        "AllergyIntolerance.ndjson",
        "Condition.ndjson",
    ]

    copy = new_database(backend, request, tmp_path)
    again = runner.invoke(app, ["import", str(out), "--database", copy, "--workers", "0"])
    assert again.exit_code == 0, again.output
    assert content(copy) == content(url)

    same = runner.invoke(app, ["import", str(out), "--database", url, "--workers", "0"])
    assert same.exit_code == 0, same.output
    assert "7,160" in same.output  # all unchanged

    patient_only = tmp_path / "patients"
    scoped = runner.invoke(
        app,
        [
            "export",
            "--database",
            url,
            "--out",
            str(patient_only),
            "--patient",
            "--type",
            "Patient,Encounter,Organization",
        ],
    )
    assert scoped.exit_code == 0, scoped.output
    assert sorted(p.name for p in patient_only.iterdir()) == ["Encounter.ndjson", "Patient.ndjson"]


def test_export_rejects_unknown_type(tmp_path: Path) -> None:
    got = CliRunner().invoke(
        app, ["export", "--database", f"sqlite:///{tmp_path / 'x.db'}", "--type", "Nope"]
    )
    assert got.exit_code != 0
    assert "Nope" in got.output
