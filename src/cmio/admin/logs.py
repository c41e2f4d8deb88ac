"""Structured logs: one JSON object per line, with the request id of the request.

:class:`JsonLogging` installs a root handler whose lines carry ``time`` (UTC,
RFC 3339), ``level``, ``logger``, ``message`` and ``request_id`` (plus ``exc_info``
when there is one); its :meth:`~JsonLogging.middleware` gives every HTTP request an
id (the caller's ``X-Request-ID``, else a new one, passed on to the FHIR layer
which echoes it in the response) and logs one ``cmio.access`` line per request at
INFO. See https://www.rfc-editor.org/rfc/rfc3339 and
https://hl7.org/fhir/R4/http.html#custom (``X-Request-Id``).
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

__all__ = ["JsonFormatter", "JsonLogging", "json_app_from_environment"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

_ACCESS = logging.getLogger("cmio.access")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; ``request_id`` comes from ``current``."""

    def __init__(self, current: ContextVar[str | None]) -> None:
        super().__init__()
        self._current = current

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object on one line."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or self._current.get(),
        }
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class JsonLogging:
    """JSON logging for one server process (see the module docstring)."""

    def __init__(self) -> None:
        self.request_id: ContextVar[str | None] = ContextVar(
            f"cmio_request_id_{id(self):x}", default=None
        )

    def install(self, level: str = "warning", stream: TextIO | None = None) -> logging.Handler:
        """Route the root logger (and uvicorn's, which then propagate) to JSON lines."""
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter(self.request_id))
        root = logging.getLogger()
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)
        root.setLevel(level.upper())
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
        return handler

    def middleware(self, app: Asgi) -> Asgi:
        """Wrap an ASGI app: a request id per HTTP request, one access line at INFO."""

        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
            given = next((v for k, v in headers if k == b"x-request-id"), None)
            rid = given.decode("latin-1")[:128] if given else uuid.uuid4().hex
            if given is None:
                scope = dict(scope)
                scope["headers"] = [*headers, (b"x-request-id", rid.encode())]
            token = self.request_id.set(rid)
            status = [0]
            started = time.perf_counter()

            async def send_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                _ACCESS.info(
                    "%s %s %d",
                    scope.get("method"),
                    scope.get("path"),
                    status[0],
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status[0],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
                self.request_id.reset(token)

        return wrapped


def json_app_from_environment() -> Asgi:
    """App factory for ``cmio serve --workers N --log-format json``: each worker process
    logs JSON at ``$CMIO_LOG_LEVEL`` and serves :func:`cmio.api.app.app_from_environment`."""
    import os

    from cmio.api.app import app_from_environment

    logs = JsonLogging()
    logs.install(os.environ.get("CMIO_LOG_LEVEL", "warning"))
    return logs.middleware(app_from_environment())
