"""The framework-free FHIR router: ``handle(FhirRequest) -> FhirResponse``.

It maps the RESTful API (https://hl7.org/fhir/R4/http.html) onto one module
per interaction and turns every error into an OperationOutcome here, in one
place. It knows nothing of HTTP servers or SQL.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cmio.api import authorize
from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.operations import Operation, default_operations
from cmio.api.ops import (
    bundle,
    capabilities,
    create,
    delete,
    everything,
    export,
    history,
    patch,
    read,
    search,
    update,
    validate,
)
from cmio.api.ops.reindex import sync_search_parameters
from cmio.api.render import json_response
from cmio.security.policy import Policy
from cmio.store.base import (
    ConflictError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    StorageFullError,
    StoreError,
    VersionConflictError,
)

if TYPE_CHECKING:
    from cmio.api.audit import PendingRecord

__all__ = ["FhirRouter"]

_LOG = logging.getLogger("cmio.api")
_JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
# Bulk Data clients ask for NDJSON when downloading $export files.
_ACCEPTED = _JSON_FORMATS | {"application/fhir+ndjson", "application/ndjson", "ndjson"}
_STORE_ERRORS: tuple[tuple[type[StoreError], int, str], ...] = (
    (GoneError, 410, "deleted"),
    (NotFoundError, 404, "not-found"),
    (VersionConflictError, 412, "conflict"),
    (ConflictError, 409, "conflict"),
    (InvalidRequestError, 400, "invalid"),
    (StorageFullError, 507, "transient"),
    (StoreError, 500, "exception"),
)


class FhirRouter:
    """Routes FHIR RESTful interactions to their implementations."""

    def __init__(self, env: Env, operations: dict[str, Operation] | None = None) -> None:
        self.env = env
        self.operations = default_operations() if operations is None else operations

    def handle(self, request: FhirRequest) -> FhirResponse:
        """Answer one request; never raises. With audit on, returns once it is recorded."""
        response, pending = self.respond(request)
        return response if pending is None else pending.result()

    def respond(self, request: FhirRequest) -> tuple[FhirResponse, PendingRecord | None]:
        """Answer one request; with audit on (``env.auditor``), also the wait for its audit
        record (None: nothing to wait for): send ``pending.result()`` or ``await
        pending.wait()`` instead of the response.

        This is the one place every interaction is audited (https://profiles.ihe.net/ITI/BALP/),
        except the successful answers of operations marked ``audited=False`` (terminology:
        no patient data).
        """
        auditor = self.env.auditor
        if auditor is None:
            return self._answer(request), None
        if self._unaudited(request):  # no patient data (terminology): only failures recorded
            response = self._answer(request)
            if response.status < 400:
                return response, None
            with auditor.interaction(request) as seen:
                pass
            return auditor.finish(seen, response)
        with auditor.interaction(request) as seen:
            response = self._answer(request)
        return auditor.finish(seen, response)

    def respond_read(
        self, request: FhirRequest, rtype: str, rid: str
    ) -> tuple[FhirResponse, PendingRecord | None]:
        """:meth:`respond` for ``GET [type]/[id]`` without a query, a grant or a body (the
        caller checked the path: ``rid`` is neither an operation, ``_history`` nor
        ``_search``): the same answer and audit record, without the general routing."""
        auditor = self.env.auditor
        if auditor is None:
            return self._answer(request, (rtype, rid)), None
        with auditor.interaction(request) as seen:
            response = self._answer(request, (rtype, rid))
        return auditor.finish(seen, response)

    def _answer(self, request: FhirRequest, read_of: tuple[str, str] | None = None) -> FhirResponse:
        try:
            if read_of is not None:  # respond_read: a plain read
                _negotiate(request)
                sync_search_parameters(self.env)
                response = read.read(self.env, request, read_of[0], read_of[1], None)
            else:
                if not self._own_formats(request):
                    _negotiate(request)
                response = self._route(request)
        except FhirError as exc:
            response = json_response(request, exc.status, exc.outcome(), exc.headers)
        except StoreError as exc:
            status, code = next((s, c) for t, s, c in _STORE_ERRORS if isinstance(exc, t))
            response = json_response(request, status, FhirError(status, code, str(exc)).outcome())
        except Exception:
            _LOG.exception("internal error handling %s %s", request.method, request.path)
            error = FhirError(
                500, "exception", "Internal server error; the request was not applied"
            )
            response = json_response(request, 500, error.outcome())
        response.headers.append(("x-request-id", request.context.correlation_id))
        return response

    def _unaudited(self, request: FhirRequest) -> bool:
        """Whether the request invokes an operation whose successful answers are not audited."""
        last = request.path.rstrip("/").rpartition("/")[2]
        if not last.startswith("$"):
            return False
        operation = self.operations.get(last[1:])
        return operation is not None and not operation.audited

    def _own_formats(self, request: FhirRequest) -> bool:
        """Whether the request invokes an operation that negotiates its own formats."""
        last = request.path.rstrip("/").rpartition("/")[2]
        if not last.startswith("$"):
            return False
        operation = self.operations.get(last[1:])
        return operation is not None and operation.own_formats

    def _route(self, request: FhirRequest) -> FhirResponse:
        env, method = self.env, request.method
        sync_search_parameters(env)  # custom SearchParameters another process reindexed
        policy = authorize.policy_for(env, request)  # None: in-process caller, unrestricted
        if "$export" in request.path:
            authorize.check_export(env, policy, request)
            exported = export.route(env, request)  # $export, $export-poll-status, $export-file
            if exported is not None:
                return exported
        parts = request.path.strip("/").split("/") if request.path.strip("/") else []
        n = len(parts)
        if n and n <= 3 and parts[-1].startswith("$"):
            operation = self.operations.get(parts[-1][1:])
            if operation is not None:
                return _invoke(operation, env, request, parts, policy)
        if n == 0:
            if method == "POST":
                return bundle.bundle(env, request, self.handle, policy)
            if method == "GET" and request.query:
                return search.search(env, request, None, "", policy=policy)  # e.g. ?_type=...
            raise FhirError(
                400, "not-supported", "GET on the base needs search parameters; try /metadata"
            )
        head = parts[0]
        if n == 1:
            if head == "metadata" and method == "GET":
                return capabilities.metadata(env, request, self.operations)
            if head == "openapi.json" and method == "GET":  # OpenAPI 3 of this API
                import orjson

                from cmio.api.openapi import openapi_document

                statement = capabilities.capability_statement(
                    env, request.base_url, self.operations
                )
                document = openapi_document(statement, env.model, request.base_url)
                body = orjson.dumps(document)
                return FhirResponse(200, body, [("content-type", "application/json")])
            if head == "_history" and method == "GET":
                authorize.require(policy, "history-system", "*")
                return history.history(env, request, None, None, "_history", policy)
            if head == "_search" and method == "POST":
                return search.search(env, request, None, "_search", policy=policy)
            if head.startswith(("$", "_")):
                raise FhirError(404, "not-supported", f"Unknown operation {head!r}")
            if method == "GET":
                create_check(env, head)
                return search.search(env, request, head, head, policy=policy)
            if method == "POST":
                create_check(env, head)
                authorize.check_create(env, policy, request, head)
                return create.create(env, request, head)
            if method in ("PUT", "DELETE", "PATCH"):
                create_check(env, head)
                authorize.require_conditional(policy, _WRITES[method], head)
            if method == "PUT":
                return update.update(env, request, head, None)
            if method == "DELETE":
                return delete.delete(env, request, head, None)
            if method == "PATCH":
                return patch.patch(env, request, head, None)
        elif n == 2:
            rtype, second = parts
            if second == "_search" and method == "POST":
                create_check(env, rtype)
                return search.search(env, request, rtype, rtype, policy=policy)
            if second == "_history" and method == "GET":
                return history.history(env, request, rtype, None, f"{rtype}/_history", policy)
            if second == "$validate" and method == "POST":
                authorize.require_operation(policy, "validate", rtype)
                return validate.validate(env, request, rtype)
            if method == "GET":
                return read.read(env, request, rtype, second, policy)
            if method in ("PUT", "DELETE", "PATCH") and policy is not None:
                create_check(env, rtype)
            if method == "PUT":
                authorize.check_update(env, policy, request, rtype, second)
                return update.update(env, request, rtype, second)
            if method == "DELETE":
                hidden = authorize.check_delete(env, policy, request, rtype, second)
                return hidden or delete.delete(env, request, rtype, second)
            if method == "PATCH":
                authorize.check_patch(env, policy, request, rtype, second)
                return patch.patch(env, request, rtype, second)
        elif n == 3 and parts[2] == "$everything" and parts[0] == "Patient" and method == "GET":
            return everything.everything(env, request, parts[1], policy)
        elif n == 3 and method == "GET" and env.model.is_resource_type(parts[2]):
            create_check(env, parts[0])  # compartment search: [base]/Patient/123/Observation
            path = "/".join(parts)
            compartment = (parts[0], parts[1])
            return search.search(env, request, parts[2], path, compartment, policy)
        elif n == 3 and parts[2] == "_history" and method == "GET":
            return history.history(env, request, parts[0], parts[1], "/".join(parts), policy)
        elif n == 4 and parts[2] == "_history" and method == "GET":
            return read.vread(env, request, parts[0], parts[1], parts[3], policy)
        raise FhirError(
            405 if n <= 2 else 404, "not-supported", f"{method} /{request.path} is not supported"
        )


def _invoke(
    operation: Operation,
    env: Env,
    request: FhirRequest,
    parts: list[str],
    policy: Policy | None = None,
) -> FhirResponse:
    """Check where and how an operation is invoked (and whether the caller may), then run it."""
    n = len(parts)
    allowed = (operation.system, operation.type_level, operation.instance)[n - 1]
    rtype = parts[0] if n >= 2 else None
    if not allowed or (rtype is not None and operation.types and rtype not in operation.types):
        where = "/".join(parts[:-1]) or "the base"
        raise FhirError(404, "not-supported", f"${operation.name} is not defined on {where}")
    if rtype is not None:
        create_check(env, rtype)
    if request.method not in operation.methods:
        raise FhirError(405, "not-supported", f"${operation.name} does not accept {request.method}")
    authorize.require_operation(policy, operation.name, rtype, request)
    return operation.handler(env, request, rtype, parts[1] if n == 3 else None)


_WRITES = {"PUT": "update", "DELETE": "delete", "PATCH": "patch"}


def create_check(env: Env, rtype: str) -> None:
    """404 for an unknown resource type in a type-level URL."""
    if not env.model.is_resource_type(rtype):
        raise FhirError(404, "not-supported", f"Unknown resource type {rtype!r}")


def _negotiate(request: FhirRequest) -> None:
    accept = request.header("accept")
    if not request.query and (accept is None or accept == "*/*" or "json" in accept):
        return
    fmt = request.param("_format")
    if fmt is not None:
        if fmt.split(";")[0].strip().lower() not in _JSON_FORMATS:
            raise FhirError(
                406,
                "not-supported",
                f"_format {fmt!r} is not supported; this server speaks JSON only",
            )
        return
    if not accept:
        return
    kinds = [a.split(";")[0].strip().lower() for a in accept.split(",")]
    if any(
        k in _JSON_FORMATS or k in ("*/*", "application/*") or k.endswith("+json") for k in kinds
    ):
        return
    raise FhirError(
        406,
        "not-supported",
        f"Cannot answer in {accept!r}; this server speaks application/fhir+json",
    )
