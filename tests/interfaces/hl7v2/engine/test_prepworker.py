"""The preparation worker: the same store as without it, order and retries kept, no orphan."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.api.hl7 import RouterClient, RouterSink
from cmio.api.router import FhirRouter
from cmio.indexing.tables import INDEX_TABLES
from cmio.interfaces.hl7v2.engine.destinations import SinkItem, SinkOutcome
from cmio.interfaces.hl7v2.engine.journal import Journal
from cmio.interfaces.hl7v2.engine.mllp import FrameDecoder, frame
from cmio.interfaces.hl7v2.engine.processor import Processor
from cmio.interfaces.hl7v2.engine.records import StateUpdate
from cmio.interfaces.hl7v2.engine.runtime import Engine
from cmio.interfaces.hl7v2.engine.server import Channel
from cmio.interfaces.hl7v2.mapping import SUPPORTED
from tests.interfaces.hl7v2.engine.conftest import FakeStore, RunningEngine, channel, oru
from tests.interfaces.hl7v2.engine.test_kill import gone


def wait_ready(processor: Processor, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (processor.worker is not None and processor.worker.ready):
        assert time.monotonic() < deadline, "the preparation worker did not start"
        time.sleep(0.02)


def burst(port: int, messages: Sequence[bytes]) -> None:
    """Send messages in one write; wait for every ACK."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"".join(frame(m) for m in messages))
        decoder, got = FrameDecoder(1 << 20), 0
        while got < len(messages):
            got += len(decoder.feed(sock.recv(65536)))


def index_of(path: Path) -> tuple[list[tuple[str, tuple[Any, ...]]], dict[str, str]]:
    """Every index row of a SQLite store, and its patients' ids by MRN."""
    with sqlite3.connect(path) as db:
        patients = {
            rid: "PAT-" + orjson.loads(data)["identifier"][0]["value"]
            for rid, data in db.execute("SELECT id, data FROM resource WHERE type = 'Patient'")
        }
        rows = []
        for table in INDEX_TABLES:
            for row in db.execute(f"SELECT * FROM {table.name}"):
                rows.append((table.name, row[1:] if table.name == "text_index" else row))
    return rows, patients


def normalized(
    rows: list[tuple[str, tuple[Any, ...]]], patients: dict[str, str], words: set[str]
) -> list[str]:
    """Rows with the (random) patient ids named by MRN; the received time (the marker's
    ``recorded``) left out."""
    out = []
    for table, row in rows:
        if row[0] == "Provenance" and table in ("text_index", "date_index"):
            continue
        if table == "text_index":  # (words of a text row are its ids' parts, deduplicated)
            row = (*row[:-1], " ".join(w for w in row[-1].split() if w not in words))
        text = repr(row)
        for rid, name in patients.items():
            text = text.replace(rid, name)
        out.append(table + text)
    return sorted(out)


def count_extractions(indexer: Any) -> list[int]:
    """Count the indexer's ``table_rows`` calls from now on (in the returned one-item list)."""
    extracted = [0]
    table_rows = indexer.table_rows

    def counted(resource: dict[str, Any]) -> Any:
        extracted[0] += 1
        return table_rows(resource)

    indexer.table_rows = counted
    return extracted


def run_engine(tmp_path: Path, worker_after: int | None) -> tuple[RouterSink, int, int]:
    """ORU^R01 for 4 patients in three bursts; the sink, extractions in the writer, batches
    the worker prepared."""
    settings = Settings(validation="off", terminology_db=None)
    env = build_env(f"sqlite:///{tmp_path / 'store.db'}", settings)
    sink = RouterSink(FhirRouter(env))
    indexer: Any = env.repository.indexer
    extracted = count_extractions(indexer)
    engine = Engine([channel(tmp_path)], sink, supported_types=frozenset(SUPPORTED),
                    worker_after=worker_after)  # fmt: skip
    try:
        with RunningEngine(engine) as run:
            processor = engine.processors["test"]
            if worker_after is not None:
                wait_ready(processor)
            for part in range(3):  # the second and third name patients the sink knows
                burst(run.port, [oru(f"W{part}-{i}", f"M{i % 4}", obx=4) for i in range(8)])
                assert engine.drain(120)
            assert {r["state"] for r in engine.journal.rows()} == {"processed"}
            batches = processor.worker.batches if processor.worker is not None else 0
    finally:
        env.repository.close()
    return sink, extracted[0], batches


