"""Interface health for the oversight pages: figures equal direct journal queries,
replay of a parked message, headlines and the report section."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from cmio.interfaces.hl7v2.engine.channels import parse_channel
from cmio.interfaces.hl7v2.engine.destinations import SinkItem, SinkOutcome
from cmio.interfaces.hl7v2.engine.journal import Journal
from cmio.interfaces.hl7v2.engine.processor import Processor
from cmio.interfaces.hl7v2.engine.server import Channel
from cmio.oversight.interfaces import (
    error_page,
    headlines,
    interfaces_summary,
    replay,
    report_sections,
)
from cmio.oversight.period import ReportingPeriod
from cmio.reports import MetricRow, Paragraph, Table
from tests.interfaces.hl7v2.engine.conftest import FakeStore, adt, oru

FAILING = "FAILMRN"


class RefusingStore(FakeStore):
    """A store that refuses every Bundle naming the failing patient (a store outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = lambda bundle: 503 if FAILING in json.dumps(bundle) else 200


def fill_journal(path: Path, sink: Any = None) -> list[int]:
    """Journal seven messages on two channels and process them once: the failing
    patient's message is parked in the error queue. Returns the parked ids."""
    journal = Journal(path)
    journal.start()
    configs = [
        parse_channel({"name": name, "journal": str(path), "retry": {"max_attempts": 1}})
        for name in ("adt-feed", "lab-feed")
    ]
    adt_ch, lab_ch = (Channel(c, journal) for c in configs)
    for raw in (adt("A1", "M1"), adt("A2", FAILING), adt("A3", "M3", event="A01")):
        adt_ch.receive_sync(raw)
    for raw in (oru("O1", "M1"), oru("O2", "M3"), oru("O1", "M1"), oru("O3", version="2.1")):
        lab_ch.receive_sync(raw)  # O1 twice: a duplicate; version 2.1: rejected (AR)
    for config in configs:
        processor = Processor(config, journal, sink if sink is not None else RefusingStore())
        processor.recover()
        processor.start()
        assert processor.drain(timeout=60)
        processor.stop()
    parked = [int(r["id"]) for r in journal.rows(states=["error"])]
    journal.close()
    return parked


def _rows(path: Path) -> list[dict[str, Any]]:
    journal = Journal(path)
    try:
        return journal.rows()
    finally:
        journal.close()


def test_summary_equals_journal_queries(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    parked = fill_journal(path)
    assert len(parked) == 1
    now = time.time() + 1
    period = ReportingPeriod.year_of(date.today())
    summary = interfaces_summary(None, period, path, now=now)
    rows = _rows(path)
    assert summary.available and summary.total == len(rows) == 7
    assert dict(summary.by_state) == dict(Counter(r["state"] for r in rows))
    live = [r for r in rows if r["state"] != "duplicate" and r["received_at"] >= now - 86400]
    assert {(r.channel, r.message_type): r.last_day for r in summary.rates} == dict(
        Counter((r["channel"], r["message_type"]) for r in live)
    )
    by_channel = {c.name: c for c in summary.channels}
    assert set(by_channel) == {"adt-feed", "lab-feed"}
    adt_row, lab_row = by_channel["adt-feed"], by_channel["lab-feed"]
    assert adt_row.status == "errors" and adt_row.error_queue == 1
    assert lab_row.status == "ok" and lab_row.error_queue == 0
    assert lab_row.total == 4 and lab_row.last_day == 3  # the duplicate is not counted
    bad = [r for r in live if r["channel"] == "lab-feed" and (r["ack_code"] != "AA")]
    assert lab_row.error_rate_day == len(bad) / 3
    processed = sorted(
        r["processed_at"] - r["received_at"]
        for r in rows
        if r["channel"] == "adt-feed" and r["state"] == "processed"
    )
    assert adt_row.latency_p50 == processed[len(processed) // 2]
    assert adt_row.senders == tuple(
        sorted({r["sender"] for r in rows if r["channel"] == "adt-feed"})
    )
    (error,) = summary.errors
    assert summary.errors_total == 1 and error.id == parked[0] and error.control_id == "A2"
    assert "503" in error.error or "refused" in error.error
    assert error_page(path, 0, 10) == [error] and error_page(path, 1, 10) == []
    assert summary.period_messages == len([r for r in rows if r["state"] != "duplicate"])
    assert summary.period_errors == 2  # the AR and the parked message
    assert summary.by_month[0][1] == summary.period_messages


def test_replay_after_the_cause_is_fixed(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    (parked,) = fill_journal(path)
    still_down = RefusingStore()
    (again,) = replay(path, [parked], still_down)
    assert again.state == "error" and again.control_id == "A2"
    fixed = FakeStore()
    (result,) = replay(path, [parked], fixed)
    assert result.state == "processed" and result.error == ""
    assert len(fixed.applied) == 1
    summary = interfaces_summary(None, ReportingPeriod.year_of(date.today()), path)
    assert summary.errors_total == 0 and summary.errors == ()
    try:
        replay(path, [parked], fixed)
    except KeyError as exc:
        assert str(parked) in str(exc)
    else:
        raise AssertionError("a processed message is not in the error queue")


def test_headlines_and_report(tmp_path: Path) -> None:
    period = ReportingPeriod.year_of(date.today())
    missing = interfaces_summary(None, period, tmp_path / "none.db")
    assert not missing.available
    assert headlines(missing)[0].detail == "no HL7 journal configured"
    (section,) = report_sections(missing)
    assert isinstance(section.blocks[0], Paragraph)
    path = tmp_path / "journal.db"
    fill_journal(path)
    summary = interfaces_summary(None, period, path)
    queue, day = headlines(summary)
    assert queue.value == "1" and queue.status == "bad" and queue.href.endswith("#errors")
    assert day.value == str(sum(c.last_day for c in summary.channels))
    (section,) = report_sections(summary)
    metrics = section.blocks[0]
    assert isinstance(metrics, MetricRow)
    assert metrics.metrics[0].value == f"{summary.period_messages:,}"
    tables: Sequence[Table] = [b for b in section.blocks if isinstance(b, Table)]
    assert [row[0] for row in tables[-1].rows] == ["adt-feed", "lab-feed"]


def test_sink_protocol() -> None:
    """The refusing store answers like a store outage (the processor parks after retries)."""
    store = RefusingStore()
    item = SinkItem({"resourceType": "Bundle", "entry": [], "id": FAILING})
    assert store.apply([item]) == [SinkOutcome(503, "refused with 503")]
