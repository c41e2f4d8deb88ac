"""The engine: one journal, and for each channel its receipt path, source and processor.

Start-up order makes restarts safe: the journal opens, each processor queues what
the journal still holds for its channel (received before a crash, or waiting for a
retry), and only then do the sources start accepting new messages. While serving, a
background task prunes each channel's finished journal rows past its retention
(:mod:`.retention`) every ``retention.prune_every`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cmio.interfaces.hl7v2.engine.channeltypes import ChannelConfig
from cmio.interfaces.hl7v2.engine.destinations import TransactionSink
from cmio.interfaces.hl7v2.engine.journal import Journal, JournalRow
from cmio.interfaces.hl7v2.engine.prepworker import PrepWorker
from cmio.interfaces.hl7v2.engine.processor import Processor
from cmio.interfaces.hl7v2.engine.retention import PruneResult, prune_journal
from cmio.interfaces.hl7v2.engine.server import Channel, poll_folder, serve_mllp
from cmio.interfaces.hl7v2.engine.steps import Mapper

__all__ = ["Engine", "settle_heap"]

_LOG = logging.getLogger("cmio.hl7.engine")
_YOUNG = 100_000  # allocations between young-generation collections (CPython's default: 700)


def settle_heap(young: int = _YOUNG) -> None:
    """Tune the cyclic garbage collector for a long-running engine process, once its store,
    model and mapping tables are loaded.

    Those objects live as long as the process: :func:`gc.freeze` moves them out of every
    later collection's scan (https://docs.python.org/3/library/gc.html#gc.freeze). Each
    message allocates thousands of short-lived containers (parsed JSON, Bundles, index
    rows) and frees them by reference counting; with CPython's default threshold (700) the
    young generation was collected about once per ORU^R01, and the full collections that
    follow scanned the whole heap (~100k objects): over a drain of 300 ORU^R01, 250-300
    collections, 2 of them full, 0.5-0.85 s of pauses, the longest 0.2-0.5 s, every thread
    stopped; none with these settings (``python -m bench.hl7_drain --gc-stats``).
    Process-wide: the ``cmio hl7 listen`` process (and the benchmarks' engine) call it, not
    the library.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, 50, 100)