@pytest.mark.slow
def test_the_store_is_the_same_with_the_worker(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    alone, extracted_alone, _ = run_engine(tmp_path / "a", None)
    helped, extracted_helped, batches = run_engine(tmp_path / "b", 0)
    assert batches >= 3 and helped.ahead_used == 24 and alone.ahead_used == 0
    assert extracted_alone == 24 * 6 + 4  # results, report, marker; each patient once
    assert extracted_helped == 0  # ... or none: the worker's rows fit every one
    rows_a, patients_a = index_of(tmp_path / "a" / "store.db")
    rows_b, patients_b = index_of(tmp_path / "b" / "store.db")
    words = {part for rid in [*patients_a, *patients_b] for part in rid.split("-")}
    assert len(rows_a) == len(rows_b) > 500
    assert normalized(rows_a, patients_a, words) == normalized(rows_b, patients_b, words)


def mapped_item(control: str, mrn: str) -> SinkItem:
    """A message as the processor hands it to the sink."""
    from cmio.interfaces.hl7v2.engine.batch import default_mapper, prepare_row
    from cmio.interfaces.hl7v2.engine.records import JournalRow

    config = channel(Path(tempfile.gettempdir()))
    row = JournalRow(1, "test", "LAB|HOSP", control, "ORU^R01", mrn, oru(control, mrn), 0.0)
    got = prepare_row(row, config, default_mapper(config))
    assert not isinstance(got, StateUpdate)
    return got[0]


def test_rows_done_ahead_are_used_only_for_what_is_written(tmp_path: Path) -> None:
    settings = Settings(validation="off", terminology_db=None)
    env = build_env(f"sqlite:///{tmp_path / 'store.db'}", settings)
    try:
        sink = RouterSink(FhirRouter(env))
        spec = sink.ahead_spec()
        assert spec is not None and spec.model is None  # no custom SearchParameters
        build = spec.build()
        assert build is not None
        indexer: Any = env.repository.indexer
        extracted = count_extractions(indexer)

        def apply(item: SinkItem, known: dict[Any, str], generation: int | None = None) -> None:
            ahead = build(item.bundle, known)
            if generation is not None:
                ahead = type(ahead)(generation, ahead.entries)
            (outcome,) = sink.apply([dataclasses.replace(item, ahead=ahead)])
            assert outcome.status == 200, outcome.detail

        apply(mapped_item("R1", "P1"), {})  # a new patient: ids drawn ahead
        assert (extracted[0], sink.ahead_used) == (0, 1)
        known = dict(sink.learned_ids(0)[1])
        (patient,) = known.values()
        apply(mapped_item("R2", "P1"), known)  # the sink's resolved identifiers
        assert (extracted[0], sink.ahead_used) == (0, 2)
        wrong = {key: "not-the-patient" for key in known}
        apply(mapped_item("R3", "P1"), wrong)  # a wrong prediction: the writer extracts
        assert extracted[0] == 5 and sink.ahead_used == 3  # specimen, 3 results, report
        apply(mapped_item("R4", "P1"), known, generation=spec.generation + 1)
        assert extracted[0] == 10 and sink.ahead_used == 3  # another model's rows: unused
        status, body = RouterClient(sink.router).request(
            "GET", "Observation", [("subject", f"Patient/{patient}"), ("_count", "0")], None
        )
        assert (
            status == 200 and body["total"] == 12
        )  # the wrong prediction's results are indexed for the real patient
    finally:
        env.repository.close()


class _Recording(FakeStore):
    """A store offering the worker nothing to index (it only maps), failing A1 twice."""

    def __init__(self) -> None:
        super().__init__()
        self.left = {"A1": 2}
        self.sent: list[str] = []

    def ahead_spec(self) -> None:
        return None

    def learned_ids(self, since: int) -> tuple[int, list[Any]]:
        return since, []

    def apply(self, items: Sequence[SinkItem]) -> list[SinkOutcome]:
        out = []
        for item in items:
            if self.left.get(item.control_id, 0):
                self.left[item.control_id] -= 1
                out.append(SinkOutcome(503, "down"))
                continue
            self.sent.append(item.control_id)
            out.append(SinkOutcome(200, "", ("Bundle/x",)))
        return out


def test_order_per_patient_and_retries_with_the_worker(tmp_path: Path) -> None:
    config = channel(tmp_path)
    store = _Recording()
    holder: list[Processor] = []
    journal = Journal(config.journal, on_commit=lambda rows: holder[0].submit(rows))
    processor = Processor(config, journal, store, worker_after=0)
    holder.append(processor)
    journal.start()
    processor.start()
    try:
        wait_ready(processor)
        ch = Channel(config, journal)
        for control, mrn in [("A1", "A"), ("B1", "B"), ("A2", "A"), ("B2", "B"), ("A3", "A"),
                             ("C1", "C"), ("C2", "C")]:  # fmt: skip
            ch.receive_sync(oru(control, mrn))
        assert processor.drain(60)
        assert processor.worker is not None and processor.worker.batches >= 1
    finally:
        processor.stop()
        journal.close()
    for patient, sent in (("A", ["A1", "A2", "A3"]), ("B", ["B1", "B2"]), ("C", ["C1", "C2"])):
        assert [c for c in store.sent if c[0] == patient] == sent
    assert store.sent.index("B1") < store.sent.index("A1")  # B was not held up by A
    rows = {r["control_id"]: r for r in Journal(config.journal).rows()}
    assert rows["A1"]["attempts"] == 3 and {r["state"] for r in rows.values()} == {"processed"}


_ORPHAN = """
import sys, time
from cmio.interfaces.hl7v2.engine.channels import parse_channel
from cmio.interfaces.hl7v2.engine.prepworker import PrepWorker
worker = PrepWorker(parse_channel({"name": "t", "journal": sys.argv[1]}), asks_store=False)
worker.start(None)
while not worker.ready:
    time.sleep(0.02)
print(worker.pid, flush=True)
time.sleep(600)
"""


def test_the_worker_exits_when_the_engine_is_killed(tmp_path: Path) -> None:
    engine = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, str(tmp_path / "journal.db")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert engine.stdout is not None
    pid = int(engine.stdout.readline())
    assert not gone(pid)
    engine.send_signal(signal.SIGKILL)
    engine.wait(30)
    engine.stdout.close()
    deadline = time.monotonic() + 30
    while not gone(pid):
        assert time.monotonic() < deadline, f"the worker {pid} outlived its engine"
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.kill(pid, signal.SIGKILL)
