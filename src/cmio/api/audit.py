"""The API's audit trail: one BALP AuditEvent per interaction, never dropped.

The router calls :class:`Auditor` in one place for every request
(:meth:`cmio.api.router.FhirRouter.respond`). A write's record is appended by the
store's before-commit hook inside the write's own transaction, so the record and
the resources commit or roll back together (a transaction Bundle gets one record
per entry plus one for the Bundle). Every other record (reads, searches, history,
operations, failed writes) goes to the group-commit :class:`AuditWriter`, and the
response is held until that record is durable; when it cannot be written the
client gets 503 instead of an unaudited answer. See
https://profiles.ihe.net/ITI/BALP/ and https://hl7.org/fhir/R4/auditevent.html.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import json_response
from cmio.security.audit import AuditFacts, AuditLog, AuditWriter, outcome_code
from cmio.security.audit.events import AuditSource
from cmio.security.audit.index import AuditIndex
from cmio.security.audit.jobs import patient_of
from cmio.security.audit.template import Canonical, EventTemplates
from cmio.security.grant import AccessGrant, SubjectKind
from cmio.store.base import Repository, StoredResource, StoreError, Transaction

__all__ = ["Auditor", "PendingRecord", "classify", "patient_of"]

_LOG = logging.getLogger("cmio.api.audit")
_METHOD_INTERACTION = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_PATIENT_PARAMS = ("patient", "subject", "beneficiary")
_READS = ("read", "vread", "history-instance")


@dataclass(slots=True)
class _Seen:
    """What one request has recorded so far."""

    request: FhirRequest
    facts: AuditFacts
    written: bool = False
    """Its records were appended inside its write transaction."""
    failed: bool = False
    """A record could not be written (the answer becomes 503)."""


def classify(request: FhirRequest) -> AuditFacts:
    """The audit facts a request's URL and context tell (https://hl7.org/fhir/R4/http.html)."""
    parts = [p for p in request.path.strip("/").split("/") if p]
    method, n = request.method, len(parts)
    rtype = rid = operation = patient = query = None
    version: int | None = None
    op_at = next((i for i, p in enumerate(parts) if p.startswith("$")), None)
    if op_at is not None:
        interaction, operation = "operation", parts[op_at][1:]
        if op_at >= 1:
            rtype = parts[0]
        if op_at == 2:
            rid = parts[1]
    elif n == 0:
        interaction = _bundle_kind(request) if method == "POST" else "search-system"
    elif parts[-1] == "_history":
        interaction = ("history-system", "history-type", "history-instance")[min(n, 3) - 1]
        rtype, rid = (parts[0] if n >= 2 else None), (parts[1] if n >= 3 else None)
    elif n == 1 and parts[0] == "metadata":
        interaction = "capabilities"
    elif n == 1 and parts[0] == "_search":
        interaction = "search-system"
    elif parts[-1] == "_search" or (n == 1 and method == "GET"):
        interaction, rtype = "search-type", parts[0]
    elif n == 1:
        interaction, rtype = _METHOD_INTERACTION.get(method, "operation"), parts[0]
    elif n == 2:
        rtype, rid = parts
        interaction = "read" if method == "GET" else _METHOD_INTERACTION.get(method, "operation")
    elif n == 3:
        interaction, rtype = "search-compartment", parts[2]
        if parts[0] == "Patient":
            patient = parts[1]
    else:
        interaction, rtype, rid = "vread", parts[0], parts[1]
        version = int(parts[3]) if parts[3].isdigit() else None
    if (
        interaction.startswith("search")
        or interaction.startswith("history")
        or (interaction in ("update", "patch", "delete") and rid is None)
    ):
        params = list(request.query)
        if method == "POST" and parts and parts[-1] == "_search" and request.body:
            params += parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        query = urlencode(params)
    if rtype == "Patient" and rid is not None:
        patient = rid
    if patient is None:
        patient = _patient_param(request.query if query is None else parse_qsl(query))
    context = request.context
    return AuditFacts(
        interaction,
        grant=context.grant,
        remote_addr=context.remote_addr,
        correlation_id=context.correlation_id,
        server=request.base_url,
        resource_type=rtype,
        resource_id=rid,
        version=version,
        patient=patient,
        query=query,
        operation=operation,
    )


def _bundle_kind(request: FhirRequest) -> str:
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return "batch"
    return (
        "transaction" if isinstance(body, dict) and body.get("type") == "transaction" else "batch"
    )


def _patient_param(params: list[tuple[str, str]]) -> str | None:
    for key, value in params:
        name = key.split(":")[0]
        if name in _PATIENT_PARAMS and value and "," not in value:
            ref = value.rsplit("/_history", 1)[0]
            if name != "patient" and not ref.startswith("Patient/") and "/" in ref:
                continue
            return ref.rsplit("/", 1)[-1]
    return None


