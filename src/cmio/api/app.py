"""Assemble the server: model, store, validation, router, ASGI app.

Nothing here is a module global: :func:`build_env` and :func:`create_app`
return fresh objects for each server (or test).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cmio.api.asgi import FhirAsgiApp, Receive, Scope, Send
from cmio.api.auth import AuthGate
from cmio.api.env import Env, Settings
from cmio.api.hardening import HardeningMiddleware
from cmio.api.router import FhirRouter
from cmio.api.writer import GroupCommitWriter
from cmio.bulk.jobs import ExportJobs
from cmio.indexing import SearchIndexer
from cmio.model import Model, load_model
from cmio.security.oauth.server import AuthServer
from cmio.store import default_database_url, open_repository
from cmio.terminology.factory import open_terminology
from cmio.terminology.governance import TerminologyGovernance
from cmio.terminology.providers import ServiceTerminology
from cmio.validation import validate_structure

__all__ = ["CmioApp", "WriteValidator", "app_from_environment", "build_env", "create_app"]


class WriteValidator:
    """The checks of every write: structural validation, then the store's own checks.

    Structural validation (https://hl7.org/fhir/R4/validation.html, :func:`validate_structure`
    with ``model``) needs nothing but the resource, so it may be done ahead (the HL7 engine's
    worker process); :meth:`store_checks` are the checks that read the store (terminology
    governance, the artifact lifecycle), which only the writer can run.
    """

    def __init__(
        self, model: Model, checks: Sequence[Callable[[dict[str, Any]], list[Any]]]
    ) -> None:
        self.model = model
        self._checks = tuple(checks)

    def __call__(self, resource: dict[str, Any]) -> list[Any]:
        """Every issue of a write of ``resource``."""
        return list(validate_structure(self.model, resource)) + self.store_checks(resource)

    def store_checks(self, resource: dict[str, Any]) -> list[Any]:
        """The issues of the checks that read the store (all but the structural ones)."""
        found: list[Any] = []
        for check in self._checks:
            found += check(resource)
        return found


def build_env(
    database_url: str, settings: Settings | None = None, model: Model | None = None
) -> Env:
    """Open the store and load the model for one server."""
    model = model or load_model()
    indexer = SearchIndexer(model)
    repository = open_repository(database_url, indexer=indexer)
    from cmio.bulk.search_registry import SearchRegistry

    settings = settings or Settings()
    registry = SearchRegistry(repository, indexer, max_age=settings.search_registry_max_age)
    registry.refresh(force=True)  # the SearchParameters the latest $reindex published
    terminology = open_terminology(repository, settings.terminology_db)
    provider = ServiceTerminology(terminology)
    indexer.search_compiler.terminology = provider  # search :in/:not-in/:above/:below
    governance = TerminologyGovernance(repository, terminology.resources)
    from cmio.governance.guard import LifecycleGuard

    lifecycle = LifecycleGuard(repository)  # governed artifacts change only while drafts

    validator = WriteValidator(model, (governance.check, lifecycle.check))
    if settings.validation not in ("off", "base", "profiles"):
        raise ValueError(f"validation must be off, base or profiles, not {settings.validation!r}")
    env = Env(repository, model, validator, settings, exports=ExportJobs(settings.export_dir))
    env.search_registry = registry  # kept in step with other workers' $reindex
    env.terminology = terminology
    from cmio.rules import WriteRules

    env.rules = WriteRules(repository, model, provider)  # data-quality rules on write
    if settings.audit:  # every interaction recorded, hash-chained (issue 9)
        from cmio.api.audit import Auditor

        env.auditor = Auditor(
            repository, journal=settings.audit_journal, loop_commit=settings.audit_loop_commit
        )
    if settings.validation != "off":
        # Enforced on every write: build it now (about a second), not inside a request.
        from cmio.validation.validator import Validator

        env.profile_validator = Validator(model, terminology=provider)
    return env


class CmioApp:
    """The ASGI entry point: ``/fhir`` goes to the FHIR router, the rest to the web app."""

    def __init__(self, env: Env) -> None:
        self.env = env
        router = FhirRouter(env)
        embedded = env.repository.dialect == "sqlite"
        self.writer = GroupCommitWriter(router) if embedded else None
        self.executor = None if embedded else ThreadPoolExecutor(8, thread_name_prefix="cmio-db")
        from cmio.api.metrics_gauges import server_metrics

        self.metrics = server_metrics(env, router, self.writer, self.executor)
        """Prometheus ``/metrics``: request counts and latencies, queue depths, pool, jobs."""
        self.fhir = FhirAsgiApp(
            router, writer=self.writer, executor=self.executor, metrics=self.metrics.requests
        )
        self.hardened = HardeningMiddleware(self._dispatch, env.settings.hardening)
        """Security headers, CORS allow-list, URL/header and rate limits, no stack traces."""
        self.auth: AuthGate | None = None
        """The bearer check and /auth routes (None: authentication off)."""
        if env.settings.auth is not None:
            self.auth = AuthGate(AuthServer.open(env.settings.auth, env.repository))
            if env.auditor is not None:  # logins, failed logins, tokens: audited too
                self.auth.server.audit = env.auditor.auth_event
        from cmio.admin.probes import probe_routes
        from cmio.api.hl7 import health_routes
        from cmio.web import create_web_app

        extra: list[Any] = [Route("/health", _health(env))]
        # interface health; Prometheus /metrics (the HL7 engine's and this server's)
        extra += health_routes(env.settings.hl7_journal, self.metrics.render)
        extra += probe_routes(env.repository, self.writer)  # liveness, readiness: /healthz ...
        self.web = create_web_app(
            env, router, self.auth.server if self.auth is not None else None, extra
        )
        """The web app: dashboards, chart, workbench and reports (issue 12)."""
        from cmio.api.cds_hooks import CdsHooks

        self.cds = CdsHooks(env, self.auth.server if self.auth is not None else None)
        """CDS Hooks at ``/cds-services`` (its own authentication: CDS clients' JWTs)."""
        self.web.ctx.cds = self.cds  # the chart calls the same services (one care-gap cache)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request behind the hardening middleware (headers, CORS, limits).

        A plain FHIR read with authentication off (``GET /fhir/[type]/[id]``, no query,
        no ``Origin``, within the limits) is answered in one call with the same headers,
        record and metrics (:meth:`FhirAsgiApp.read`), without the middleware layers.
        """
        if (
            self.auth is None
            and scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope.get("query_string")
            and scope["path"].startswith("/fhir/")
            and self.hardened.plainly_admitted(scope)
        ):
            extra = self.hardened.plain_headers(scope)
            try:
                if await self.fhir.read(scope, send, extra):
                    return
            except Exception:
                if scope.get("cmio.started"):
                    raise  # the answer has begun: the server closes the connection
                await self.hardened.fail(scope, send, extra)
                return
        await self.hardened(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch by path prefix."""
        if scope["type"] == "http" and scope.get("path", "").startswith("/cds-services"):
            await self.cds(scope, receive, send)  # checks the bearer itself (CDS clients)
            return
        scrape = self.metrics.scrape_allowed(scope)  # the static CMIO_METRICS_TOKEN
        if self.auth is not None and not scrape and await self.auth.intercept(scope, receive, send):
            return
        if not scrape and self.metrics.refused(scope):  # CMIO_METRICS_ROLE
            await self.metrics.forbid(send)
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/fhir" or path.startswith("/fhir/")):
            await self.fhir(scope, receive, send)
            return
        await self.web(scope, receive, send)

    def close(self) -> None:
        """Stop the writer and close the store."""
        self.web.close()  # background dashboard computations read the store
        if self.writer is not None:
            self.writer.close()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
        if self.env.exports is not None:
            self.env.exports.close()
        if self.env.terminology is not None:
            self.env.terminology.close()
        if self.env.auditor is not None:
            self.env.auditor.close()
        self.env.repository.close()


def _health(env: Env) -> Callable[[Request], Any]:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "store": env.repository.dialect})

    return health


def create_app(database_url: str, settings: Settings | None = None) -> CmioApp:
    """Create the ASGI application for a database URL."""
    return CmioApp(build_env(database_url, settings))


def app_from_environment() -> CmioApp:
    """App factory for multi-process serving: the store comes from ``CMIO_DATABASE_URL``."""
    return create_app(default_database_url(), Settings.from_environment(os.environ))


AppFactory = Callable[[], CmioApp]
