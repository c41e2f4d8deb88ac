"""A thin ASGI adapter for the FHIR router (https://asgi.readthedocs.io/en/latest/specs/www.html).

It reads the body (refusing oversized ones with 413 before buffering them),
builds a :class:`FhirRequest` with a request context, calls the router and
writes the response. Reads run inline on the event loop: a SQLite read by
primary key costs microseconds, far less than a hop through a thread pool.
Writes go through the group-commit writer (SQLite); with a networked
database (PostgreSQL) every request runs on a thread pool instead.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from cmio.api.context import RequestContext
from cmio.api.errors import FhirError
from cmio.api.hardening import secure_headers
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.metrics import RequestMetrics
from cmio.api.render import json_response
from cmio.api.router import FhirRouter
from cmio.api.writer import GroupCommitWriter

__all__ = ["FhirAsgiApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


class FhirAsgiApp:
    """ASGI application serving the FHIR API mounted at ``prefix`` (default ``/fhir``)."""

    def __init__(
        self,
        router: FhirRouter,
        prefix: str = "/fhir",
        writer: GroupCommitWriter | None = None,
        executor: Executor | None = None,
        metrics: RequestMetrics | None = None,
    ) -> None:
        """Serve ``router`` below ``prefix``.

        Args:
            router: the FHIR router.
            prefix: where the FHIR base is mounted.
            writer: group-commit writer for write requests (SQLite).
            executor: when given, every request without a writer runs on it, so
                many requests can wait on a networked database (PostgreSQL) at once;
                otherwise reads run inline on the event loop.
            metrics: counts and times every answered request (Prometheus ``/metrics``).
        """
        self.router = router
        self.prefix = prefix.rstrip("/")
        self.max_body = router.env.settings.max_body_bytes
        self.writer = writer
        self.executor = executor
        self.metrics = metrics
        self._ids = random.Random(os.urandom(16))  # correlation ids: no system call each

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request."""
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        headers = _headers(scope)
        path = scope["path"]
        sub = (
            path[len(self.prefix) :].lstrip("/")
            if path.startswith(self.prefix)
            else path.lstrip("/")
        )
        raw_query = scope.get("query_string", b"")
        query = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True) if raw_query else []
        request = self._request(scope, headers, sub, query)
        try:
            request.body = await self._body(receive, headers)
        except _TooLarge:
            error = FhirError(413, "too-costly", f"Request body exceeds {self.max_body} bytes")
            response = json_response(request, 413, error.outcome(), [("connection", "close")])
            await _send(send, response)
            if self.metrics is not None:
                self.metrics.observe(request.method, sub, 413, time.perf_counter() - started)
            return
        if self.writer is not None and _is_write(request):
            response = await self.writer.submit(request)
        elif self.executor is not None:
            loop = asyncio.get_running_loop()
            response, pending = await loop.run_in_executor(
                self.executor, self.router.respond, request
            )
            if pending is not None:  # its audit record is being written: wait off the pool
                response = await pending.wait()
        else:
            response, pending = self.router.respond(request)
            if pending is not None:  # held until its audit record is durable
                response = await pending.wait()
        await _send(send, response)
        if self.metrics is not None:
            self.metrics.observe(
                request.method, sub, response.status, time.perf_counter() - started
            )

    async def read(self, scope: Scope, send: Send, extra: list[tuple[bytes, bytes]]) -> bool:
        """Serve ``GET {prefix}/[type]/[id]`` without a query, a body or a grant in one
        call (no middleware layers; ``extra``: the hardening headers to add, see
        :func:`~cmio.api.hardening.secure_headers`); False, having sent nothing, when the
        request is not such a read (the caller serves it the general way)."""
        path: str = scope["path"]
        prefix = self.prefix
        if (
            scope["method"] != "GET"
            or scope.get("query_string")
            or scope.get("cmio.grant") is not None
            or not path.startswith(prefix)
        ):
            return False
        rtype, slash, rid = path[len(prefix) + 1 :].partition("/")
        if (
            path[len(prefix) : len(prefix) + 1] != "/"
            or not slash
            or not rtype
            or not rid
            or "/" in rid
            or rid[0] in "$_"
            or rtype[0] in "$_"
        ):
            return False
        started = time.perf_counter()
        headers = _headers(scope)
        if "transfer-encoding" in headers or headers.get("content-length", "0") != "0":
            return False  # a body to read (or refuse with 413): the general way
        request = self._request(scope, headers, path[len(prefix) + 1 :], [])
        if self.executor is not None:
            loop = asyncio.get_running_loop()
            response, pending = await loop.run_in_executor(
                self.executor, self.router.respond_read, request, rtype, rid
            )
        else:
            response, pending = self.router.respond_read(request, rtype, rid)
        if pending is not None:  # held until its audit record is durable
            response = await pending.wait()
        body = response.body
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        raw.append((b"content-length", str(len(body)).encode()))
        status = response.status
        scope["cmio.started"] = True  # from here on, a failure cannot send another answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": secure_headers(raw, extra, True),
            }
        )
        await send({"type": "http.response.body", "body": body})
        if self.metrics is not None:
            self.metrics.observe_read(rtype, status, time.perf_counter() - started)
        return True

    def _request(
        self, scope: Scope, headers: dict[str, str], sub: str, query: list[tuple[str, str]]
    ) -> FhirRequest:
        """The router's request for ``scope`` (its body still to be read), with its context:
        the correlation id (the client's ``X-Request-Id``, else a fresh one), the client's
        address and the grant the authentication gate (:mod:`cmio.api.auth`) set."""
        request_id = headers.get("x-request-id")
        client = scope.get("client")
        context = RequestContext(
            correlation_id=request_id[:128] if request_id else f"{self._ids.getrandbits(96):024x}",
            remote_addr=client[0] if client else None,
        )
        grant = scope.get("cmio.grant")
        if grant is not None:
            context = replace(context, grant=grant, principal=grant.subject, scopes=grant.scopes)
        base_url = _base_url(scope, headers, self.prefix)
        return FhirRequest(scope["method"], sub, query, headers, b"", base_url, context)

    async def _body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (the last of repeated fields)."""
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:
        headers[key.decode("latin-1").lower()] = value.decode("latin-1")
    return headers


def _is_write(request: FhirRequest) -> bool:
    if request.method in ("PUT", "PATCH", "DELETE"):
        return True
    return request.method == "POST" and not request.path.endswith("_search")


def _base_url(scope: Scope, headers: dict[str, str], prefix: str) -> str:
    host = headers.get("host")
    if host is None:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{prefix}"


async def _send(send: Send, response: FhirResponse) -> None:
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    raw_headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": response.body})
