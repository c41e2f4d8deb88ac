"""``cmio measures list`` and ``cmio measures run`` over a Bulk NDJSON folder."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from cmio.cli.main import app
from tests.measures import test_cms125


def test_list_and_run_write_reports_tables_and_gaps(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["measures", "list"])
    assert listed.exit_code == 0 and "CMS130" in listed.output
    resources, expected = test_cms125.population()
    source = tmp_path / "bulk"
    source.mkdir()
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for rtype, lines in by_type.items():
        (source / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "measures",
            "run",
            "--period",
            "2026-01-01/2026-12-31",
            "--source",
            str(source),
            "--measure",
            "CMS125",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "MeasureReport-CMS125-summary.json").read_text())
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in summary["group"][0]["population"]}
    assert counts["numerator"] == sum("N" in f for f in expected.values())
    members = pq.read_table(out / "members-CMS125.parquet")
    assert sorted(members["patient_id"].to_pylist()) == sorted(p for p, f in expected.items() if f)
    gaps = pq.read_table(out / "care-gaps.parquet").to_pylist()
    assert {g["patient_id"] for g in gaps} == {
        p for p, f in expected.items() if "D" in f and "N" not in f and "X" not in f
    }
    bad = runner.invoke(
        app, ["measures", "run", "--period", "2026-13-01/2026-12-31", "--source", str(source)]
    )
    assert bad.exit_code == 2 and "period" in bad.output
    unknown = runner.invoke(
        app,
        [
            "measures",
            "run",
            "--period",
            "2026-01-01/2026-12-31",
            "--measure",
            "CMS1",
            "--source",
            str(source),
        ],
    )
    assert unknown.exit_code == 2
