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
