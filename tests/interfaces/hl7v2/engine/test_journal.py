"""The journal: durable group commit, duplicates, states, recovery."""

from __future__ import annotations

import threading
from pathlib import Path

from cmio.interfaces.hl7v2.engine.journal import Entry, Journal, JournalRow, StateUpdate


def entry(control_id: str, ack: str = "AA", sender: str = "LAB|HOSP") -> Entry:
    return Entry(
        "ch", sender, control_id, "ORU^R01", "2.5.1", "MRN1^HOSP", f"MSH|{control_id}".encode(), ack
    )


def test_concurrent_appends_share_commits(tmp_path: Path) -> None:
    seen: list[JournalRow] = []
    journal = Journal(tmp_path / "j.db", on_commit=seen.extend)
    journal.start()
    receipts = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(50):
            r = journal.append_sync([entry(f"{n}-{i}")])
            with lock:
                receipts.extend(r)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    journal.close()
    assert len(receipts) == 400 and not any(r.duplicate for r in receipts)
    assert len({r.id for r in receipts}) == 400
    assert len(seen) == 400  # every accepted message went to the processor feed
    assert journal.commits < 400  # group commit: several messages per fsync


def test_duplicates_answer_the_original_and_are_kept(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.start()
    first = journal.append_sync([entry("X1")])[0]
    again = journal.append_sync([entry("X1")])[0]
    other_sender = journal.append_sync([entry("X1", sender="RAD|HOSP")])[0]
    assert not first.duplicate and again.duplicate and again.id == first.id
    assert again.ack_code == "AA" and not other_sender.duplicate
    # A refused message does not block a corrected resend with the same control id.
    refused = journal.append_sync([entry("Y1", ack="AE")])[0]
    fixed = journal.append_sync([entry("Y1")])[0]
    assert not refused.duplicate and not fixed.duplicate and fixed.id != refused.id
    states = [(r["control_id"], r["state"], r["dup_of"]) for r in journal.rows()]
    assert states == [
        ("X1", "received", None),
        ("X1", "duplicate", first.id),
        ("X1", "received", None),
        ("Y1", "rejected", None),
        ("Y1", "received", None),
    ]
    journal.close()


def test_pending_survives_reopen_and_requeue(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.start()
    ids = [r.id for r in journal.append_sync([entry(f"M{i}") for i in range(4)])]
    journal.update_sync(
        [
            StateUpdate(ids[0], "processed", 1, result="{}"),
            StateUpdate(ids[1], "error", 1, error="mapping: bad"),
            StateUpdate(ids[2], "retrying", 1, error="store down", next_attempt_at=1.0),
        ]
    )
    journal.close()
    reopened = Journal(tmp_path / "j.db")
    reopened.start()
    pending = reopened.pending("ch")
    assert [r.control_id for r in pending] == ["M2", "M3"]
    assert all(r.recovered for r in pending) and pending[0].attempts == 1
    assert pending[0].raw == b"MSH|M2"
    back = reopened.requeue([ids[1]])
    assert [r.control_id for r in back] == ["M1"]
    assert reopened.rows(ids=[ids[1]])[0]["state"] == "received"
    assert reopened.raw(ids[3]) == b"MSH|M3"
    reopened.close()
