"""Liveness and readiness probes: ``GET /healthz`` and ``GET /readyz``.

``/healthz`` answers 200 as long as the process serves HTTP (a restart is due only
when it stops answering). ``/readyz`` answers 200 when the server can do useful
work: the store answers a trivial query within a deadline, its schema is the
version this cmio runs (migrations done) and the group-commit writer thread (the
SQLite store's single writer) is alive; otherwise 503 with the reasons. See
https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Protocol, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cmio.store import Repository

__all__ = ["PROBE_PATHS", "probe_routes", "readiness"]

#: the probe routes (public: no credentials needed)
PROBE_PATHS = ("/healthz", "/readyz")


class _Sql(Protocol):
    def _fetchall(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...


def _schema_version(repository: Repository) -> int | None:
    with repository.read_transaction() as tx:
        rows = cast(_Sql, tx)._fetchall(
            "SELECT version FROM schema_version WHERE component = 'store'", ()
        )
    return None if not rows else int(rows[0][0])


def _supported(dialect: str) -> int:
    if dialect == "sqlite":
        from cmio.store.sqlite import SCHEMA_VERSION as SQLITE_VERSION

        return SQLITE_VERSION
    from cmio.store.postgres import SCHEMA_VERSION as PG_VERSION

    return PG_VERSION


async def readiness(repository: Repository, writer: Any, timeout: float = 2.0) -> list[str]:
    """Why the server of ``repository`` and ``writer`` (a ``GroupCommitWriter`` or None)
    is not ready (empty: ready)."""
    reasons: list[str] = []
    # the writer starts its thread on the first write; once started it must stay alive
    thread: threading.Thread | None = getattr(writer, "_thread", None)
    if thread is not None and not thread.is_alive():
        reasons.append("the group-commit writer thread has stopped")
    try:
        version = await asyncio.wait_for(asyncio.to_thread(_schema_version, repository), timeout)
    except TimeoutError:
        reasons.append(f"the store did not answer within {timeout:g} s")
    except Exception as exc:
        reasons.append(f"the store failed a trivial query: {type(exc).__name__}: {exc}")
    else:
        supported = _supported(repository.dialect)
        if version != supported:
            reasons.append(
                f"store schema version {version}, this cmio needs {supported} (migrations not done)"
            )
    return reasons


def probe_routes(repository: Repository, writer: Any, timeout: float = 2.0) -> list[Route]:
    """The ``/healthz`` and ``/readyz`` routes of a server (see :func:`readiness`)."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"}, headers={"cache-control": "no-store"})

    async def readyz(request: Request) -> Response:
        reasons = await readiness(repository, writer, timeout)
        headers = {"cache-control": "no-store"}
        if reasons:
            return JSONResponse(
                {"status": "not ready", "reasons": reasons}, status_code=503, headers=headers
            )
        return JSONResponse({"status": "ready", "store": repository.dialect}, headers=headers)

    return [Route(PROBE_PATHS[0], healthz), Route(PROBE_PATHS[1], readyz)]
