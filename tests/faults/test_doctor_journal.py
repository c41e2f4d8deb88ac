"""``cmio doctor --journal`` finds a journal that disagrees with the store."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import orjson

from cmio.admin.doctor import DoctorReport
from cmio.admin.doctor_journal import check_journal
from cmio.store import open_repository

COLUMNS = "channel, sender, control_id, message_type, version, received_at, raw, ack_code, state"


def journal(path: Path, rows: list[tuple[str, str, str | None, int | None]]) -> None:
    """A journal (no unique index: it is what a damaged one may hold)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, channel TEXT, sender TEXT,"
            " control_id TEXT, message_type TEXT, version TEXT, received_at REAL, raw BLOB,"
            " ack_code TEXT, state TEXT, result TEXT, dup_of INTEGER)"
        )
        for control, state, result, dup_of in rows:
            conn.execute(
                f"INSERT INTO messages ({COLUMNS}, result, dup_of)"
                " VALUES ('c', 'S', ?, 'ORU^R01', '2.5', 0, x'00', 'AA', ?, ?, ?)",
                (control, state, result, dup_of),
            )
        conn.commit()


def test_journal_agrees_and_disagrees(tmp_path: Path) -> None:
    repo = open_repository(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with repo.transaction() as tx:
            tx.update({"resourceType": "Patient", "id": "kept"})
            tx.update({"resourceType": "Patient", "id": "gone"})
        with repo.transaction() as tx:
            tx.delete("Patient", "gone")
        good = tmp_path / "good.db"
        ok = orjson.dumps({"resources": ["Patient/kept/_history/1", "Patient/gone"]}).decode()
        journal(good, [("m1", "processed", ok, None), ("m2", "received", None, None)])
        report = DoctorReport()
        check_journal(good, repo, report)
        assert report.ok and report.checked["journal"] == 2

        bad = tmp_path / "bad.db"
        lost = orjson.dumps({"resources": ["Patient/lost/_history/1", "Patient/kept/_history/3"]})
        journal(
            bad,
            [
                ("m1", "processed", lost.decode(), None),
                ("m1", "received", None, None),  # accepted twice
                ("m3", "duplicate", None, 99),  # points at nothing
                ("m4", "weird", None, None),
            ],
        )
        report = DoctorReport()
        check_journal(bad, repo, report)
        found = sorted(f.message for f in report.findings)
        assert any("Patient/lost/_history/1: not in the store" in m for m in found)
        assert any("Patient/kept/_history/3: not in the store" in m for m in found)
        assert "accepted 2 times" in found
        assert "duplicate of missing message 99" in found
        assert "1 messages in an unknown state" in found
        report = DoctorReport()
        check_journal(tmp_path / "none.db", repo, report)
        assert [f.message for f in report.findings] == ["no journal file"]
    finally:
        repo.close()