class PendingRecord:
    """A response held until its audit record is durable (``503`` if it cannot be)."""

    __slots__ = ("_event", "_request", "_writer", "response")

    def __init__(
        self,
        response: FhirResponse,
        event: Canonical,
        request: FhirRequest,
        writer: AuditWriter,
    ) -> None:
        self.response = response
        self._event, self._request, self._writer = event, request, writer

    def result(self) -> FhirResponse:
        """Write the record (group commit), blocking this thread; then the response."""
        try:
            self._writer.submit(self._event).result()
        except Exception:
            return _unavailable(self._request)
        return self.response

    async def wait(self) -> FhirResponse:
        """Write the record (group commit) without blocking the event loop."""
        try:
            await self._writer.submit_async(self._event, asyncio.get_running_loop())
        except Exception:
            return _unavailable(self._request)
        return self.response


class Auditor:
    """Records every interaction of one router's store (see the module docstring).

    Args:
        repository: the store whose audit table receives the records; its
            ``before_commit`` hook is taken over while the auditor is open.
        max_batch: records per group commit.
    """

    def __init__(self, repository: Repository, max_batch: int = 512) -> None:
        self.repository = repository
        self.log = AuditLog(repository)
        self.writer = AuditWriter(self.log, max_batch)
        self.index = AuditIndex(self.log)
        self.templates = EventTemplates()
        """Serializes the records (the constant part of each caller's once)."""
        self._prefix, self._counter = os.urandom(8).hex(), itertools.count(1)
        self._seen: ContextVar[_Seen | None] = ContextVar(f"cmio_audit_{id(self):x}", default=None)
        self._source: ContextVar[AuditSource | None] = ContextVar(
            f"cmio_audit_source_{id(self):x}", default=None
        )
        repository.before_commit = self._before_commit

    def _id(self) -> str:
        """A fresh AuditEvent id (unique without a system call each)."""
        return f"{self._prefix}{next(self._counter):012x}"

    def queue_depth(self) -> int:
        """Audit records queued for the writer's next group commit (for ``/metrics``)."""
        return self.writer._queue.qsize()

    def close(self) -> None:
        """Flush queued records and detach from the store."""
        self.writer.close()
        if self.repository.before_commit == self._before_commit:
            self.repository.before_commit = None

    @contextlib.contextmanager
    def acting(self, source: AuditSource) -> Iterator[None]:
        """Record the in-process requests made in this block as ``source``'s (the HL7 v2
        engine applying a message: the sender is the requesting agent, the control id an
        entity of every record, https://profiles.ihe.net/ITI/BALP/)."""
        token = self._source.set(source)
        try:
            yield
        finally:
            self._source.reset(token)

    @contextlib.contextmanager
    def interaction(self, request: FhirRequest) -> Iterator[_Seen]:
        """Mark ``request`` as the one being answered on this thread (for the write hook).

        A request reading AuditEvents first brings their searchable copy up to date
        (:class:`AuditIndex`), so a search sees every record written before it.
        """
        facts = classify(request)
        source = self._source.get()
        if source is not None and facts.grant is None:
            facts = facts.evolve(source=source)
        seen = _Seen(request, facts)
        if seen.facts.resource_type == "AuditEvent" and (
            request.method == "GET" or request.path.endswith("_search")
        ):
            try:
                self.index.sync()
            except Exception:
                _LOG.exception("the AuditEvent index could not be brought up to date")
                seen.failed = True
        token = self._seen.set(seen)
        try:
            yield seen
        finally:
            self._seen.reset(token)

    def _before_commit(self, tx: Transaction) -> None:
        """Append the records of what ``tx`` wrote, inside ``tx`` (BALP create/update/delete)."""
        seen = self._seen.get()
        if seen is None or not tx.written:
            return  # not a REST interaction (bulk import, reindex, HL7 engine)
        if any(stored.type == "AuditEvent" for stored in tx.written):
            raise FhirError(  # the trail is written by the server only (BALP)
                405, "not-supported", "AuditEvents are recorded by the server, not written"
            )
        facts, render = _current(seen), self.templates.render
        events = [
            render(
                facts.evolve(
                    interaction=_written_as(stored),
                    resource_type=stored.type,
                    resource_id=stored.id,
                    version=stored.version,
                    patient=_patient_of_stored(tx, stored) or facts.patient,
                    query=None,
                    status=200,
                    id=self._id(),
                )
            )
            for stored in tx.written
        ]
        if facts.interaction == "transaction":
            events.append(render(facts.evolve(status=200, id=self._id())))
        try:
            self.log.append(tx, events)
        except Exception:
            seen.failed = True
            raise
        seen.written = True

    def finish(
        self, seen: _Seen, response: FhirResponse
    ) -> tuple[FhirResponse, PendingRecord | None]:
        """The response to send, and (when its record is still to be written) the wait.

        A successful write was recorded with its transaction; anything else gets its
        record now: written synchronously when this thread is inside an open store
        transaction (the group-commit writer's batch), else queued for group commit.
        """
        request = seen.request
        if seen.failed:
            response = _unavailable(request)
        elif seen.written and response.status < 400:
            return response, None
        if seen.facts.interaction == "capabilities":
            return response, None
        facts = _with_outcome(_current(seen), response, self._id())
        event = self.templates.render(facts)
        if self.repository.in_transaction():
            try:
                self.log.append_now([event])
            except Exception:
                _LOG.exception("audit record could not be written")
                return _unavailable(request), None
            return response, None
        return response, PendingRecord(response, event, request, self.writer)

    def record(self, facts: AuditFacts) -> None:
        """Write the record of ``facts`` (a fresh id) and return once it is durable: the
        calls that do not pass through the FHIR router (``/cds-services``).

        Raises:
            Exception: the record could not be written (the caller refuses to answer).
        """
        event = self.templates.render(facts.evolve(id=self._id()))
        if self.repository.in_transaction():
            self.log.append_now([event])
        else:
            self.writer.submit(event).result()

    def auth_event(
        self,
        *,
        action: str,
        subject: str,
        outcome: str,
        remote_addr: str | None = None,
        client_id: str | None = None,
        **details: Any,
    ) -> None:
        """Record a login, failed login, logout, token issue or revocation (DICOM 110114).

        The authorization server's audit hook (:attr:`cmio.security.oauth.server.AuthServer.audit`);
        returns once the record is durable.

        Raises:
            Exception: the record could not be written (the caller refuses the login).
        """
        kind: SubjectKind = "client" if subject == client_id and action == "token" else "user"
        grant = AccessGrant(subject, kind, frozenset(), client_id=client_id)
        reason = details.get("reason")
        facts = AuditFacts(
            action if action in ("login", "logout", "token", "revoke") else "login",
            outcome="0" if outcome == "success" else "4",
            outcome_desc=str(reason) if reason else (None if outcome == "success" else outcome),
            grant=grant,
            remote_addr=remote_addr,
        )
        self.writer.submit(self.templates.render(facts)).result()


