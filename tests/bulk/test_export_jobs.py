"""Export jobs are shared through their job.json: another server process polls, downloads, cancels."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from cmio.bulk.jobs import ExportJob, ExportJobs, ExportRequest
from cmio.model import Model
from cmio.store.sqlite import SqliteRepository


def _wait(jobs: ExportJobs, job_id: str) -> ExportJob:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = jobs.get(job_id)
        assert job is not None
        if job.status != "in-progress":
            return job
        time.sleep(0.05)
    raise AssertionError("export did not finish")


def test_second_process_sees_job_state(tmp_path: Path, model: Model) -> None:
    repo = SqliteRepository(tmp_path / "db.sqlite")
    with repo.transaction() as tx:
        tx.put_many(
            [{"resourceType": "Patient", "id": f"p{i}", "gender": "female"} for i in range(25)]
        )
    owner, other = ExportJobs(tmp_path / "exports"), ExportJobs(tmp_path / "exports")
    try:
        job = owner.start(repo, model, ExportRequest("http://x/fhir/$export", types=("Patient",)))
        seen = _wait(other, job.id)
        assert seen.status == "completed"
        assert [(f.type, f.count) for f in seen.files] == [("Patient", 25)]
        lines = seen.files[0].path.read_bytes().splitlines()
        assert {orjson.loads(line)["id"] for line in lines} == {f"p{i}" for i in range(25)}
        assert (
            seen.manifest("http://x/files")["output"][0]["url"]
            == f"http://x/files/{seen.files[0].path.name}"
        )
        assert other.delete(job.id)
        assert not (tmp_path / "exports" / job.id).exists()
        assert other.get(job.id) is None
    finally:
        owner.close()
        other.close()
        repo.close()


def test_cancel_marker_stops_a_job_running_elsewhere(tmp_path: Path, model: Model) -> None:
    repo = SqliteRepository(tmp_path / "db.sqlite")
    with repo.transaction() as tx:
        tx.put_many([{"resourceType": "Patient", "id": f"p{i}"} for i in range(20_000)])
    owner, other = ExportJobs(tmp_path / "exports"), ExportJobs(tmp_path / "exports")
    try:
        job = owner.start(repo, model, ExportRequest("http://x/fhir/$export"))
        assert other.delete(job.id)
        assert job.thread is not None
        job.thread.join(timeout=30)
        assert job.cancel.is_set()
        assert not (tmp_path / "exports" / job.id).exists()
        assert other.get(job.id) is None
    finally:
        owner.close()
        other.close()
        repo.close()
