"""``$reindex``: rebuild every resource's search-index rows, resumably.

Custom ``SearchParameter`` resources take effect through a reindex
(https://hl7.org/fhir/R4/searchparameter.html): :meth:`Reindexer.start` reads the
active ones from the store, extends the model with them and switches the indexer
(and its search compiler) to it, so writes from then on index them too; the job
then walks the store in ``(type, id)`` order and replaces each batch's rows in
one transaction together with the job's cursor, so an interrupted job resumes
where it stopped (:meth:`Reindexer.run` continues an unfinished job). The same
walk also indexes data stored before the current index schema. The applied
parameter versions are published in the store's search-parameter registry
(:mod:`cmio.bulk.search_registry`) in the job's first transaction, so every other
process serving the store switches to them within a second, and a server
starting later applies them (:func:`apply_custom_parameters`). When the walk is
done, the resources written since the start are indexed once more, so a write
another process indexed with the previous definitions before it noticed the
change is not left without rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from cmio.bulk.search_registry import SearchRegistry
from cmio.indexing import SearchIndexer
from cmio.indexing.custom import CustomParameterError, parse_search_parameter
from cmio.model import Model
from cmio.model.types import SearchParamDef
from cmio.store._common import format_instant
from cmio.store.base import Repository, SearchQuery, Transaction

__all__ = ["JOB", "ReindexState", "Reindexer", "apply_custom_parameters"]

#: the job's name in the store's ``job_state`` table
JOB = "reindex"


@dataclass
class ReindexState:
    """A reindex job as saved in the store (JSON).

    Attributes:
        status: ``running`` or ``completed``.
        parameters: ids of the SearchParameter resources in effect.
        skipped: SearchParameters not applied, with the reason.
        cursor: the last ``(type, id)`` reindexed (None: not started).
        done: resources reindexed so far.
        total: resources to reindex (when the job started).
        started: ``time.time()`` at the start; finished likewise (0: not yet).
    """

    status: str = "running"
    parameters: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    cursor: list[str] | None = None
    done: int = 0
    total: int = 0
    started: float = 0.0
    finished: float = 0.0

    def dumps(self) -> str:
        """JSON text."""
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def loads(cls, text: str) -> ReindexState:
        """From :meth:`dumps` output."""
        data: dict[str, Any] = orjson.loads(text)
        return cls(**data)


def _custom(
    model: Model, repository: Repository
) -> tuple[list[SearchParamDef], list[tuple[str, int]], list[str]]:
    """The stored SearchParameters: usable definitions, their ``(id, version)``, and the
    reasons the others are skipped."""
    page = repository.search(SearchQuery("SearchParameter", count=100_000, total=False))
    defs, applied, skipped = [], [], []
    for stored in page.resources:
        if stored.data is None:
            continue
        try:
            defs.append(parse_search_parameter(model, orjson.loads(stored.data)))
            applied.append((stored.id, stored.version))
        except CustomParameterError as exc:
            skipped.append(str(exc))
    return defs, applied, skipped


def apply_custom_parameters(repository: Repository, indexer: SearchIndexer) -> list[str]:
    """Switch ``indexer`` to the published SearchParameters (server start).

    Returns:
        The SearchParameter ids in effect.
    """
    registry = SearchRegistry(repository, indexer)
    registry.refresh(force=True)
    return list(registry.parameters)


class Reindexer:
    """Runs the reindex job of one store (see module docstring).

    Args:
        repository: the store.
        indexer: the store's indexer (switched to the extended model on start).
        batch_size: resources per transaction.
        registry: this process's search-parameter registry (one is made when omitted).
        grace: seconds after the start before the final pass over the resources written
            since (None: the registry's ``max_age`` plus one second, by when every other
            process has switched and finished the writes it indexed before).
    """

    def __init__(
        self,
        repository: Repository,
        indexer: SearchIndexer,
        batch_size: int = 500,
        registry: SearchRegistry | None = None,
        grace: float | None = None,
        on_complete: Callable[[Transaction, ReindexState], None] | None = None,
    ) -> None:
        self.repository = repository
        self.on_complete = on_complete
        """Called in the transaction that marks a job completed (its audit record)."""
        self.indexer = indexer
        self.batch_size = batch_size
        self.registry = registry if registry is not None else SearchRegistry(repository, indexer)
        self.grace = self.registry.max_age + 1.0 if grace is None else grace
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def state(self) -> ReindexState | None:
        """The saved state of the last (or current) job."""
        with self.repository.read_transaction() as tx:
            text = tx.job_state(JOB)
        return None if text is None else ReindexState.loads(text)

    def start(self) -> ReindexState:
        """Begin a new job: publish and apply the stored SearchParameters, reset the cursor."""
        defs, applied, skipped = _custom(self.indexer.base_model, self.repository)
        total = self.repository.search(SearchQuery(None, count=0, total=True)).total or 0
        ids = [rid for rid, _ in applied]
        state = ReindexState("running", ids, skipped, None, 0, total, time.time())
        with self.repository.transaction() as tx:
            tx.set_job_state(JOB, state.dumps())
            self.registry.publish(tx, applied, defs)
        return state

    def run(self, progress: Callable[[ReindexState], None] | None = None) -> ReindexState:
        """Run (or resume) the job to its end.

        Args:
            progress: called after each committed batch.
        """
        state = self.state()
        if state is None or state.status != "running":
            state = self.start()
        else:
            self.registry.refresh(force=True)  # the definitions the interrupted job published
        cursor = tuple(state.cursor) if state.cursor else None
        while True:
            with self.repository.transaction() as tx:
                batch = tx.scan(cursor, self.batch_size)  # type: ignore[arg-type]
                if not batch:
                    break
                keys = [(s.type, s.id) for s in batch]
                rows = [self.indexer.keyed_rows(orjson.loads(s.data or b"{}")) for s in batch]
                tx.replace_index(keys, rows)
                cursor = keys[-1]
                state.cursor, state.done = list(cursor), state.done + len(batch)
                tx.set_job_state(JOB, state.dumps())
            if progress is not None:
                progress(state)
        self._catch_up(state.started)
        with self.repository.transaction() as tx:
            state.status, state.finished = "completed", time.time()
            tx.set_job_state(JOB, state.dumps())
            if self.on_complete is not None:
                self.on_complete(tx, state)
        if progress is not None:
            progress(state)
        return state

    def _catch_up(self, started: float) -> None:
        """Index again the resources written since the job started (a second before, for
        clock ties), once ``grace`` seconds have passed: another process may have indexed
        them with the definitions it had before its registry noticed the change."""
        time.sleep(max(0.0, started + self.grace - time.time()))
        since = format_instant(datetime.fromtimestamp(started - 1.0, UTC))
        types = sorted(self.indexer.base_model.resource_types)
        keys = [(s.type, s.id) for s in self.repository.iter_current(types, since)]
        for start in range(0, len(keys), self.batch_size):
            with self.repository.transaction() as tx:
                found = [tx.current(t, i) for t, i in keys[start : start + self.batch_size]]
                live = [s for s in found if s is not None and not s.deleted and s.data]
                rows = [self.indexer.keyed_rows(orjson.loads(s.data or b"{}")) for s in live]
                tx.replace_index([(s.type, s.id) for s in live], rows)

    def start_background(self, resume: bool = False) -> None:
        """Start a new job (or, with ``resume``, continue the saved one) in a background
        thread; one at a time.

        Raises:
            RuntimeError: a job is already running in this process.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("a reindex is already running")
            if not resume:
                self.start()
            self.error = None
            self._thread = threading.Thread(
                target=self._background, name="cmio-reindex", daemon=True
            )
            self._thread.start()

    def start_background_resume(self) -> None:
        """Continue an unfinished job in the background (see :meth:`start_background`)."""
        self.start_background(resume=True)

    def _background(self) -> None:
        try:
            self.run()
        except Exception as exc:  # reported by the status call; the job can be resumed
            self.error = f"{type(exc).__name__}: {exc}"

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the background job (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
