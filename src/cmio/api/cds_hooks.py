"""CDS Hooks 2.0 over HTTP at the server root (https://cds-hooks.hl7.org/2.0/).

* ``GET /cds-services``: discovery, the active services (governed Libraries).
* ``POST /cds-services/{id}``: a hook call; answers ``{"cards": [...], "systemActions": []}``.
  Missing prefetch is fetched from ``fhirServer`` with ``fhirAuthorization``'s bearer
  token, in-process through the FHIR router when the server is this one. Data that cannot
  be obtained is a 412 (spec, "Prefetch"); an unknown service a 404.
* ``POST /cds-services/{id}/feedback``: card outcomes, stored (:mod:`cmio.cds.feedback`).

With authentication on, every call needs ``Authorization: Bearer JWT``: a token of this
server, or a JWT signed by a trusted CDS client (``Settings.cds_clients``: issuer ->
JWKS; ``aud`` the endpoint URL, ``exp``, ``jti``), see "Trusting CDS Clients".
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cmio.api.asgi import Receive, Scope, Send
from cmio.api.cds_clients import TrustedClients, jwt_issuer
from cmio.api.context import RequestContext
from cmio.api.env import Env
from cmio.api.http import FhirRequest
from cmio.security.grant import AccessGrant

__all__ = ["CdsHooks", "RouterFetcher", "is_cds_path"]


def is_cds_path(path: str) -> bool:
    """Whether a request path belongs to the CDS Hooks endpoints."""
    return path == "/cds-services" or path.startswith("/cds-services/")


class RouterFetcher:
    """Prefetch from this server's own store through the FHIR router (authorization kept)."""

    def __init__(self, router: Any, base: str, grant: AccessGrant | None) -> None:
        self.router, self.base, self.grant = router, base, grant

    def get(self, url: str) -> dict[str, Any] | None:
        """GET a relative FHIR URL in-process; 404/410 is None."""
        from cmio.cds import PrefetchError

        path, _, query = url.partition("?")
        context = RequestContext(principal=self.grant.subject if self.grant else None)
        if self.grant is not None:
            context = RequestContext(
                principal=self.grant.subject, scopes=self.grant.scopes, grant=self.grant
            )
        response = self.router.handle(
            FhirRequest(
                "GET",
                path.strip("/"),
                parse_qsl(query, keep_blank_values=True),
                {"accept": "application/fhir+json"},
                base_url=self.base,
                context=context,
            )
        )
        if response.status in (404, 410):
            return None
        if response.status >= 400:
            raise PrefetchError(f"prefetch {url}: HTTP {response.status}")
        body = orjson.loads(response.body)
        return body if isinstance(body, dict) else None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class CdsHooks:
    """The ``/cds-services`` ASGI app of one server."""

    def __init__(self, env: Env, auth: Any = None) -> None:
        from cmio.api.router import FhirRouter

        self.env = env
        self.auth = auth
        """The server's :class:`~cmio.security.oauth.server.AuthServer` (None: auth off)."""
        self.router = FhirRouter(env)
        self.care_gaps_ttl = 300.0
        """Seconds the care gaps of the whole store are reused (a measure run takes seconds)."""
        self._gaps: dict[tuple[tuple[str, ...], str], tuple[float, list[dict[str, Any]]]] = {}
        self._gaps_lock = threading.Lock()
        self.trusted = TrustedClients.from_file(env.settings.cds_clients)
        """Trusted CDS clients (:class:`~cmio.api.cds_clients.TrustedClients`)."""
        self.app = Starlette(
            routes=[
                Route("/cds-services", self.discovery, methods=["GET"]),
                Route("/cds-services/{id}", self.call, methods=["POST"]),
                Route("/cds-services/{id}/feedback", self.feedback, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request."""
        await self.app(scope, receive, send)

    async def _authenticate(self, request: Request) -> tuple[AccessGrant | None, Response | None]:
        """The caller's grant (None: a CDS client or auth off), or a 401 response."""
        if self.auth is None:
            return None, None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, _unauthorized("Authentication required: send a bearer JWT")
        token = token.strip()
        from cmio.security.tokens import TokenError

        try:
            grant: AccessGrant = await asyncio.to_thread(
                self.auth.authenticate, token, self._fhir_base(request)
            )
            return grant, None
        except TokenError:
            pass
        url = str(request.url).split("?")[0]
        trusted = bool(self.trusted) and await asyncio.to_thread(self.trusted.verify, token, url)
        if trusted:
            return None, None
        return None, _unauthorized("The bearer token is not valid for this CDS service")

    @property
    def clients(self) -> dict[str, Any]:
        """Trusted CDS clients: issuer -> JWKS (a JSON object, or its URL fetched on use)."""
        return self.trusted.clients

    @staticmethod
    def _fhir_base(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}/fhir"

    async def discovery(self, request: Request) -> Response:
        """``GET /cds-services``."""
        _, refused = await self._authenticate(request)
        if refused is not None:
            return refused
        services = await asyncio.to_thread(self._services)
        return JSONResponse({"services": [s.discovery() for s in services.values()]})

    def _services(self) -> dict[str, Any]:
        from cmio.cds import active_services

        return active_services(self.env.repository)

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None

    async def call(self, request: Request) -> Response:
        """``POST /cds-services/{id}``: run the service's logic."""
        grant, refused = await self._authenticate(request)
        if refused is not None:
            return refused
        body = await self._body(request)
        client = _issuer(request) if grant is None and self.auth is not None else None
        address = request.client.host if request.client else None
        status, answer = await asyncio.to_thread(
            self.invoke,
            request.path_params["id"],
            body,
            grant,
            self._fhir_base(request),
            client=client,
            remote_addr=address,
        )
        return JSONResponse(answer, status_code=status)

    def invoke(
        self,
        service_id: str,
        body: Any,
        grant: AccessGrant | None,
        base: str,
        *,
        client: str | None = None,
        remote_addr: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Call a service in-process, exactly as ``POST /cds-services/{id}`` would (the web
        chart uses it; https://cds-hooks.hl7.org/2.0/#calling-a-cds-service).

        Args:
            service_id: the service. body: the hook request. base: this server's FHIR base.
            grant: the caller's grant: missing prefetch is read through the FHIR router
                with it (None with authentication on: no store access).
            client: the issuer of a trusted CDS client's JWT (the audit record's agent).
            remote_addr: the caller's network address.

        Returns:
            The HTTP status and the JSON answer (``cards`` and ``systemActions``, or
            ``error``). With audit on, the call is recorded (service, patient, outcome)
            before it is answered; a 503 when the record cannot be written.
        """
        status, answer = self._invoke(service_id, body, grant, base)
        auditor = self.env.auditor
        if auditor is None:
            return status, answer
        from cmio.api.cds_audit import cds_facts

        facts = cds_facts(service_id, body, grant, base, status, answer, client, remote_addr)
        try:
            auditor.record(facts)
        except Exception:
            return 503, {"error": "The audit trail is unavailable; the request was not answered"}
        return status, answer

    def _invoke(
        self, service_id: str, body: Any, grant: AccessGrant | None, base: str
    ) -> tuple[int, dict[str, Any]]:
        service = self._services().get(service_id)
        if service is None:
            return 404, {"error": f"No active CDS service {service_id!r}"}
        problem = _check_request(body, service.hook)
        if problem:
            return 400, {"error": problem}
        return self._run(service, body, grant, base)

    def _fetcher(self, body: dict[str, Any], grant: AccessGrant | None, base: str) -> Any:
        from cmio.cds import HttpFetcher

        server = body.get("fhirServer")
        token = (body.get("fhirAuthorization") or {}).get("access_token")
        if server and server.rstrip("/") != base:
            return HttpFetcher(server, token)
        if self.auth is not None and token:
            from cmio.security.tokens import TokenError

            try:
                grant = self.auth.authenticate(token, base)
            except TokenError:
                return None
        elif self.auth is not None and grant is None:
            return None  # a CDS client without fhirAuthorization: no access to the store
        return RouterFetcher(self.router, base, grant)

    def _run(
        self, service: Any, body: dict[str, Any], grant: AccessGrant | None, base: str
    ) -> tuple[int, dict[str, Any]]:
        from cmio.cds import LOGIC, HookInput, PrefetchError, resolve_prefetch

        logic = LOGIC.get(service.logic)
        if logic is None:
            return 500, {
                "error": f"CDS service {service.id!r} names unknown logic {service.logic!r}"
            }
        try:
            prefetch = resolve_prefetch(service.prefetch, body, self._fetcher(body, grant, base))
        except PrefetchError as exc:
            return 412, {"error": str(exc)}
        hook = HookInput(
            service,
            body,
            prefetch,
            datetime.now(UTC).date(),
            care_gaps=self._care_gaps,
            ingredients=self._ingredients(),
        )
        return 200, {"cards": logic(hook), "systemActions": []}

    def _ingredients(self) -> Any:
        from cmio.cds.ingredients import RXNORM, CodingIngredients, ConceptStoreIngredients

        terminology = self.env.terminology
        store = terminology.resources.concepts if terminology is not None else None
        if terminology is not None and store is not None and store.system(RXNORM) is not None:
            return ConceptStoreIngredients(terminology.resources)
        return CodingIngredients()

    def _care_gaps(self, patient: str, measures: list[str] | Any) -> list[dict[str, Any]]:
        from cmio.measures import Period, builtin_measures, evaluate_measures
        from cmio.measures.caregaps import care_gaps_table

        known = builtin_measures()
        chosen = [known[m] for m in measures if m in known]
        if not chosen:
            return []
        today = datetime.now(UTC).date()
        key = (tuple(m.id for m in chosen), today.isoformat())
        with self._gaps_lock:  # one evaluation of the store per measures, day and TTL
            held = self._gaps.get(key)
            if held is None or time.monotonic() - held[0] > self.care_gaps_ttl:
                period = Period(today.replace(month=1, day=1), today.replace(month=12, day=31))
                results = evaluate_measures(
                    chosen, period, self.env.repository, terminology=self.env.terminology
                )
                held = (time.monotonic(), care_gaps_table(results).to_pylist())
                self._gaps = {key: held}
        return [r for r in held[1] if r["patient_id"] == patient]

    async def feedback(self, request: Request) -> Response:
        """``POST /cds-services/{id}/feedback``: store the card outcomes."""
        from cmio.cds import FeedbackError, parse_feedback, store_feedback

        grant, refused = await self._authenticate(request)
        if refused is not None:
            return refused
        services = await asyncio.to_thread(self._services)
        sid = request.path_params["id"]
        if sid not in services:
            return _error(404, f"No active CDS service {sid!r}")
        try:
            items = parse_feedback(await self._body(request))
        except FeedbackError as exc:
            return _error(400, str(exc))
        audit = None
        if self.env.auditor is not None:  # the records commit with the feedback
            from cmio.api.cds_audit import feedback_recorder

            client = _issuer(request) if grant is None and self.auth is not None else None
            address = request.client.host if request.client else None
            audit = feedback_recorder(sid, grant, self._fhir_base(request), client, address)
        try:
            await asyncio.to_thread(store_feedback, self.env.repository, sid, items, audit)
        except Exception:
            if audit is None:
                raise
            return _error(503, "The audit trail is unavailable; the feedback was not stored")
        return Response(status_code=200)


def _issuer(request: Request) -> str | None:
    """The ``iss`` of the bearer JWT a trusted CDS client sent (already verified)."""
    return jwt_issuer(request.headers.get("authorization", "").partition(" ")[2].strip())


def _unauthorized(message: str) -> JSONResponse:
    return JSONResponse(
        {"error": message}, status_code=401, headers={"www-authenticate": 'Bearer realm="cmio"'}
    )


def _check_request(body: Any, hook: str) -> str | None:
    """What is wrong with a hook request (None: well formed), spec "HTTP Request"."""
    if not isinstance(body, dict):
        return "The body must be a JSON object (a hook request)"
    for name in ("hook", "hookInstance"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} is required"
    if body["hook"] != hook:
        return f"This service answers {hook!r}, not {body['hook']!r}"
    context = body.get("context")
    if not isinstance(context, dict):
        return "context is required"
    required = {"patient-view": ("userId", "patientId"), "order-select": ("userId", "patientId", "selections", "draftOrders"), "order-sign": ("userId", "patientId", "draftOrders")}  # fmt: skip
    for name in required[hook]:
        if name not in context:
            return f"context.{name} is required for {hook}"
    auth = body.get("fhirAuthorization")
    if auth is not None:
        if not isinstance(auth, dict) or auth.get("token_type") != "Bearer":
            return "fhirAuthorization.token_type must be Bearer"
        for name in ("access_token", "scope", "subject"):
            if not isinstance(auth.get(name), str):
                return f"fhirAuthorization.{name} is required"
        if not body.get("fhirServer"):
            return "fhirServer is required with fhirAuthorization"
    server = body.get("fhirServer")
    if server is not None and urlsplit(str(server)).scheme not in ("http", "https"):
        return "fhirServer must be an absolute URL"
    return None
