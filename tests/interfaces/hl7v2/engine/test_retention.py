"""Journal retention: finished rows pruned by age; error queue and pending work never."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from cmio.cli.main import app
from cmio.interfaces.hl7v2.engine.channels import Retention
from cmio.interfaces.hl7v2.engine.journal import Entry, Journal, StateUpdate
from cmio.interfaces.hl7v2.engine.retention import prune_journal
from cmio.interfaces.hl7v2.engine.runtime import Engine
from tests.interfaces.hl7v2.engine.conftest import (
    FakeStore,
    RunningEngine,
    channel,
    echo_mapper,
    oru,
)

DAY = 86400.0
NOW = 1_800_000_000.0


def entry(
    control: str, age_days: float, ack: str = "AA", name: str = "test", now: float = NOW
) -> Entry:
    return Entry(name, "LAB|HOSP", control, "ORU^R01", "2.5.1", "M^H", oru(control), ack,
                 received_at=now - age_days * DAY)  # fmt: skip


def populate(journal: Journal, now: float = NOW) -> dict[str, int]:
    """One row per (state, age); returns control id -> journal id."""
    ids: dict[str, int] = {}
    plan = [
        ("P25", 25, "processed"), ("P15", 15, "processed"), ("P1", 1, "processed"),
        ("F25", 25, "filtered"), ("E25", 25, "error"), ("R25", 25, "received"),
        ("T25", 25, "retrying"),
    ]  # fmt: skip
    for control, age, _ in plan:
        (receipt,) = journal.append_sync([entry(control, age, now=now)])
        ids[control] = receipt.id
    journal.update_sync([StateUpdate(ids[c], s, 1) for c, _, s in plan if s != "received"])
    (rejected,) = journal.append_sync([entry("X25", 25, ack="AE", now=now)])
    ids["X25"] = rejected.id
    (dup,) = journal.append_sync([entry("P15", 24, now=now)])  # a resend, itself 24 days old
    assert dup.duplicate
    journal.append_sync([entry("OTHER", 25, name="other", now=now)])
    return ids


def test_prune_keeps_error_queue_pending_work_and_the_duplicate_window(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.start()
    try:
        ids = populate(journal)
        retention = Retention(days=10, duplicate_window_days=20)
        dry = prune_journal(journal.path, "test", retention, now=NOW, dry_run=True)
        done = prune_journal(journal.path, "test", retention, now=NOW, chunk=2)
        assert (done.rows_deleted, done.bodies_dropped) == (4, 1)  # P25 F25 X25 dup; P15 body
        assert (dry.rows_deleted, dry.bodies_dropped) == (4, 1)
        rows = {(r["control_id"], r["state"]): r for r in journal.rows()}
        assert sorted(rows) == sorted([
            ("P15", "processed"), ("P1", "processed"), ("E25", "error"),
            ("R25", "received"), ("T25", "retrying"), ("OTHER", "received"),
        ])  # fmt: skip
        assert journal.raw(ids["P15"]) == b""  # past retention.days: the body is gone
        for kept in ("P1", "E25", "R25", "T25"):
            assert journal.raw(ids[kept]) == oru(kept)
        # Within the duplicate window the control id is still known: a resend is a duplicate.
        (again,) = journal.append_sync([entry("P15", 0)])
        assert again.duplicate and again.id == ids["P15"]
        # Past the window the row is gone, so the same control id counts as new.
        (fresh,) = journal.append_sync([entry("P25", 0)])
        assert not fresh.duplicate
        # Pruning again finds nothing more; the other channel was never touched.
        assert prune_journal(journal.path, "test", retention, now=NOW).rows_deleted == 0
        assert len(journal.rows(channel="other")) == 1
    finally:
        journal.close()


def test_engine_prunes_in_the_background(tmp_path: Path, store: FakeStore) -> None:
    config = channel(tmp_path, retention={"days": 1, "prune_every": 0.05})
    old = Journal(config.journal)
    old.start()
    (receipt,) = old.append_sync([Entry("test", "LAB|HOSP", "OLD", "ORU^R01", "2.5.1", "M^H",
                                        oru("OLD"), "AA", received_at=time.time() - 3 * DAY)])  # fmt: skip
    old.update_sync([StateUpdate(receipt.id, "processed", 1)])
    old.close()
    engine = Engine([config], store, mapper=echo_mapper, supported_types=frozenset({"ORU^R01"}))
    with RunningEngine(engine):
        deadline = time.monotonic() + 10
        while engine.journal.rows(ids=[receipt.id]) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not engine.journal.rows(ids=[receipt.id])


def test_prune_command(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.start()
    populate(journal, now=time.time())
    journal.close()
    spec = tmp_path / "lab.yaml"
    spec.write_text(yaml.safe_dump({"name": "test", "journal": str(tmp_path / "j.db")}))
    runner = CliRunner()
    dry = runner.invoke(app, ["hl7", "prune", "--channel", str(spec), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 0 rows" in dry.output  # default retention: 30 days, none that old
    result = runner.invoke(app, ["hl7", "prune", "--channel", str(spec), "--days", "0"])
    assert result.exit_code == 0, result.output
    assert "deleted 6 rows" in result.output  # P25 P15 P1 F25 X25 and the duplicate
    left = Journal(tmp_path / "j.db")
    try:
        states = sorted(r["state"] for r in left.rows(channel="test"))
    finally:
        left.close()
    assert states == ["error", "received", "retrying"]
