"""The custom ``SearchParameter`` definitions in effect, shared by every server process.

Custom parameters take effect through ``$reindex``
(https://hl7.org/fhir/R4/searchparameter.html, :mod:`cmio.bulk.reindex`). When a
reindex starts, it *publishes* the exact SearchParameter versions it applies
under a new generation number in the store's ``job_state`` table (row
``search-parameters``), in the same transaction as the job's own state. Every
process serving the store (``cmio serve --workers N``, another host on the same
PostgreSQL database, ``cmio reindex`` in a shell) holds a :class:`SearchRegistry`
whose :meth:`~SearchRegistry.refresh` reads that one row by primary key (at most
once per ``max_age`` seconds, 1 s by default) and, when the generation changed,
switches its indexer and search compiler to the published definitions. The
router refreshes before every request, and writes before they are indexed, so a
new, changed or retired custom parameter is used by all workers within a second
of the reindex starting, without a restart.

Definitions are pinned by version: editing or retiring a SearchParameter changes
nothing until the next ``$reindex`` publishes the new set, in every process at
once (and after a restart too).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from cmio.indexing import SearchIndexer
from cmio.indexing.custom import CustomParameterError, extend_model, parse_search_parameter
from cmio.model.types import SearchParamDef
from cmio.store.base import Repository, StoreError, Transaction

__all__ = ["REGISTRY", "Published", "SearchRegistry"]

#: the registry's row in the store's ``job_state`` table
REGISTRY = "search-parameters"
_LEGACY = "reindex"  # a store reindexed before the registry: the job state's parameter ids
_LOG = logging.getLogger("cmio.search")


@dataclass(frozen=True)
class Published:
    """The registry row: a generation and the SearchParameter versions in effect.

    Attributes:
        generation: bumped by every publication (0: none yet).
        parameters: ``(id, version)`` of each SearchParameter in effect.
    """

    generation: int
    parameters: tuple[tuple[str, int], ...]

    def dumps(self) -> str:
        """JSON text for the ``job_state`` row."""
        rows = [[rid, version] for rid, version in self.parameters]
        return orjson.dumps({"generation": self.generation, "parameters": rows}).decode()

    @classmethod
    def loads(cls, text: str) -> Published:
        """From :meth:`dumps` output."""
        data = orjson.loads(text)
        rows = tuple((str(rid), int(version)) for rid, version in data.get("parameters", []))
        return cls(int(data["generation"]), rows)


def _read(tx: Transaction) -> Published | None:
    """The published row (None: never published; a legacy reindex state is turned into
    generation 0 with the current versions of its parameter ids)."""
    try:
        text = tx.job_state(REGISTRY)
    except NotImplementedError:  # a store without job state (in-memory)
        return None
    if text is not None:
        return Published.loads(text)
    legacy = tx.job_state(_LEGACY)
    if legacy is None:
        return None
    ids = orjson.loads(legacy).get("parameters") or []
    found = [tx.current("SearchParameter", str(rid)) for rid in ids]
    return Published(0, tuple((s.id, s.version) for s in found if s is not None and s.data))


class SearchRegistry:
    """Keeps one process's indexer on the published custom SearchParameters.

    Args:
        repository: the store.
        indexer: the store's indexer (switched with :meth:`SearchIndexer.use_model`).
        max_age: seconds a check of the registry row is trusted (0: read it every time).
        clock: monotonic seconds (tests).
    """

    def __init__(
        self,
        repository: Repository,
        indexer: SearchIndexer,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repository = repository
        self.indexer = indexer
        self.max_age = max_age
        self._clock = clock
        self._checked = -math.inf
        self._lock = threading.Lock()
        #: the generation the indexer uses (None: the standard parameters only)
        self.generation: int | None = None
        #: the SearchParameter ids in effect
        self.parameters: tuple[str, ...] = ()

    def refresh(self, force: bool = False) -> bool:
        """Apply the published definitions if they changed since the last check.

        One primary-key read of the registry row, skipped when the last check is less
        than ``max_age`` seconds old (unless ``force``).

        Returns:
            Whether the indexer was switched.
        """
        now = self._clock()
        if not force and now - self._checked < self.max_age:
            return False
        with self.repository.read_transaction() as tx:
            published = _read(tx)
            self._checked = now
            generation = None if published is None else published.generation
            if generation == self.generation:
                return False
            with self._lock:
                if generation == self.generation:
                    return False
                defs = [] if published is None else self._definitions(tx, published)
                self.indexer.use_model(extend_model(self.indexer.base_model, defs))
                self.generation = generation
                self.parameters = tuple(
                    rid for rid, _ in (published or Published(0, ())).parameters
                )
        return True

    def _definitions(self, tx: Transaction, published: Published) -> list[SearchParamDef]:
        defs: list[SearchParamDef] = []
        for rid, version in published.parameters:
            try:
                stored = tx.vread("SearchParameter", rid, version)
                defs.append(
                    parse_search_parameter(
                        self.indexer.base_model, orjson.loads(stored.data or b"{}")
                    )
                )
            except (StoreError, CustomParameterError) as exc:  # history pruned, model changed
                _LOG.warning("SearchParameter/%s/_history/%s not applied: %s", rid, version, exc)
        return defs

    def publish(
        self, tx: Transaction, parameters: Sequence[tuple[str, int]], defs: Sequence[SearchParamDef]
    ) -> int:
        """Record ``parameters`` as the definitions in effect under a new generation, in
        ``tx`` (the reindex's start), and switch this process's indexer to ``defs`` (their
        parsed definitions).

        Returns:
            The new generation.
        """
        text = tx.job_state(REGISTRY)
        generation = (Published.loads(text).generation if text is not None else 0) + 1
        tx.set_job_state(REGISTRY, Published(generation, tuple(parameters)).dumps())
        with self._lock:
            self.indexer.use_model(extend_model(self.indexer.base_model, defs))
            self.generation = generation
            self.parameters = tuple(rid for rid, _ in parameters)
            self._checked = self._clock()
        return generation
