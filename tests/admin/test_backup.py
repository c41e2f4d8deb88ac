"""cmio backup / restore: round trips on both backends, refusals, corruption, online copy."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmio.admin import BackupError, backup, restore
from cmio.admin.doctor import diagnose
from cmio.cli.main import app
from cmio.indexing import SearchIndexer
from cmio.indexing.tables import INDEX_TABLES
from cmio.security.audit import AuditLog
from cmio.store import Repository
from tests.admin.conftest import UrlFactory, _rows, fingerprint, open_store, populate


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_round_trip_keeps_resources_history_indexes_and_audit(
    new_url: UrlFactory, indexer: SearchIndexer, tmp_path: Path
) -> None:
    source_url, target_url = new_url(), new_url()
    repo = open_store(source_url, indexer)
    try:
        populate(repo)
        before = fingerprint(repo)
    finally:
        repo.close()
    assert before["search"][0] and before["search"][1] and before["search"][2]
    assert before["audit"][0] and before["audit"][1] == 20
    code, out = _cli("backup", "--out", str(tmp_path), "--database", source_url)
    assert code == 1 and "directory" in out and "backup failed" in out
    archive = tmp_path / "new" / "b.tar"
    code, out = _cli("backup", "--out", str(archive), "--database", source_url)
    assert code == 0, out
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"manifest.json", "resources.tsv"} <= names
    code, out = _cli("restore", str(archive), "--database", target_url)
    assert code == 0, out
    restored = open_store(target_url, indexer)
    try:
        assert fingerprint(restored) == before
        with restored.transaction() as tx:  # the restored store takes new writes
            tx.create({"resourceType": "Patient", "name": [{"family": "After"}]})
    finally:
        restored.close()
    code, out = _cli("audit", "verify", "--database", target_url)
    assert code == 0 and "audit chain OK: 20 records" in out
    report = diagnose(target_url, indexer, full=True)
    assert report.ok and not report.findings and report.checked["index"] == 40


def test_restore_refuses_non_empty_target_unless_forced(
    new_url: UrlFactory, indexer: SearchIndexer, tmp_path: Path
) -> None:
    source_url, target_url = new_url(), new_url()
    for url, n in ((source_url, 6), (target_url, 3)):
        repo = open_store(url, indexer)
        populate(repo, n)
        repo.close()
    repo = open_store(source_url, indexer)
    want = fingerprint(repo)
    repo.close()
    archive = tmp_path / "b.tar"
    backup(source_url, archive)
    with pytest.raises(BackupError, match="--force"):
        restore(archive, target_url)
    code, out = _cli("restore", str(archive), "--database", target_url)
    assert code == 1 and "--force" in out
    restore(archive, target_url, force=True)
    repo = open_store(target_url, indexer)
    try:
        assert fingerprint(repo) == want
    finally:
        repo.close()


def test_corrupt_archive_is_rejected_and_target_untouched(
    new_url: UrlFactory, indexer: SearchIndexer, tmp_path: Path
) -> None:
    source_url, target_url = new_url(), new_url()
    for url, n in ((source_url, 5), (target_url, 2)):
        repo = open_store(url, indexer)
        populate(repo, n)
        repo.close()
    repo = open_store(target_url, indexer)
    kept = fingerprint(repo)
    repo.close()
    archive = tmp_path / "b.tar"
    backup(source_url, archive)
    bad = tmp_path / "bad.tar"
    with tarfile.open(archive) as src, tarfile.open(bad, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member)
            assert data is not None
            raw = bytearray(data.read())
            if member.name == "resources.tsv":
                raw[10] ^= 1
            member.size = len(raw)
            dst.addfile(member, io.BytesIO(bytes(raw)))
    with pytest.raises(BackupError, match="corrupt"):
        restore(bad, target_url, force=True)
    not_tar = tmp_path / "x.tar"
    not_tar.write_bytes(b"hello")
    with pytest.raises(BackupError):
        restore(not_tar, target_url, force=True)
    repo = open_store(target_url, indexer)
    try:
        assert fingerprint(repo) == kept
    finally:
        repo.close()


def _writer(repo: Repository, stop: threading.Event, count: list[int]) -> None:
    log = AuditLog(repo)
    i = 0
    while not stop.is_set():
        with repo.transaction() as tx:
            tx.update({"resourceType": "Patient", "id": f"w{i}", "name": [{"family": f"W{i}"}]})
            tx.update(
                {
                    "resourceType": "Observation",
                    "id": f"wo{i}",
                    "status": "final",
                    "code": {"text": "pulse"},
                    "subject": {"reference": f"Patient/w{i}"},
                }
            )
            log.append(tx, [{"recorded": "2024-02-02T00:00:00Z", "writer": i}])
        i += 1
        count[0] = i


def test_backup_while_a_writer_writes_is_consistent(
    new_url: UrlFactory, indexer: SearchIndexer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_url, target_url = new_url(), new_url()
    repo = open_store(source_url, indexer)
    stop, count = threading.Event(), [0]
    thread = threading.Thread(target=_writer, args=(repo, stop, count))
    thread.start()
    try:
        while count[0] < 15:
            stop.wait(0.01)
        steps: list[int] = []
        if source_url.startswith("sqlite"):  # small steps: the writer commits between them
            monkeypatch.setattr("cmio.admin.sqlite_backup._PAGES", 4)

        def tick(stage: str, done: int, total: int) -> None:
            steps.append(done)
            time.sleep(0.002)

        before = count[0]
        manifest = backup(source_url, tmp_path / "live.tar", tick)
        assert len(steps) > 3 and count[0] > before  # commits went on during the copy
        at_backup = count[0]
        while count[0] < at_backup + 5:  # the writer went on during and after the copy
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
        repo.close()
    restore(tmp_path / "live.tar", target_url)
    restored = open_store(target_url, indexer)
    try:
        rows = _rows(restored, "SELECT type, id FROM resource")
        patients = {r[1][1:] for r in rows if r[0] == "Patient"}
        observations = {r[1][2:] for r in rows if r[0] == "Observation"}
        assert patients == observations  # whole transactions only
        n = len(patients)
        assert 15 <= n < count[0] and patients == {str(i) for i in range(n)}
        assert manifest.resources == 2 * n
        audit = fingerprint(restored)["audit"]
        assert audit[0] and audit[1] == n
        for table in INDEX_TABLES:  # the indexes agree with the resources
            sql = f"SELECT resource_type, resource_id FROM {table.name}"
            owners = {(r[0], r[1]) for r in _rows(restored, sql)}
            assert owners <= {(r[0], r[1]) for r in rows}
        fam = _rows(restored, "SELECT count(*) FROM string_index WHERE param = 'family'")
        assert fam[0][0] == n
    finally:
        restored.close()
