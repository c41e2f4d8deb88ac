"""The server's ``/metrics``: request metrics, and gauges of queues, pool and jobs.

Each gauge is read when Prometheus scrapes (https://prometheus.io/docs/concepts/metric_types/#gauge),
never on the request path. ``/metrics`` needs a bearer token like every other
path (with ``CMIO_METRICS_ROLE``, a user's token must carry that role); a scraper may
instead send the static token ``CMIO_METRICS_TOKEN`` (``Authorization: Bearer
<token>``), good for ``/metrics`` only.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmio.api.auth import GRANT_KEY
from cmio.api.metrics import Gauge, RequestMetrics, render_gauges

if TYPE_CHECKING:
    from cmio.api.env import Env
    from cmio.api.router import FhirRouter
    from cmio.api.writer import GroupCommitWriter

__all__ = ["ServerMetrics", "server_gauges", "server_metrics"]

Samples = Iterable[tuple[dict[str, str], float]]
Message = MutableMapping[str, Any]


@dataclass(slots=True)
class ServerMetrics:
    """What one server process reports on ``/metrics``.

    Attributes:
        requests: FHIR request counts and latencies (None: ``CMIO_METRICS=off``).
        gauges: read at each scrape.
        token: the static scrape token (``CMIO_METRICS_TOKEN``); None: none.
        role: the role a signed-in user needs (``CMIO_METRICS_ROLE``); None: any.
    """

    requests: RequestMetrics | None
    gauges: list[Gauge] = field(default_factory=list)
    token: str | None = None
    role: str | None = None

    def render(self) -> str:
        """The Prometheus text of the requests and the gauges."""
        head = self.requests.render() if self.requests is not None else ""
        return head + render_gauges(self.gauges, os.getpid())

    def scrape_allowed(self, scope: MutableMapping[str, Any]) -> bool:
        """Whether ``scope`` is ``GET /metrics`` with the static scrape token."""
        if self.token is None or scope.get("path") != "/metrics":
            return False
        expected = f"Bearer {self.token}".encode()
        for key, value in scope.get("headers", ()):
            if key.lower() == b"authorization":
                return hmac.compare_digest(bytes(value).strip(), expected)
        return False

    def refused(self, scope: MutableMapping[str, Any]) -> bool:
        """Whether an authenticated ``/metrics`` request lacks the required role."""
        if self.role is None or scope.get("path") != "/metrics":
            return False
        grant = scope.get(GRANT_KEY)
        if grant is None or not getattr(grant, "authenticated", True):
            return False  # authentication is off (loopback): nothing to check
        return self.role not in getattr(grant, "roles", frozenset())

    async def forbid(self, send: Callable[[Message], Awaitable[None]]) -> None:
        """Answer 403 to a ``/metrics`` request without the role."""
        body = f"/metrics needs the role {self.role!r}\n".encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def server_metrics(
    env: Env, router: FhirRouter, writer: GroupCommitWriter | None, executor: Executor | None
) -> ServerMetrics:
    """The metrics of one server (see :class:`ServerMetrics`), from its settings."""
    settings = env.settings
    requests = (
        RequestMetrics(env.model.is_resource_type, router.operations.keys())
        if settings.metrics
        else None
    )
    gauges = server_gauges(env, writer, executor)
    return ServerMetrics(requests, gauges, settings.metrics_token, settings.metrics_role)


def server_gauges(
    env: Env, writer: GroupCommitWriter | None, executor: Executor | None
) -> list[Gauge]:
    """The gauges of one server process (its store, writers and jobs)."""
    gauges: list[Gauge] = []
    if writer is not None:
        gauges.append(
            Gauge(
                "cmio_writer_queue_depth",
                "Write requests waiting for the group-commit writer (SQLite's single writer).",
                lambda: [({"store": "sqlite"}, float(writer.depth()))],
            )
        )
    auditor = env.auditor
    if auditor is not None:
        gauges.append(
            Gauge(
                "cmio_audit_queue_depth",
                "Audit records waiting for the audit writer's group commit.",
                lambda: [({}, float(auditor.queue_depth()))],
            )
        )
    pool = getattr(env.repository, "_pool", None)  # psycopg_pool.ConnectionPool (PostgreSQL)
    if pool is not None and hasattr(pool, "get_stats"):
        gauges += _pool_gauges(pool)
    work_queue = getattr(executor, "_work_queue", None)  # ThreadPoolExecutor's backlog
    if work_queue is not None:
        gauges.append(
            Gauge(
                "cmio_db_executor_queue_depth",
                "Requests waiting for a database thread (PostgreSQL store).",
                lambda: [({}, float(work_queue.qsize()))],
            )
        )
    if env.exports is not None:
        root = env.exports.root
        gauges += [
            Gauge(
                "cmio_export_jobs",
                "Bulk Data export jobs by status (from the job folders).",
                lambda: _export_counts(root),
            ),
            Gauge(
                "cmio_export_job_resources",
                "Resources written so far by each running export job.",
                lambda: _export_progress(root),
            ),
        ]
    gauges.append(
        Gauge("cmio_reindex_progress", "The $reindex job: done and total resources.", _reindex(env))
    )
    return gauges


def _pool_gauges(pool: Any) -> list[Gauge]:
    def read(key: str) -> Samples:
        return [({"store": "postgres"}, float(pool.get_stats().get(key, 0)))]

    return [
        Gauge("cmio_db_pool_size", "Connections open in the pool.", lambda: read("pool_size")),
        Gauge(
            "cmio_db_pool_available",
            "Idle connections in the pool.",
            lambda: read("pool_available"),
        ),
        Gauge(
            "cmio_db_pool_waiting",
            "Requests waiting for a pool connection.",
            lambda: read("requests_waiting"),
        ),
        Gauge("cmio_db_pool_max", "The pool's maximum size.", lambda: read("pool_max")),
    ]


def _jobs(root: Path) -> list[Any]:
    from cmio.bulk.jobs import ExportJob

    if not root.is_dir():
        return []
    found = (ExportJob.load(d) for d in root.iterdir() if d.is_dir())
    return [job for job in found if job is not None]


def _export_counts(root: Path) -> Samples:
    counts = {"in-progress": 0, "completed": 0, "error": 0}
    for job in _jobs(root):
        counts[job.status] = counts.get(job.status, 0) + 1
    return [({"status": status}, float(n)) for status, n in counts.items()]


def _export_progress(root: Path) -> Samples:
    return [
        ({"job": job.id, "type": job.current_type or ""}, float(job.exported))
        for job in _jobs(root)
        if job.status == "in-progress"
    ]


def _reindex(env: Env) -> Any:
    def read() -> Samples:
        reindexer = env.reindexer
        state = reindexer.state() if reindexer is not None else None
        if state is None:
            return []
        return [({"what": "done"}, float(state.done)), ({"what": "total"}, float(state.total))]

    return read
