"""Prometheus metrics of the FHIR API: request counts and latency histograms, and gauges.

Exposition format: https://prometheus.io/docs/instrumenting/exposition_formats/ (text 0.0.4).

The hot path is one :meth:`RequestMetrics.observe` per answered request: the
request is classified by method and path (FHIR interaction names,
https://hl7.org/fhir/R4/http.html), then counted in a shard of the calling
thread (a plain dict no other thread writes), so no lock is taken. A scrape
copies every shard and sums them. Gauges (queue depths, the database pool,
job progress) are read only at scrape time by :class:`Gauge` callbacks.

Every series carries the ``pid`` label: with ``cmio serve --workers N`` each
process counts its own requests, and a scrape reaches one of them; sum over
``pid`` in queries (``sum by (interaction) (rate(cmio_http_requests_total[5m]))``).
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

__all__ = ["BUCKETS", "Gauge", "RequestMetrics", "classify", "render_gauges"]

BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds (seconds) of the latency histogram's buckets; ``+Inf`` is implied."""

_INSTANCE = {"GET": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_TYPE_LEVEL = {"GET": "search-type", "POST": "create", "PUT": "update", "PATCH": "patch"}


def classify(
    method: str,
    path: str,
    is_type: Callable[[str], bool],
    operations: Collection[str] = (),
) -> tuple[str, str]:
    """``(resource type, interaction)`` of a request below the FHIR base.

    Unknown resource types and operations are reported as ``-`` and ``operation``,
    so a client cannot grow the number of series by inventing paths.

    Args:
        method: the HTTP method.
        path: the path below the FHIR base (``Patient/1/_history/2``).
        is_type: whether a name is a resource type of the model.
        operations: the names of the server's ``$`` operations (without ``$``).
    """
    stripped = path.strip("/")
    parts = stripped.split("/") if stripped else []
    n = len(parts)
    if n and parts[-1].startswith("$"):
        name = parts[-1][1:]
        rtype = parts[0] if n > 1 and is_type(parts[0]) else "-"
        return rtype, f"${name}" if name in operations else "operation"
    if n == 0:
        return "-", ("batch/transaction" if method == "POST" else "search-system")
    head = parts[0]
    if n == 1:
        if head == "metadata":
            return "-", "capabilities"
        if head == "_history":
            return "-", "history-system"
        if head == "_search":
            return "-", "search-system"
        if not is_type(head):
            return "-", "unknown"
        return head, _TYPE_LEVEL.get(method, "delete")
    rtype = head if is_type(head) else "-"
    if n == 2:
        if parts[1] == "_history":
            return rtype, "history-type"
        if parts[1] == "_search":
            return rtype, "search-type"
        return rtype, _INSTANCE.get(method, "unknown")
    if parts[2] == "_history":
        return rtype, "vread" if n == 4 else "history-instance"
    return rtype, "search-compartment" if is_type(parts[2]) else "unknown"


_Shard = dict[tuple[str, str, int], list[float]]
"""(type, interaction, status) -> [count, sum, bucket counts (not cumulative) ..., +Inf]."""


class RequestMetrics:
    """Counts and latencies of FHIR requests, per thread, summed when scraped.

    Args:
        is_type: whether a path segment names a resource type (bounds the labels).
        operations: the ``$`` operation names the server serves.
    """

    def __init__(self, is_type: Callable[[str], bool], operations: Collection[str] = ()) -> None:
        self.is_type = is_type
        self.operations = frozenset(operations)
        self._local = threading.local()
        self._shards: list[_Shard] = []
        self._lock = threading.Lock()  # taken once per thread, when its shard is made
        self.pid = os.getpid()

    def _shard(self) -> _Shard:
        shard: _Shard | None = getattr(self._local, "shard", None)
        if shard is None:
            shard = {}
            with self._lock:
                self._shards.append(shard)
            self._local.shard = shard
        return shard

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        """Count one answered request of ``seconds`` (no lock on this path)."""
        rtype, interaction = classify(method, path, self.is_type, self.operations)
        self._count((rtype, interaction, status), seconds)

    def observe_read(self, rtype: str, status: int, seconds: float) -> None:
        """:meth:`observe` of ``GET [rtype]/[id]`` (a read; the id neither an operation
        nor ``_history``/``_search``), without classifying its path again."""
        self._count((rtype if self.is_type(rtype) else "-", "read", status), seconds)

    def _count(self, key: tuple[str, str, int], seconds: float) -> None:
        shard = self._shard()
        entry = shard.get(key)
        if entry is None:
            entry = shard[key] = [0.0] * (len(BUCKETS) + 3)
        entry[0] += 1
        entry[1] += seconds
        entry[2 + bisect_left(BUCKETS, seconds)] += 1

    def totals(self) -> dict[tuple[str, str, int], list[float]]:
        """Every shard summed: ``(type, interaction, status) -> [count, sum, buckets...]``."""
        with self._lock:
            shards = list(self._shards)
        out: dict[tuple[str, str, int], list[float]] = {}
        for shard in shards:
            for key, entry in shard.copy().items():  # dict.copy: atomic under the GIL
                into = out.setdefault(key, [0.0] * len(entry))
                for i, value in enumerate(list(entry)):
                    into[i] += value
        return out

    def render(self) -> str:
        """Prometheus text: ``cmio_http_requests_total`` and the latency histogram."""
        totals = self.totals()
        pid = f'pid="{self.pid}"'
        lines = [
            "# HELP cmio_http_requests_total FHIR requests answered, by type, interaction, status.",
            "# TYPE cmio_http_requests_total counter",
        ]
        histograms: dict[tuple[str, str], list[float]] = {}
        for (rtype, interaction, status), entry in sorted(totals.items()):
            labels = f'{pid},type="{rtype}",interaction="{interaction}"'
            lines.append(f'cmio_http_requests_total{{{labels},status="{status}"}} {entry[0]:.0f}')
            merged = histograms.setdefault((rtype, interaction), [0.0] * len(entry))
            for i, value in enumerate(entry):
                merged[i] += value
        lines += [
            "# HELP cmio_http_request_duration_seconds Time to answer a FHIR request.",
            "# TYPE cmio_http_request_duration_seconds histogram",
        ]
        for (rtype, interaction), entry in sorted(histograms.items()):
            labels = f'{pid},type="{rtype}",interaction="{interaction}"'
            cumulative = 0.0
            for bound, count in zip((*BUCKETS, None), entry[2:], strict=True):
                cumulative += count
                le = "+Inf" if bound is None else repr(bound)
                lines.append(
                    f'cmio_http_request_duration_seconds_bucket{{{labels},le="{le}"}} '
                    f"{cumulative:.0f}"
                )
            lines.append(f"cmio_http_request_duration_seconds_sum{{{labels}}} {entry[1]:.6f}")
            lines.append(f"cmio_http_request_duration_seconds_count{{{labels}}} {entry[0]:.0f}")
        return "\n".join(lines) + "\n"


@dataclass(slots=True)
class Gauge:
    """A gauge read at scrape time: ``read()`` returns ``(labels, value)`` samples."""

    name: str
    help: str
    read: Callable[[], Iterable[tuple[dict[str, str], float]]]
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_gauges(gauges: Iterable[Gauge], pid: int) -> str:
    """Prometheus text for ``gauges`` (a failing gauge is reported by ``cmio_gauge_errors``)."""
    lines: list[str] = []
    failed = 0
    for gauge in gauges:
        try:
            samples = list(gauge.read())
        except Exception:  # a gauge must never break the scrape
            failed += 1
            continue
        lines += [f"# HELP {gauge.name} {gauge.help}", f"# TYPE {gauge.name} gauge"]
        for labels, value in samples:
            text = ",".join(
                [f'pid="{pid}"'] + [f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())]
            )
            lines.append(f"{gauge.name}{{{text}}} {value:g}")
    lines += [
        "# HELP cmio_gauge_errors Gauges that could not be read in this scrape.",
        "# TYPE cmio_gauge_errors gauge",
        f'cmio_gauge_errors{{pid="{pid}"}} {failed}',
    ]
    return "\n".join(lines) + "\n"
