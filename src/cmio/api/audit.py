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
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

import orjson

from cmio.api.audit_facts import METHOD_INTERACTION, classify, with_outcome
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import json_response
from cmio.security.audit import AuditFacts, AuditLog, AuditWriter
from cmio.security.audit.events import AuditSource
from cmio.security.audit.index import AuditIndex
from cmio.security.audit.jobs import patient_of
from cmio.security.audit.journal import AuditJournal
from cmio.security.audit.template import Canonical, EventTemplates
from cmio.security.audit.writer import LoopCommitter
from cmio.security.grant import AccessGrant, SubjectKind
from cmio.store.base import Repository, StoredResource, StoreError, Transaction

__all__ = ["Auditor", "PendingRecord", "classify", "patient_of"]

_LOG = logging.getLogger("cmio.api.audit")


@dataclass(slots=True)
class _Seen:
    """What one request has recorded so far."""

    request: FhirRequest
    facts: AuditFacts
    written: bool = False
    """Its records were appended inside its write transaction."""
    failed: bool = False
    """A record could not be written (the answer becomes 503)."""


class _Interaction:
    """The ``with`` block of one request (:meth:`Auditor.interaction`): sets and resets the
    request's :class:`_Seen` in the auditor's context variable (a class, not a generator
    context manager: it is entered on every request)."""

    __slots__ = ("_seen", "_token", "_var")

    def __init__(self, var: ContextVar[_Seen | None], seen: _Seen) -> None:
        self._var, self._seen = var, seen
        self._token: Token[_Seen | None] | None = None

    def __enter__(self) -> _Seen:
        self._token = self._var.set(self._seen)
        return self._seen

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            self._var.reset(self._token)


class PendingRecord:
    """A response held until its audit record is durable (``503`` if it cannot be)."""

    __slots__ = ("_event", "_loop", "_request", "_writer", "response")

    def __init__(
        self,
        response: FhirResponse,
        event: Canonical,
        request: FhirRequest,
        writer: AuditWriter,
        loop: LoopCommitter | None = None,
    ) -> None:
        self.response = response
        self._event, self._request, self._writer, self._loop = event, request, writer, loop

    def result(self) -> FhirResponse:
        """Write the record (group commit), blocking this thread; then the response."""
        try:
            self._writer.submit(self._event).result()
        except Exception:
            return _unavailable(self._request)
        return self.response

    async def wait(self) -> FhirResponse:
        """Write the record (group commit): with a journal, on the loop once per
        iteration; otherwise on the writer thread, without blocking the event loop."""
        try:
            if self._loop is not None:
                await self._loop.wait(self._event)
            else:
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
        journal: make the records of reads durable in an audit journal beside an
            embedded (SQLite) store, moved into the chain behind
            (:class:`AuditJournal`); otherwise each group commits into the chain.
        loop_commit: with the journal, write the records of an event loop's iteration
            together on the loop (:class:`LoopCommitter`); otherwise (the default) through
            the writer thread, so the loop keeps serving while a group is written.
    """

    def __init__(
        self,
        repository: Repository,
        max_batch: int = 512,
        journal: bool = True,
        loop_commit: bool = False,
    ) -> None:
        self.repository = repository
        self.log = AuditLog(repository)
        directory = self.log.journal_dir if journal else None
        self.journal = AuditJournal(self.log, directory) if directory is not None else None
        """The audit journal (None: records commit into the chain directly)."""
        linger = 0.002 if self.journal is None else 0.0
        self.writer = AuditWriter(self.log, max_batch, linger, self.journal)
        self.loop_committer = (
            LoopCommitter(self.journal) if self.journal is not None and loop_commit else None
        )
        """Group commit of the requests answered on an event loop (with a journal)."""
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
        return self.writer.pending()

    def close(self) -> None:
        """Flush queued records and detach from the store."""
        self.writer.close()
        if self.journal is not None:
            self.journal.close()
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

    def interaction(self, request: FhirRequest) -> _Interaction:
        """Mark ``request`` as the one being answered on this thread (for the write hook),
        for a ``with`` block that yields what it records.

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
        return _Interaction(self._seen, seen)

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
        # the request's own facts (made by classify), completed in place: no copy
        facts = with_outcome(_current(seen), response, self._id(), own=True)
        event = self.templates.render(facts)
        if self.repository.in_transaction():
            try:
                self.log.append_now([event])
            except Exception:
                _LOG.exception("audit record could not be written")
                return _unavailable(request), None
            return response, None
        return response, PendingRecord(response, event, request, self.writer, self.loop_committer)

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
    interaction = METHOD_INTERACTION.get(stored.method, "update")
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


def _unavailable(request: FhirRequest) -> FhirResponse:
    error = FhirError(
        503, "transient", "The audit trail is unavailable; the request was not answered"
    )
    headers = [("retry-after", "5"), ("x-request-id", request.context.correlation_id)]
    return json_response(request, 503, error.outcome(), headers)
