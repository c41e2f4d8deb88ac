"""``$reindex`` (system level): rebuild the search index in the background.

``POST [base]/$reindex`` applies the stored ``SearchParameter`` resources and
starts the job (202 Accepted, ``Content-Location`` the status URL); ``GET
[base]/$reindex`` answers its progress as a ``Parameters`` resource. An
interrupted job continues on the next ``POST`` or with ``cmio reindex``. See
:mod:`cmio.bulk.reindex` and https://hl7.org/fhir/R4/searchparameter.html.

:func:`sync_search_parameters` keeps this process on the custom SearchParameters
that the latest reindex (started by any process) published; the router calls it
before every request.
"""

from __future__ import annotations

from typing import Any

from cmio.api.env import Env
from cmio.api.errors import FhirError, OutcomeIssue, operation_outcome
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import json_response

__all__ = ["reindex", "sync_search_parameters"]


def _registry(env: Env) -> Any:
    """The process's search-parameter registry (None: the store has no search indexer)."""
    if env.search_registry is None:
        from cmio.bulk.search_registry import SearchRegistry
        from cmio.indexing import SearchIndexer

        indexer = env.repository.indexer
        if not isinstance(indexer, SearchIndexer):
            return None
        env.search_registry = SearchRegistry(
            env.repository, indexer, max_age=env.settings.search_registry_max_age
        )
    return env.search_registry


def sync_search_parameters(env: Env) -> None:
    """Switch to the custom SearchParameters the latest ``$reindex`` published, if they
    changed (one primary-key read, at most once per ``Settings.search_registry_max_age``)."""
    registry = _registry(env)
    if registry is not None:
        registry.refresh()


def _reindexer(env: Env) -> Any:
    from cmio.bulk.reindex import Reindexer

    if env.reindexer is None:
        registry = _registry(env)
        if registry is None:
            raise FhirError(501, "not-supported", "This store has no search indexer to rebuild")
        audit = None
        if env.auditor is not None:  # one record per completed job (issue 9)
            from cmio.security.audit.jobs import JobAudit

            audit = JobAudit.for_command("reindex").reindexed
        env.reindexer = Reindexer(
            env.repository, registry.indexer, registry=registry, on_complete=audit
        )
    return env.reindexer


def reindex(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """POST starts (or continues) the job; GET reports on it."""
    runner = _reindexer(env)
    status_url = f"{request.base_url}/$reindex"
    if request.method == "POST":
        saved = runner.state()
        try:
            if saved is not None and saved.status == "running" and runner.error is None:
                runner.start_background_resume()
            else:
                runner.start_background()
        except RuntimeError as exc:
            raise FhirError(409, "conflict", str(exc)) from None
        outcome = operation_outcome(
            [OutcomeIssue("information", "informational", "Reindex started")]
        )
        return json_response(request, 202, outcome, [("content-location", status_url)])
    state = runner.state()
    if state is None:
        raise FhirError(404, "not-found", "No reindex has run on this store")
    parameter: list[dict[str, Any]] = [
        {"name": "status", "valueCode": state.status},
        {"name": "done", "valueInteger": state.done},
        {"name": "total", "valueInteger": state.total},
    ]
    parameter += [{"name": "searchParameter", "valueString": p} for p in state.parameters]
    parameter += [{"name": "skipped", "valueString": s} for s in state.skipped]
    if runner.error is not None:
        parameter.append({"name": "error", "valueString": runner.error})
    return json_response(request, 200, {"resourceType": "Parameters", "parameter": parameter})