class Engine:
    """Channels sharing one durable journal.

    Args:
        channels: channel configurations (names must differ).
        sink: the FHIR store for ``store`` destinations (None: no store destination allowed).
        journal: journal file (default: the first channel's ``journal``).
        mapper: the v2-to-FHIR mapping (default: :mod:`cmio.interfaces.hl7v2.mapping`).
        supported_types: message types the mapping handles (channels without an explicit
            ``accept.message_types`` answer AR to others; empty: accept any type).
        process: run the processors (False: only journal and ACK, e.g. for measurements).
        max_batch: most messages per processing batch (one store commit).
        translate: ConceptMap translation of local codes (see :class:`Processor`).
        patient_links: the stored patient's ``Patient.link`` by identifier (see :class:`Processor`).
        worker_after: start a channel's preparation worker process once this many of its
            messages wait (None: never; 0: at start; see :class:`Processor`).
        on_worker: called once a channel's started worker is ready or has failed to start.
    """

    def __init__(
        self,
        channels: Sequence[ChannelConfig],
        sink: TransactionSink | None,
        *,
        journal: str | Path | None = None,
        mapper: Mapper | None = None,
        supported_types: frozenset[str] = frozenset(),
        process: bool = True,
        max_batch: int = 64,
        translate: Callable[[str, str], Sequence[tuple[str, str, str]]] | None = None,
        patient_links: Callable[[str, str], Sequence[Mapping[str, Any]]] | None = None,
        worker_after: int | None = None,
        on_worker: Callable[[PrepWorker], None] | None = None,
    ) -> None:
        if not channels:
            raise ValueError("an engine needs at least one channel")
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must differ: {names}")
        journals = {c.journal for c in channels}
        if journal is None and len(journals) > 1:
            raise ValueError(
                f"channels name different journals {sorted(journals)}: one engine has one"
                " journal (give --journal, or run one engine per journal)"
            )
        self.configs = list(channels)
        self.journal = Journal(journal or channels[0].journal, on_commit=self._fan_out)
        self.channels = {c.name: Channel(c, self.journal, supported_types) for c in channels}
        self.processors: dict[str, Processor] = {}
        if process:
            for c in channels:
                self.processors[c.name] = Processor(
                    c,
                    self.journal,
                    sink,
                    mapper=mapper,
                    max_batch=max_batch,
                    translate=translate,
                    patient_links=patient_links,
                    worker_after=worker_after,
                    on_worker=on_worker,
                )
        self.ports: dict[str, int] = {}

    def _fan_out(self, rows: list[JournalRow]) -> None:
        for processor in self.processors.values():
            processor.submit(rows)

    def start(self) -> int:
        """Open the journal, queue unfinished work, start processing; returns the recovered count."""
        self.journal.start()
        recovered = 0
        for processor in self.processors.values():
            recovered += processor.recover()
            processor.start()
        if recovered:
            _LOG.info("recovered %d journaled messages to process", recovered)
        return recovered

    async def run(
        self,
        stop: asyncio.Event,
        *,
        ports: dict[str, int] | None = None,
        ready: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        """Serve every channel's source until ``stop`` is set.

        Args:
            stop: set to stop.
            ports: per channel, a port that overrides the configured one (0: any free port).
            ready: called with the bound port of each MLLP channel once all listen.
        """
        ports = ports or {}
        waiting = {c.name for c in self.configs if c.source.type == "mllp"}
        bound_all = asyncio.Event()
        if not waiting:
            bound_all.set()

        def bound(name: str) -> Callable[[int], None]:
            def record(port: int) -> None:
                self.ports[name] = port
                waiting.discard(name)
                if not waiting:
                    bound_all.set()

            return record

        tasks: list[asyncio.Task[None]] = []
        for config in self.configs:
            channel = self.channels[config.name]
            if config.source.type == "mllp":
                port = ports.get(config.name, config.source.port)
                coro = serve_mllp(channel, config.source.host, port, ready=bound(config.name),
                                  stop=stop)  # fmt: skip
            else:
                coro = poll_folder(channel, stop)
            tasks.append(asyncio.create_task(coro))
        tasks.append(asyncio.create_task(self._prune_loop(stop)))
        waiter = asyncio.create_task(bound_all.wait())
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if bound_all.is_set() and ready is not None:
            ready(dict(self.ports))
        try:
            await asyncio.gather(*tasks)
        finally:
            waiter.cancel()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)

    def prune(self, now: float | None = None) -> list[PruneResult]:
        """Prune every channel's finished journal rows past its retention (blocking)."""
        return [prune_journal(self.journal.path, c.name, c.retention, now=now)
                for c in self.configs]  # fmt: skip

    async def _prune_loop(self, stop: asyncio.Event) -> None:
        due = {c.name: 0.0 for c in self.configs if c.retention.prune_every > 0}
        loop = asyncio.get_running_loop()
        while due and not stop.is_set():
            now = loop.time()
            for config in self.configs:
                if config.name in due and due[config.name] <= now:
                    due[config.name] = now + config.retention.prune_every
                    try:
                        result = await asyncio.to_thread(
                            prune_journal, self.journal.path, config.name, config.retention
                        )
                    except Exception:  # a failed prune must not stop the engine
                        _LOG.exception("pruning the journal of channel %s failed", config.name)
                        continue
                    if result.rows_deleted or result.bodies_dropped:
                        _LOG.info("channel %s: pruned %d journal rows, %d message bodies",
                                  config.name, result.rows_deleted, result.bodies_dropped)  # fmt: skip
            wait = max(0.01, min(due.values()) - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every processor is idle."""
        return all(p.drain(timeout) for p in self.processors.values())

    def close(self) -> None:
        """Stop processing and close the journal (unprocessed messages stay journaled)."""
        for processor in self.processors.values():
            processor.stop()
        self.journal.close()
