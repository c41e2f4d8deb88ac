"""Fixtures of the engine tests: message builders, a fake store and a running engine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cmio.interfaces.hl7v2.engine.channels import ChannelConfig, parse_channel
from cmio.interfaces.hl7v2.engine.destinations import SinkItem, SinkOutcome
from cmio.interfaces.hl7v2.engine.runtime import Engine
from cmio.interfaces.hl7v2.message import Message


def oru(
    control_id: str,
    mrn: str = "MRN1",
    *,
    version: str = "2.5.1",
    obx: int = 3,
    processing: str = "P",
    sender: str = "LAB",
) -> bytes:
    """An ORU^R01 with ``obx`` numeric results."""
    lines = [
        f"MSH|^~\\&|{sender}|HOSP|CMIO|HOSP|20240101120000||ORU^R01^ORU_R01|{control_id}"
        f"|{processing}|{version}",
        f"PID|1||{mrn}^^^HOSP^MR||DOE^JANE||19800102|F",
        f"OBR|1|P{control_id}|F{control_id}|24323-8^Metabolic panel^LN|||20240101110000",
    ]
    lines += [
        f"OBX|{i}|NM|2345-7^Glucose^LN||{i}.5|mmol/L^mmol/L^UCUM|3.9-6.1|N|||F|||20240101110000"
        for i in range(1, obx + 1)
    ]
    return ("\r".join(lines) + "\r").encode()


def adt(control_id: str, mrn: str, event: str = "A08", family: str = "DOE") -> bytes:
    """An ADT message for one patient and visit."""
    return (
        f"MSH|^~\\&|REG|HOSP|CMIO|HOSP|20240101120000||ADT^{event}^ADT_A01|{control_id}|P|2.5.1\r"
        f"EVN|{event}|20240101120000\r"
        f"PID|1||{mrn}^^^HOSP^MR||{family}^JOHN||19700101|M\r"
        f"PV1|1|I|W1^101^A||||||||||||||||V{mrn}^^^HOSP^VN\r"
    ).encode()


@dataclass
class Mapped:
    """A mapping result for the fake mapper."""

    bundle: dict[str, Any]
    unmapped: list[str] = field(default_factory=list)
    merge: Any = None


def echo_mapper(message: Message, options: dict[str, Any]) -> Mapped:
    """A mapping that records the control id and patient in an empty Bundle."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [],
        "id": message.control_id,
        "meta": {"tag": [{"code": message.value("PID-3")}]},
    }
    return Mapped(bundle)


class FakeStore:
    """A TransactionSink recording applied control ids; ``fail`` decides per bundle."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.bundles: list[dict[str, Any]] = []
        self.markers: set[str] = set()
        self.fail: Callable[[dict[str, Any]], int] = lambda bundle: 200
        self.lock = threading.Lock()
        self.batches = 0

    def apply(self, items: Sequence[SinkItem]) -> list[SinkOutcome]:
        out = []
        with self.lock:
            self.batches += 1
            for item in items:
                status = self.fail(item.bundle)
                if status == 200:
                    self.applied.append(str(item.bundle.get("id")))
                    self.bundles.append(item.bundle)
                    for entry in item.bundle["entry"]:
                        if entry["resource"]["resourceType"] == "Provenance":
                            self.markers.add(entry["resource"]["id"])
                    out.append(SinkOutcome(200, "", (f"Bundle/{item.bundle.get('id')}",)))
                else:
                    out.append(SinkOutcome(status, f"refused with {status}"))
        return out

    def exists(self, resource_type: str, resource_id: str) -> bool:
        return resource_type == "Provenance" and resource_id in self.markers


class RunningEngine:
    """An engine serving in a background thread (its own event loop)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.ports: dict[str, int] = {}
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        zero = {c.name: 0 for c in self.engine.configs}

        def ready(ports: dict[str, int]) -> None:
            self.ports.update(ports)
            self.ready.set()

        self.loop.run_until_complete(self.engine.run(self.stop, ports=zero, ready=ready))

    def __enter__(self) -> RunningEngine:
        self.engine.start()
        self.thread.start()
        assert self.ready.wait(20), "engine did not start"
        return self

    @property
    def port(self) -> int:
        return next(iter(self.ports.values()))

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=20)
        self.engine.close()
        self.loop.close()


def channel(tmp_path: Path, **overrides: Any) -> ChannelConfig:
    """A channel config with a journal under ``tmp_path``."""
    data: dict[str, Any] = {
        "name": "test",
        "journal": str(tmp_path / "journal.db"),
        "retry": {"max_attempts": 3, "initial_delay": 0.05},
    }
    data.update(overrides)
    return parse_channel(data)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def running(tmp_path: Path, store: FakeStore) -> Iterator[RunningEngine]:
    """An engine on a free port, a fake store and the echo mapping."""
    config = channel(
        tmp_path, source={"max_message_bytes": 200_000, "frame_timeout": 1.0, "idle_timeout": 3.0}
    )
    engine = Engine(
        [config],
        store,
        mapper=echo_mapper,
        supported_types=frozenset({"ORU^R01", "ADT^A08", "ADT^A01"}),
    )
    with RunningEngine(engine) as run:
        yield run
