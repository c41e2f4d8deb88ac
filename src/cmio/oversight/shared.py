"""Work the oversight areas share, so a period's first computation does each step once.

The quality summary evaluates the built-in measures over the period, its previous
period and each trend window; the cost summary evaluates the same measures (plus the
attribution panel) over the same period; the steering report then asks for the previous
period of every area. Without sharing, each summary opened its own DuckDB engine,
materialized the measure tables again and re-evaluated what another had just evaluated;
the data-quality summary re-read the whole store for every period although only its
trend depends on the period.

A :class:`SharedWork` holds, for one store as it is now:

* one DuckDB measure engine whose tables are materialized once (they do not depend on
  the period, https://hl7.org/fhir/R4/measure.html: the period only enters the
  population criteria);
* each :class:`~cmio.measures.MeasureResult` by (measure, measurement period), so a
  measure evaluated over a window once is never evaluated again over the same window;
* period-independent inputs by name (:meth:`once`): the cost views, the adherence
  tables, the coding counts per month.

It is for a short while only (``ttl``): the web app replaces it when stale, as its result
cache recomputes summaries. All methods are thread-safe (one lock: the engine is one
DuckDB connection).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from cmio.measures import MeasureDefinition, MeasureResult, Period
    from cmio.store.base import Repository
    from cmio.terminology.service import TerminologyService

__all__ = ["SharedWork"]

T = TypeVar("T")


class SharedWork:
    """Measure results and inputs shared by the oversight summaries of one store.

    Args:
        repository: the FHIR store the summaries read (or any source the measure
            engine reads: a Bulk NDJSON/Parquet folder, resources).
        terminology: expands the measures' value sets (None: the shipped expansions).
        ttl: seconds it stays :attr:`fresh`.
    """

    def __init__(
        self,
        repository: Repository | Any,
        terminology: TerminologyService | None = None,
        *,
        ttl: float = 900.0,
    ) -> None:
        self.repository = repository
        self.terminology = terminology
        self.ttl = ttl
        self.created = time.monotonic()
        self._lock = threading.RLock()
        self._engine: Any = None
        self._runner: Any = None
        self._results: dict[tuple[str, str, str, str], MeasureResult] = {}
        self._values: dict[str, Any] = {}
        self.evaluations = 0
        """How many measure evaluations ran (one per measure and window not seen before)."""

    @property
    def fresh(self) -> bool:
        """Whether it is younger than ``ttl`` seconds."""
        return time.monotonic() - self.created <= self.ttl

    def _measure_runner(self) -> Any:
        if self._runner is None:
            from cmio.measures.engines import open_engine
            from cmio.oversight.quality import PreparedRunner

            # small tables: one thread plans and runs faster
            self._engine = open_engine("duckdb", threads=1)
            self._runner = PreparedRunner(self._engine, terminology=self.terminology)
        return self._runner

    @staticmethod
    def _key(measure: MeasureDefinition, period: Period) -> tuple[str, str, str, str]:
        # the whole definition (a changed definition with the same id is another measure)
        return (measure.id, repr(measure), period.start.isoformat(), period.end.isoformat())

    def evaluate(
        self, measures: Sequence[MeasureDefinition], period: Period
    ) -> list[MeasureResult]:
        """The measures' results over ``period`` (those not evaluated yet are evaluated
        together, https://hl7.org/fhir/R4/measure-operation-evaluate-measure.html)."""
        with self._lock:
            missing = [m for m in measures if self._key(m, period) not in self._results]
            if missing:
                results = self._measure_runner().evaluate(missing, period, self.repository)
                self.evaluations += len(missing)
                for measure, result in zip(missing, results, strict=True):
                    self._results[self._key(measure, period)] = result
            return [self._results[self._key(m, period)] for m in measures]

    def once(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()`` the first time ``name`` is asked for; the same value afterwards."""
        with self._lock:
            if name not in self._values:
                self._values[name] = compute()
            value: T = self._values[name]
            return value

    def close(self) -> None:
        """Close the measure engine (results already handed out stay valid)."""
        with self._lock:
            if self._engine is not None:
                self._engine.close()
            self._engine = self._runner = None
