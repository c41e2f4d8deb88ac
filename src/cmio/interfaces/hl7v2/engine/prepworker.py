"""A second process that prepares queued messages while the store applies earlier ones.

The processor's thread is the store's single writer. With a backlog, it hands the next
batch to this worker (parse, filters, v2-to-FHIR mapping, marker Provenance, and the
store's own work on the Bundle that needs no store: each entry's resource as it will be
written and its search-index rows, built from the sink's ``ahead_spec``) and meanwhile
applies the batch the worker prepared before, so the two cores share the work
(https://docs.python.org/3/library/subprocess.html: a plain child process, its pipes
framed by :class:`multiprocessing.connection.Connection`).

What stays in the writer: everything that reads or writes the store. A message whose
mapping asks the store (ConceptMap ``translate``, the stored patient's links) is
prepared again in the writer; the identifiers the sink resolved are sent to the worker
(``learned_ids``) so its predictions name the stored resources; the writer uses the
prepared rows only for a resource equal to the prediction. The worker holds nothing
durable: the journal and the store commit are the writer's, so a ``kill -9`` loses
nothing it did not lose before, and the worker exits when the engine's end of its pipe
closes (the engine exited or was killed).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cmio.interfaces.hl7v2.engine.batch import Remote, default_mapper, prepare_row
from cmio.interfaces.hl7v2.engine.channeltypes import ChannelConfig
from cmio.interfaces.hl7v2.engine.records import JournalRow, StateUpdate

__all__ = ["PrepWorker", "main"]

_LOG = logging.getLogger("cmio.hl7.processor")
_KNOWN = 100_000  # identifiers the worker remembers (then it starts over)
_ANSWER_SECONDS = 30.0  # a batch not prepared by then: the worker is given up (and killed)
_START_SECONDS = 120.0  # not ready by then (imports, model): given up (and killed)
Key = tuple[str, str, str]


class PrepWorker:
    """The engine's end of one preparation process for a channel.

    Args:
        channel: the channel (its filters and mapping options).
        asks_store: the mapping was given store lookups (``translate``, ``patient_links``):
            messages that use them are prepared again in the writer.
        on_settled: called once the started worker is ready or has failed to start (from
            the thread that waits for it).
    """

    def __init__(
        self,
        channel: ChannelConfig,
        *,
        asks_store: bool,
        on_settled: Callable[[PrepWorker], None] | None = None,
    ) -> None:
        self.channel = channel
        self.asks_store = asks_store
        self.on_settled = on_settled
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._ready = False
        self._starting: threading.Thread | None = None  # waits for the worker's "ready"
        self._closing = False
        self.failed = False
        self.spec: Any = None
        self.known_at = 0  # the sink's learned_ids position sent so far
        self.batches = 0  # batches prepared
        self._sent = 0  # batches sent

    @property
    def pid(self) -> int | None:
        """The worker's process id (None: not started)."""
        return None if self._proc is None else self._proc.pid

    def start(self, spec: Any) -> None:
        """Start the process (it builds its mapping and indexer; :attr:`ready` tells when)."""
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        root = str(Path(__file__).resolve().parents[4])  # the directory holding cmio
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(task_r), str(result_w)],
                pass_fds=(task_r, result_w),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError:
            _LOG.exception("the preparation worker could not start")
            self.failed = True
            os.close(task_w)
            os.close(result_r)
            self._settle()
            return
        finally:
            os.close(task_r)
            os.close(result_w)
        self._send = Connection(task_w, readable=False)
        self._recv = Connection(result_r, writable=False)
        self.spec = spec
        self._post(("init", self.channel, self.asks_store, spec))
        self._starting = threading.Thread(
            target=self._await_ready, args=(self._recv,), name="cmio-hl7-prep-start", daemon=True
        )
        self._starting.start()

    def _await_ready(self, recv: Connection) -> None:
        """Block (at most ``_START_SECONDS``) on the worker's first answer, "ready". Until
        then this thread is the pipe's only reader: no batch is sent before :attr:`ready`."""
        try:
            if recv.poll(_START_SECONDS):
                recv.recv()
                self._ready = True
            elif not self._closing:
                self._fail(f"the preparation worker was not ready in {_START_SECONDS:.0f} s")
        except (EOFError, OSError):
            if not self._closing:  # (closed while starting: not a failure)
                self._fail("the preparation worker exited while starting")
        self._settle()

    def _settle(self) -> None:
        if self.on_settled is not None and not self._closing:
            try:
                self.on_settled(self)
            except Exception:  # (a reporting callback must not break the engine)
                _LOG.exception("the preparation worker's on_settled callback failed")

    @property
    def ready(self) -> bool:
        """Whether the worker has built its mapping and indexer (never waits for it)."""
        return self._ready

    def submit(
        self, rows: Sequence[JournalRow], spec: Any, known: list[tuple[Key, str]]
    ) -> int | None:
        """Send a batch (a changed spec and newly resolved identifiers first); its number."""
        if spec is not self.spec:
            self.spec = spec
            self._post(("spec", spec))
        if known:
            self._post(("known", known))
        self._sent += 1
        bare = [dataclasses.replace(r, payload=None) for r in rows]
        return self._sent if self._post(("batch", self._sent, bare)) else None

    def result(self, number: int, rows: Sequence[JournalRow]) -> list[Remote] | None:
        """Batch ``number`` as prepared (None: the worker failed; prepare it in the writer)."""
        recv, proc = self._recv, self._proc
        if recv is None or proc is None or self.failed:
            return None
        deadline = time.monotonic() + _ANSWER_SECONDS
        try:
            while True:
                while not recv.poll(1.0):
                    if proc.poll() is not None:
                        self._fail(f"the preparation worker exited ({proc.returncode})")
                        return None
                    if time.monotonic() > deadline:
                        self._fail(f"the preparation worker gave no answer in {_ANSWER_SECONDS} s")
                        return None
                _, seq, ids, got = recv.recv()
                if seq >= number:
                    break  # (an earlier one was abandoned: skipped)
        except (EOFError, OSError):
            self._fail("the preparation worker's pipe closed")
            return None
        if seq != number or ids != [r.id for r in rows]:
            self._fail("the preparation worker answered out of turn")
            return None
        self.batches += 1
        return [self._decoded(r) for r in got]

    def _decoded(self, prepared: Remote) -> Remote:
        """A prepared item whose Bundle and work ahead came as the spec's encoding, decoded."""
        if not isinstance(prepared, tuple) or not isinstance(prepared[0].ahead, bytes):
            return prepared
        item, unmapped = prepared
        try:
            bundle, ahead = self.spec.decode(item.ahead)
        except Exception:  # (a spec that changed since cannot read it: prepare it here)
            return None
        return dataclasses.replace(item, bundle=bundle, ahead=ahead), unmapped

    def close(self) -> None:
        """End the process (closing its pipe ends it; killed if it does not)."""
        self._closing = True
        if self._send is not None:
            self._send.close()
        self._send = None
        if self._proc is not None:
            try:
                self._proc.wait(2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._starting is not None:  # (the exited worker's pipe wakes it)
            self._starting.join(5)
            self._starting = None
        if self._recv is not None:
            self._recv.close()
        self._recv = None

    def _post(self, message: tuple[Any, ...]) -> bool:
        if self._send is None or self.failed:
            return False
        try:
            self._send.send(message)
        except (OSError, ValueError):
            self._fail("the preparation worker's pipe closed")
            return False
        return True

    def _fail(self, reason: str) -> None:
        """Stop using the worker, and end its process (a hung one would hold its memory)."""
        if not self.failed and not self._closing:
            _LOG.warning("%s: messages are prepared in the writer from now on", reason)
        self.failed = True
        proc = self._proc  # read once: close() may clear it from another thread
        if proc is not None and proc.poll() is None:
            proc.kill()


class _Worker:
    """The worker process's state: the channel's mapping, the indexer, resolved identifiers."""

    def __init__(self, channel: ChannelConfig, asks_store: bool, spec: Any) -> None:
        self.channel = channel
        self.asked = False

        def ask(*_args: Any) -> list[Any]:
            self.asked = True  # the store must answer: the writer maps this message
            return []

        lookup = ask if asks_store else None
        self.mapper = default_mapper(channel, lookup, lookup)
        self.builder: Any = None
        self.known: dict[Key, str] = {}
        self.use(spec)

    def use(self, spec: Any) -> None:
        try:
            self.builder = None if spec is None else spec.build()
        except Exception:  # without it the writer extracts the rows itself
            _LOG.exception("the preparation worker cannot index")
            self.builder = None

    def learn(self, known: list[tuple[Key, str]]) -> None:
        if len(self.known) + len(known) > _KNOWN:
            self.known.clear()
        self.known.update(known)

    def prepare(self, rows: Sequence[JournalRow]) -> list[Remote]:
        out: list[Remote] = []
        for row in rows:
            self.asked = False
            try:
                got = prepare_row(row, self.channel, self.mapper)
            except Exception:
                out.append(None)
                continue
            if self.asked:
                out.append(None)
            elif isinstance(got, StateUpdate):
                out.append(got)
            elif got[0].merge is not None:  # an A40 merge: its lookups are the writer's
                out.append(None)
            else:
                item, _, unmapped = got
                blob = None
                if self.builder is not None:
                    try:
                        blob = self.builder.encode(item.bundle, self.known)
                    except Exception:
                        _LOG.debug("work ahead failed for journal row %d", row.id, exc_info=True)
                if blob is not None:  # the Bundle travels inside it, as JSON
                    item = dataclasses.replace(item, bundle={}, ahead=blob)
                out.append((item, unmapped))
        return out


def main(argv: Sequence[str]) -> None:
    """The worker process: ``python -m cmio.interfaces.hl7v2.engine.prepworker TASK_FD RESULT_FD``."""
    tasks = Connection(int(argv[0]), writable=False)
    results = Connection(int(argv[1]), readable=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
    inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()

    def read() -> None:  # always reading, so the engine's sends never wait on our results
        try:
            while True:
                inbox.put(tasks.recv())
        except (EOFError, OSError):
            pass
        os._exit(0)  # the engine closed its end, exited or was killed

    threading.Thread(target=read, name="cmio-hl7-prep-reader", daemon=True).start()
    worker: _Worker | None = None
    while True:
        message = inbox.get()
        kind = message[0]
        if kind == "init":
            worker = _Worker(*message[1:])
            gc.freeze()  # the model and mapping tables stay: keep them out of GC scans
            results.send(("ready",))
        elif worker is not None and kind == "spec":
            worker.use(message[1])
        elif worker is not None and kind == "known":
            worker.learn(message[1])
        elif worker is not None and kind == "batch":
            rows = message[2]
            results.send(("done", message[1], [r.id for r in rows], worker.prepare(rows)))


def _known_since(sink: Any, since: int) -> tuple[int, list[tuple[Key, str]]]:
    """The sink's identifiers resolved since ``since`` (none when it does not say)."""
    learned = getattr(sink, "learned_ids", None)
    if learned is None:
        return since, []
    position, known = learned(since)
    return int(position), list(known)


def spec_of(sink: Any) -> Any:
    """The sink's ``ahead_spec()`` (None: the worker only maps)."""
    ahead_spec = getattr(sink, "ahead_spec", None)
    return None if ahead_spec is None else ahead_spec()


def sink_state(sink: Any, since: int) -> tuple[Any, int, list[tuple[Key, str]]]:
    """What a batch sent to the worker needs from the sink: its spec and new identifiers."""
    position, known = _known_since(sink, since)
    return spec_of(sink), position, known


if __name__ == "__main__":
    main(sys.argv[1:])