def _current(seen: _Seen) -> AuditFacts:
    """The facts with the request's grant as it is now (authorization may have added a
    break-the-glass reason while answering)."""
    grant = seen.request.context.grant
    return seen.facts if grant is seen.facts.grant else seen.facts.evolve(grant=grant)


def _written_as(stored: StoredResource) -> str:
    """The interaction that wrote ``stored``: an update that made version 1 is a create."""
    interaction = _METHOD_INTERACTION.get(stored.method, "update")
    if interaction in ("update", "patch") and stored.version == 1 and stored.data is not None:
        return "create"
    return interaction


def _patient_of_stored(tx: Transaction, stored: StoredResource) -> str | None:
    if stored.type == "Patient":
        return stored.id
    data = stored.data
    if data is None and stored.version > 1:  # a deletion: the patient of the last version
        with contextlib.suppress(StoreError):
            data = tx.vread(stored.type, stored.id, stored.version - 1).data
    return None if data is None else patient_of(orjson.loads(data))


def _with_outcome(facts: AuditFacts, response: FhirResponse, id: str) -> AuditFacts:
    """``facts`` completed from the response: outcome, why it failed, patient, version."""
    status = response.status
    desc = None
    patient, version = facts.patient, facts.version
    if status < 400 and facts.interaction in ("read", "vread"):
        etag = next((v for k, v in response.headers if k == "etag"), "")
        digits = etag.removeprefix('W/"').rstrip('"')
        version = int(digits) if digits.isdigit() else version
    body: Any = None
    wanted = status >= 400 or (facts.interaction in _READS and patient is None)
    if wanted and response.body[:1] == b"{":
        with contextlib.suppress(orjson.JSONDecodeError):
            body = orjson.loads(response.body)
    if facts.interaction == "history-instance" and isinstance(body, dict):
        entries = body.get("entry") or [{}]
        body = entries[-1].get("resource") if isinstance(entries[-1], dict) else None
    if status >= 400 and isinstance(body, dict):
        issues = body.get("issue") or [{}]
        desc = issues[0].get("diagnostics") if isinstance(issues[0], dict) else None
    elif isinstance(body, dict):
        patient = patient or patient_of(body)
        meta = body.get("meta")
        vid = meta.get("versionId") if isinstance(meta, dict) else None
        if version is None and isinstance(vid, str) and vid.isdigit():
            version = int(vid)
    return facts.evolve(
        outcome=outcome_code(status),
        outcome_desc=desc,
        status=status,
        patient=patient,
        version=version,
        id=id,
    )


def _unavailable(request: FhirRequest) -> FhirResponse:
    error = FhirError(
        503, "transient", "The audit trail is unavailable; the request was not answered"
    )
    headers = [("retry-after", "5"), ("x-request-id", request.context.correlation_id)]
    return json_response(request, 503, error.outcome(), headers)
