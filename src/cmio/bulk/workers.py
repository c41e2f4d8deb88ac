"""Parser workers: conditional-reference resolution and the worker processes.

With ``workers=N`` the import runs N ``spawn``-ed processes, each with its own
model, validator and (read-only) store connection; tasks go out through a
bounded number of in-flight slots so memory stays flat, and results come back
tagged with their sequence number so the single writer can apply them in order.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import queue
import signal
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.ops.conditional import match_conditional
from cmio.bulk.parser import ChunkParser, ChunkResult, ResolveError
from cmio.bulk.sources import Task
from cmio.model import Model
from cmio.store.base import Repository, StoreError

__all__ = ["StoreResolver", "WorkerConfig", "WorkerPool", "make_validator"]

_CACHE_LIMIT = 200_000


class StoreResolver:
    """Resolves conditional references against the store, caching hits.

    Misses are not cached: the target may be written later in the same run.
    See https://hl7.org/fhir/R4/http.html#trules.
    """

    def __init__(self, env: Env) -> None:
        self.env = env
        self._cache: dict[str, str] = {}

    def __call__(self, reference: str) -> str | None:
        """``Type/id`` for ``Type?query``, None when nothing matches yet.

        Raises:
            ResolveError: unknown type, unsupported search, or several matches.
        """
        hit = self._cache.get(reference)
        if hit is not None:
            return hit
        rtype, _, query = reference.partition("?")
        if not self.env.model.is_resource_type(rtype):
            raise ResolveError(
                "invalid", f"conditional reference {reference!r} names an unknown type"
            )
        try:
            with self.env.repository.read_transaction() as tx:
                found = match_conditional(self.env, tx, rtype, query)
        except (FhirError, StoreError) as exc:
            raise ResolveError("invalid", f"conditional reference {reference!r}: {exc}") from None
        if len(found) > 1:
            raise ResolveError(
                "multiple-matches", f"conditional reference {reference!r} matches several resources"
            )
        if not found:
            return None
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        hit = self._cache[reference] = f"{rtype}/{found[0].id}"
        return hit


def make_validator(model: Model) -> Callable[[dict[str, Any]], Any]:
    """The API's structural validation bound to ``model``, remembering the complex values
    it found valid (:class:`~cmio.validation.structural.StructureValidator`: the same
    issues, far fewer walks of the codes and references an import repeats)."""
    from cmio.validation.structural import StructureValidator

    return StructureValidator(model)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker process needs to build its parser (picklable)."""

    database_url: str | None
    #: extract search-index rows in the worker (the store's indexer is a SearchIndexer)
    index: bool = False


def _worker_main(config: WorkerConfig, tasks: Any, results: Any) -> None:
    """Worker process loop: build a parser, then parse tasks until ``None`` arrives."""
    from cmio.api.env import Env
    from cmio.model import load_model

    # Ctrl-C goes to the whole process group: the parent handles it and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    repository: Repository | None = None
    try:
        model = load_model()
        # This process only parses: keep the model out of GC scans and collect rarely.
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
        validator = make_validator(model)
        resolver: StoreResolver | None = None
        if config.database_url is not None:
            from cmio.store import open_repository

            repository = open_repository(config.database_url)
            resolver = StoreResolver(Env(repository, model, validator))
        indexer = None
        if config.index:
            from cmio.indexing import SearchIndexer

            indexer = SearchIndexer(model).keyed_rows
        parser = ChunkParser(model.resource_types, validator, resolver, indexer)
        while True:
            task: Task | None = tasks.get()
            if task is None:
                break
            try:
                results.put(parser.run(task))
            except Exception:
                results.put(
                    ChunkResult(task.seq, progress=task.progress, error=traceback.format_exc())
                )
    except Exception:
        results.put(ChunkResult(-1, error=traceback.format_exc()))
    finally:
        if repository is not None:
            repository.close()
        results.close()
        results.join_thread()


class WorkerPool:
    """N spawned parser processes fed through queues.

    Use as a context manager; :meth:`run` yields results in task order.
    """

    def __init__(self, workers: int, config: WorkerConfig, in_flight: int | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._tasks = ctx.Queue()
        self._results = ctx.Queue()
        self._limit = in_flight or workers * 3
        self._procs = [
            ctx.Process(
                target=_worker_main,
                args=(config, self._tasks, self._results),
                name=f"cmio-import-{i}",
                daemon=True,
            )
            for i in range(workers)
        ]
        for proc in self._procs:
            proc.start()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(abort=exc[0] is not None)

    def _receive(self) -> ChunkResult:
        while True:
            try:
                result: ChunkResult = self._results.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(
                        f"import worker {dead[0].name} died (exit code {dead[0].exitcode})"
                    ) from None
                continue
            if result.error is not None:
                raise RuntimeError(f"import worker failed:\n{result.error}")
            return result

    def run(self, tasks: Iterator[Task], flush: Callable[[], None]) -> Iterator[ChunkResult]:
        """Parse ``tasks`` in the workers, yielding results in ``seq`` order.

        When the tier changes, every earlier result is yielded and ``flush`` is
        called (the writer commits) before the first task of the new tier is sent,
        so its conditional references can resolve against the store.
        """
        sent = 0
        next_seq = 0
        held: dict[int, ChunkResult] = {}
        pending: Task | None = None
        tier: int | None = None
        iterator = iter(tasks)
        exhausted = False
        while True:
            while not exhausted and sent - next_seq < self._limit:
                if pending is None:
                    pending = next(iterator, None)
                    if pending is None:
                        exhausted = True
                        break
                if tier is not None and pending.tier != tier:
                    if next_seq < sent:
                        break
                    flush()
                tier = pending.tier
                self._tasks.put(pending)
                pending = None
                sent += 1
            if next_seq == sent:
                if exhausted:
                    return
                continue
            result = self._receive()
            held[result.seq] = result
            while next_seq in held:
                yield held.pop(next_seq)
                next_seq += 1

    def close(self, abort: bool = False) -> None:
        """Stop the workers (``abort`` terminates them) and release the queues."""
        if abort:
            for proc in self._procs:
                if proc.is_alive():
                    proc.terminate()
        else:
            for _ in self._procs:
                self._tasks.put(None)
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        with contextlib.suppress(Exception):
            while True:
                self._results.get_nowait()
        for q in (self._tasks, self._results):
            if abort:
                q.cancel_join_thread()
            q.close()
            q.join_thread()
