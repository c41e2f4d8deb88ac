"""``cmio ehr-use``, ``cmio cost`` and ``cmio data-quality`` over a Bulk Data folder."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from typer.testing import CliRunner

from cmio.cli.main import app
from tests.measures.test_cost import claims_fixture
from tests.measures.test_ehr_use import clinic


def _bulk(folder: Path, resources: list[dict[str, Any]]) -> Path:
    by_type: dict[str, list[str]] = defaultdict(list)
    for r in resources:
        by_type[r["resourceType"]].append(json.dumps(r))
    folder.mkdir()
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_oversight_commands(tmp_path: Path) -> None:
    source = _bulk(tmp_path / "bulk", clinic() + claims_fixture())
    runner = CliRunner()
    result = runner.invoke(app, ["ehr-use", "--period", "2026-03/2026-04", "--source",
                                 str(source), "--out", str(tmp_path / "ehr")])  # fmt: skip
    assert result.exit_code == 0, result.output
    clinicians = pq.read_table(tmp_path / "ehr" / "clinicians.parquet").to_pylist()
    assert {r["user_id"]: r["ehr_s"] for r in clinicians}["a"] == 2039 + 300

    result = runner.invoke(app, ["cost", "--period", "2026-01/2026-12", "--source", str(source),
                                 "--out", str(tmp_path / "cost"), "--format", "csv",
                                 "--populations", "cms122"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "57525" in (tmp_path / "cost" / "totals.csv").read_text()
    # No patient qualifies for CMS122 here (no birth dates, no qualifying visits).
    assert "other" in (tmp_path / "cost" / "populations.csv").read_text()

    result = runner.invoke(app, ["data-quality", "--source", str(source), "--out",
                                 str(tmp_path / "dq"), "--terminology-db",
                                 str(tmp_path / "none.db")])  # fmt: skip
    assert result.exit_code == 0, result.output
    score = pq.read_table(tmp_path / "dq" / "score.parquet").to_pylist()
    assert any(r["resource_type"] == "*" and r["score"] is not None for r in score)

    result = runner.invoke(app, ["cost", "--period", "2026-13/2026-12", "--source", str(source)])
    assert result.exit_code != 0 and "bad month" in result.output


def test_ehr_use_on_the_store_counts_cmio_audit_records(tmp_path: Path) -> None:
    """Records of cmio's own audit chain become AuditEvents before the measures run."""
    from cmio.security.audit import AuditLog
    from cmio.security.audit.events import AuditFacts, build_event
    from cmio.security.grant import AccessGrant
    from cmio.store import open_repository

    url = f"sqlite:///{tmp_path / 'store.db'}"
    repository = open_repository(url)
    grant = AccessGrant(subject="a", kind="user", scopes=frozenset(), fhir_user="Practitioner/a")
    try:
        with repository.transaction() as tx:
            for resource in clinic():
                if resource["resourceType"] != "AuditEvent":
                    tx.create(resource, id=resource["id"])
        AuditLog(repository).append_now([
            build_event(AuditFacts(interaction="read", grant=grant, resource_type="Patient",
                                   resource_id="p1", patient="p1",
                                   recorded=f"2026-03-02T{clock}-05:00"))
            for clock in ("09:01:00", "09:03:00")
        ])  # fmt: skip
    finally:
        repository.close()
    result = CliRunner().invoke(app, ["ehr-use", "--period", "2026-03/2026-03", "--database",
                                      url, "--out", str(tmp_path / "ehr")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 audit records copied" in result.output
    rows = pq.read_table(tmp_path / "ehr" / "clinician_month.parquet").to_pylist()
    assert {r["user_id"]: r["ehr_s"] for r in rows}["a"] == 120


def test_state_refreshes_with_a_days_resources(tmp_path: Path) -> None:
    """``--state``: the first run builds, the second adds the day's resources; the tables
    equal a run over everything."""
    resources = clinic() + claims_fixture()
    dated = ("AuditEvent", "ExplanationOfBenefit", "Appointment")
    day = [r for r in resources if r["resourceType"] in dated][-4:]
    base = [r for r in resources if r not in day]
    folders = {"base": _bulk(tmp_path / "base", base), "day": _bulk(tmp_path / "day", day),
               "all": _bulk(tmp_path / "all", resources)}  # fmt: skip
    runner = CliRunner()
    commands = {
        "ehr-use": ["--period", "2026-03/2026-04"],
        "cost": ["--period", "2026-01/2026-12"],
        "data-quality": ["--terminology-db", str(tmp_path / "none.db")],
    }
    for command, options in commands.items():
        state = tmp_path / f"{command}.duckdb"
        # Data quality's refresh is checked against a full run in tests/measures.
        names = ("base", "day") if command == "data-quality" else ("base", "day", "all")
        for name in names:
            args = [command, *options, "--source", str(folders[name]),
                    "--out", str(tmp_path / f"{command}-{name}")]  # fmt: skip
            if name != "all":
                args += ["--state", str(state)]
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output
            if name == "day":
                assert f"refreshed {state}" in result.output.replace("\n", "")
        for path in sorted((tmp_path / f"{command}-all").glob("*.parquet")):
            want = pq.read_table(path).to_pylist()
            got = pq.read_table(tmp_path / f"{command}-day" / path.name).to_pylist()
            key = repr
            assert sorted(got, key=key) == sorted(want, key=key), (command, path.name)
    result = runner.invoke(app, ["cost", "--period", "2025-01/2025-12", "--source",
                                 str(folders["day"]), "--state", str(tmp_path / "cost.duckdb")])  # fmt: skip
    assert result.exit_code != 0 and "built for 2026-01-01/2026-12-31" in str(result.exception)
