"""Bulk import batches are audited in their own transactions (a record per batch with an
entity per version written and per patient); a batch whose record fails is not stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cmio.bulk.importer import import_paths
from cmio.cli.main import app
from cmio.model import Model
from cmio.security.audit import AuditLog
from cmio.security.audit.jobs import JobAudit
from cmio.store import open_repository
from cmio.store.base import Repository


def write_input(folder: Path, tag: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    patients = [{"resourceType": "Patient", "id": f"p{n}", "gender": "female"} for n in range(3)]
    observations = [
        {
            "resourceType": "Observation",
            "id": f"o{n}",
            "status": "final",
            "code": {"text": f"pulse{tag}"},
            "subject": {"reference": f"Patient/p{n % 3}"},
        }
        for n in range(5)
    ]
    (folder / "Patient.ndjson").write_text("\n".join(json.dumps(p) for p in patients))
    (folder / "Observation.ndjson").write_text("\n".join(json.dumps(o) for o in observations))
    return folder


def events(repository: Repository) -> list[dict[str, Any]]:
    return [orjson.loads(row.data) for row in AuditLog(repository).rows()]


def recorded(repository: Repository) -> dict[str, str]:
    """Versioned reference -> BALP action of every resource entity in the trail."""
    out: dict[str, str] = {}
    for event in events(repository):
        for entity in event.get("entity", []):
            if entity.get("role", {}).get("code") == "4":
                out[entity["what"]["reference"]] = event["action"]
    return out


def versions(repository: Repository) -> set[str]:
    out: set[str] = set()
    with repository.read_transaction() as tx:
        for s in tx.scan(None, 1000):  # type: ignore[arg-type]
            out.update(f"{s.type}/{s.id}/_history/{v}" for v in range(1, s.version + 1))
    return out


def test_import_batches_are_audited(tmp_path: Path, repository: Repository, model: Model) -> None:
    audit = JobAudit.for_command("import")
    folder = write_input(tmp_path / "in")
    summary = import_paths(repository, [folder], model=model, batch_size=4, audit=audit.batch)
    assert summary.rejected == 0
    first = recorded(repository)
    assert versions(repository) == set(first) and len(first) == 8
    assert set(first.values()) == {"C"}
    trail = events(repository)
    assert len(trail) == audit.records >= 2  # several batches, one record each
    for event in trail:
        requestor = next(a for a in event["agent"] if a["requestor"])
        assert requestor["who"]["identifier"] == {"system": "urn:cmio:job", "value": "import"}
        job = [e for e in event["entity"] if e.get("detail")]
        assert job[0]["detail"] == [{"type": "job", "valueString": audit.source.message}]
    patients = {
        e["what"]["reference"]
        for event in trail
        for e in event["entity"]
        if e.get("role", {}).get("code") == "1"
    }
    assert patients == {"Patient/p0", "Patient/p1", "Patient/p2"}
    # unchanged resources write nothing and record nothing; changed ones are updates
    import_paths(repository, [folder], model=model, batch_size=4, audit=audit.batch)
    assert len(events(repository)) == len(trail)
    write_input(folder, tag="-2")
    import_paths(repository, [folder], model=model, batch_size=4, audit=audit.batch)
    second = recorded(repository)
    assert versions(repository) == set(second)
    assert {r for r, a in second.items() if a == "U"} == {
        f"Observation/o{n}/_history/2" for n in range(5)
    }
    assert AuditLog(repository).verify().ok


def test_a_batch_whose_record_fails_is_not_stored(
    tmp_path: Path, repository: Repository, model: Model
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("audit table unavailable")

    with pytest.raises(RuntimeError, match="audit table unavailable"):
        import_paths(repository, [write_input(tmp_path / "in")], model=model, audit=broken)
    assert versions(repository) == set() and events(repository) == []


def test_cmio_import_audits_by_default(tmp_path: Path, store_url: str) -> None:
    folder = write_input(tmp_path / "in")
    result = CliRunner().invoke(
        app, ["import", str(folder), "--database", store_url, "--workers", "0"]
    )
    assert result.exit_code == 0, result.output
    repository = open_repository(store_url)
    try:
        assert set(recorded(repository)) == versions(repository) != set()
    finally:
        repository.close()
    result = CliRunner().invoke(app, ["audit", "verify", "--database", store_url])
    assert result.exit_code == 0, result.output


def test_cmio_reindex_records_one_event_per_job(store_url: str) -> None:
    result = CliRunner().invoke(app, ["reindex", "--database", store_url])
    assert result.exit_code == 0, result.output
    repository = open_repository(store_url)
    try:
        (event,) = events(repository)
    finally:
        repository.close()
    assert [c["code"] for c in event["subtype"]] == ["operation", "reindex"]
    requestor = next(a for a in event["agent"] if a["requestor"])
    assert requestor["who"]["identifier"] == {"system": "urn:cmio:job", "value": "reindex"}
    assert event["outcomeDesc"].startswith("reindexed 0 resources")


def test_reindex_over_the_api_records_its_job(store_url: str) -> None:
    from cmio.api.app import build_env
    from cmio.api.env import Settings
    from cmio.api.http import FhirRequest
    from cmio.api.router import FhirRouter

    env = build_env(store_url, Settings(terminology_db=None, validation="off", audit=True))
    try:
        router = FhirRouter(env)
        assert router.handle(FhirRequest("POST", "$reindex", [], headers={})).status == 202
        assert env.reindexer is not None
        env.reindexer.wait(120)
        assert env.auditor is not None
        env.auditor.close()
        jobs = [
            e
            for e in events(env.repository)
            if any(
                a["who"].get("identifier", {}).get("system") == "urn:cmio:job" for a in e["agent"]
            )
        ]
    finally:
        env.repository.close()
    assert len(jobs) == 1 and jobs[0]["outcomeDesc"].startswith("reindexed ")
