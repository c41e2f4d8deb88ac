"""Transport hardening: security headers, CORS allow-list, size and rate limits, no stack traces.

One ASGI middleware in front of every route (FHIR API, web pages, login):

* security headers on every response: ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY``, a
  ``Content-Security-Policy`` (strict for HTML pages, ``default-src 'none'`` for data),
  ``Strict-Transport-Security`` when the connection is TLS, and
  ``Cache-Control: no-store`` on the API and login responses (they carry PHI or tokens)
  (OWASP Secure Headers, https://owasp.org/www-project-secure-headers/);
* CORS for configured origins only: the origin is echoed, never ``*``, preflights are
  answered, other origins get no CORS headers (https://fetch.spec.whatwg.org/#http-cors-protocol);
* request limits: URL length (414) and header size/count (431); bodies are limited by
  the FHIR adapter (413);
* a token bucket per client (bearer token, else IP address): 429 with ``Retry-After``
  and an OperationOutcome (https://hl7.org/fhir/R4/http.html#ops);
* an exception that escapes a route answers 500 with an OperationOutcome naming only a
  correlation id; the traceback goes to the server log, never to the client.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "PRIVATE_PREFIXES",
    "HardeningMiddleware",
    "HardeningPolicy",
    "RateLimiter",
    "secure_headers",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_LOG = logging.getLogger("cmio.api.hardening")
HTML_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
_HTML_CSP, _DATA_CSP = HTML_CSP.encode(), DATA_CSP.encode()
_ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_ALLOW_HEADERS = (
    "authorization, content-type, accept, prefer, if-match, if-none-match, "
    "if-modified-since, if-none-exist, x-request-id"
)
_EXPOSE_HEADERS = (
    "location, content-location, etag, last-modified, x-progress, retry-after, x-request-id"
)
PRIVATE_PREFIXES = ("/fhir", "/auth", "/oauth", "/login", "/token", "/authorize", "/cds-services")


@dataclass(frozen=True, slots=True)
class HardeningPolicy:
    """What the middleware enforces.

    Attributes:
        cors_origins: origins allowed to call the API from a browser (exact match,
            e.g. ``https://app.example.org``); empty: no cross-origin access.
        rate_per_second: tokens added per second to each client's bucket (0: no limit).
        burst: bucket size (requests a client may send at once).
        max_url_bytes: longer request targets (path + query) get 414.
        max_header_bytes: larger header sections get 431.
        max_headers: more header fields get 431.
        max_clients: buckets kept (least recently used dropped first).
    """

    cors_origins: frozenset[str] = frozenset()
    rate_per_second: float = 0.0
    burst: int = 200
    max_url_bytes: int = 8192
    max_header_bytes: int = 32768
    max_headers: int = 100
    max_clients: int = 10_000

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> HardeningPolicy:
        """The product policy: ``CMIO_CORS_ORIGINS`` (comma-separated), ``CMIO_RATE_LIMIT``
        (requests per second per client; 0 disables; default 100 with authentication on,
        0 with ``CMIO_AUTH=off``, i.e. loopback development and benchmarks),
        ``CMIO_RATE_BURST`` (default 200), ``CMIO_MAX_URL_BYTES`` (default 8192).

        Raises:
            ValueError: a value is not a number, or an origin is ``*`` or not a URL origin.
        """
        env = os.environ if environ is None else environ
        origins = frozenset(
            o.strip().rstrip("/") for o in env.get("CMIO_CORS_ORIGINS", "").split(",") if o.strip()
        )
        for origin in origins:
            if origin == "*" or not origin.startswith(("https://", "http://")):
                raise ValueError(
                    f"CMIO_CORS_ORIGINS: {origin!r} is not an origin like https://app.example.org"
                )
        defaults = cls()
        auth_off = env.get("CMIO_AUTH", "on").strip().lower() in ("off", "0", "false", "no")
        return cls(
            cors_origins=origins,
            rate_per_second=float(env.get("CMIO_RATE_LIMIT", "0" if auth_off else "100")),
            burst=int(env.get("CMIO_RATE_BURST", str(defaults.burst))),
            max_url_bytes=int(env.get("CMIO_MAX_URL_BYTES", str(defaults.max_url_bytes))),
        )


class RateLimiter:
    """Token buckets per client key (https://en.wikipedia.org/wiki/Token_bucket)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Refill ``rate`` tokens per second up to ``burst``; keep at most ``max_clients``."""
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token of ``key``'s bucket: 0.0 if allowed, else seconds to wait."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


def _outcome(status: int, code: str, text: str, extra: list[tuple[bytes, bytes]]) -> Message:
    body = orjson.dumps(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}],
        }
    )
    headers = [
        (b"content-type", b"application/fhir+json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    return {"status": status, "headers": headers, "body": body}


class HardeningMiddleware:
    """Wraps an ASGI app with the protections of :class:`HardeningPolicy`."""

    def __init__(self, app: AsgiApp, policy: HardeningPolicy | None = None) -> None:
        """Protect ``app`` (the default policy: headers and limits, no rate limit, no CORS)."""
        self.app = app
        self.policy = policy or HardeningPolicy()
        self.limiter = (
            RateLimiter(self.policy.rate_per_second, self.policy.burst, self.policy.max_clients)
            if self.policy.rate_per_second > 0
            else None
        )
        self._plain = (self._headers({}, None), self._headers({"scheme": "https"}, None))

    def plain_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """The headers every response to a request without ``Origin`` gets (made once)."""
        return self._plain[scope.get("scheme") in ("https", "wss")]

    def plainly_admitted(self, scope: Scope) -> bool:
        """Whether the middleware would pass ``scope`` straight to the app with the
        :meth:`plain_headers`: no ``Origin``, within the URL and header limits, not a
        preflight, and no rate limit configured (so a caller may serve it without the
        middleware's layers and finish its headers with :func:`secure_headers`)."""
        if self.limiter is not None or scope["method"] == "OPTIONS":
            return False
        raw = scope.get("headers", ())
        if len(raw) > self.policy.max_headers:
            return False  # refused below without looking at every header
        size = 0
        for key, value in raw:
            if key.lower() == b"origin":
                return False
            size += len(key) + len(value) + 4
        return self._beyond_limits(scope, size) is None

    def _beyond_limits(self, scope: Scope, header_bytes: int) -> tuple[int, str] | None:
        """The refusal of a request beyond the URL or header limits: ``(414, text)`` for
        a long request target, ``(431, text)`` for a large header section
        (``header_bytes``) or too many fields; None within them (RFC 9110 §15.5.15,
        RFC 6585 §5)."""
        policy = self.policy
        target = len(scope.get("raw_path") or scope["path"].encode()) + len(
            scope.get("query_string", b"")
        )
        if target > policy.max_url_bytes:
            return 414, f"The request URL exceeds {policy.max_url_bytes} bytes"
        if header_bytes > policy.max_header_bytes or len(scope.get("headers", ())) > (
            policy.max_headers
        ):
            return 431, "The request headers are too large"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (non-HTTP scopes pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        size = 0
        for key, value in scope.get("headers", ()):
            headers[key.lower()] = value
            size += len(key) + len(value) + 4
        origin = headers.get(b"origin", b"").decode("latin-1")
        allowed = origin if origin in self.policy.cors_origins else None
        extra = self._headers(scope, allowed)
        refusal = self._beyond_limits(scope, size)
        if refusal is not None:
            await self._reply(send, _outcome(refusal[0], "too-costly", refusal[1], extra))
            return
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await self._preflight(send, allowed, extra)
            return
        if self.limiter is not None:
            wait = self.limiter.take(_client_key(scope, headers))
            if wait > 0:
                retry = [(b"retry-after", str(max(1, math.ceil(wait))).encode())]
                text = "Too many requests from this client; retry later"
                await self._reply(send, _outcome(429, "throttled", text, extra + retry))
                return
        await self._guarded(scope, receive, send, extra)

    def _headers(self, scope: Scope, origin: str | None) -> list[tuple[bytes, bytes]]:
        out = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if scope.get("scheme") in ("https", "wss"):
            out.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        if origin is not None:
            out += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
                (b"access-control-expose-headers", _EXPOSE_HEADERS.encode()),
                (b"vary", b"Origin"),
            ]
        elif self.policy.cors_origins:
            out.append((b"vary", b"Origin"))
        return out

    async def _preflight(
        self, send: Send, origin: str | None, extra: list[tuple[bytes, bytes]]
    ) -> None:
        if origin is None:
            text = "Cross-origin requests from this origin are not allowed"
            await self._reply(send, _outcome(403, "forbidden", text, extra))
            return
        headers = [
            *extra,
            (b"access-control-allow-methods", _ALLOW_METHODS.encode()),
            (b"access-control-allow-headers", _ALLOW_HEADERS.encode()),
            (b"access-control-max-age", b"600"),
            (b"content-length", b"0"),
        ]
        await self._reply(send, {"status": 204, "headers": headers, "body": b""})

    @staticmethod
    async def _reply(send: Send, response: Message) -> None:
        headers = list(response["headers"])
        headers.append((b"content-security-policy", DATA_CSP.encode()))
        headers.append((b"cache-control", b"no-store"))
        await send(
            {"type": "http.response.start", "status": response["status"], "headers": headers}
        )
        await send({"type": "http.response.body", "body": response["body"]})

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, extra: list[tuple[bytes, bytes]]
    ) -> None:
        started = False
        private = scope["path"].startswith(PRIVATE_PREFIXES)

        async def secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = message.get("headers", ())
                message = {**message, "headers": secure_headers(headers, extra, private)}
            await send(message)

        try:
            await self.app(scope, receive, secured)
        except Exception:
            if started:
                self.log_failure(scope)
                raise
            await self.fail(scope, send, extra)

    @staticmethod
    def log_failure(scope: Scope) -> str:
        """Log the exception being handled with a fresh reference (returned)."""
        reference = os.urandom(8).hex()
        _LOG.exception("unhandled error %s on %s %s", reference, scope["method"], scope["path"])
        return reference

    async def fail(self, scope: Scope, send: Send, extra: list[tuple[bytes, bytes]]) -> None:
        """Answer 500 for the exception being handled (nothing sent yet): an
        OperationOutcome naming only a reference, the traceback to the log."""
        reference = self.log_failure(scope)
        text = f"Internal server error (reference {reference}); the request may not be applied"
        await self._reply(send, _outcome(500, "exception", text, extra))


def secure_headers(
    headers: Iterable[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]], private: bool
) -> list[tuple[bytes, bytes]]:
    """A response's headers with the security headers it lacks: ``extra`` (from
    :meth:`HardeningMiddleware.plain_headers` or the CORS answer), a
    ``Content-Security-Policy`` by content type, and ``Cache-Control: no-store`` when
    ``private`` (API and login paths)."""
    out = list(headers)
    present: set[bytes] = set()
    content_type = b""
    for key, value in out:  # one pass: names present, the content type
        name = key.lower()
        present.add(name)
        if name == b"content-type" and not content_type:
            content_type = value
    out += [h for h in extra if h[0] not in present]
    if b"content-security-policy" not in present:
        csp = _HTML_CSP if content_type.startswith(b"text/html") else _DATA_CSP
        out.append((b"content-security-policy", csp))
    if private and b"cache-control" not in present:
        out.append((b"cache-control", b"no-store"))
    return out


def _client_key(scope: Scope, headers: Mapping[bytes, bytes]) -> str:
    """The rate-limit key: a digest of the bearer token, else the client's address."""
    auth = headers.get(b"authorization")
    if auth:
        return "token:" + hashlib.sha256(auth).hexdigest()[:32]
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"
