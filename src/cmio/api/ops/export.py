"""Bulk Data Access ``$export`` (https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html).

* Kick-off: ``GET [base]/$export``, ``[base]/Patient/$export`` and
  ``[base]/Group/[id]/$export`` with ``Prefer: respond-async`` answer 202 with
  ``Content-Location: [base]/$export-poll-status/[job]``.
* Status: ``GET`` on that URL answers 202 with ``X-Progress`` while the job
  runs, then 200 with the manifest; ``DELETE`` cancels the job and removes its files.
* Files: ``GET [base]/$export-file/[job]/[Type].ndjson`` as ``application/fhir+ndjson``.

The jobs run in the background threads of the ``ExportJobs`` object on the Env.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import orjson

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.bulk.exporter import ExportFile, ExportProgress, PatientScope, export_ndjson
from cmio.bulk.jobs import ExportJob, ExportJobs, ExportRequest, ExportWork, TooManyJobsError
from cmio.store import parse_date_range
from cmio.store.base import InvalidRequestError

if TYPE_CHECKING:
    from cmio.security.deid import Deidentifier

__all__ = ["NDJSON", "cancel", "download", "is_export_path", "kickoff", "route", "status"]

NDJSON = "application/fhir+ndjson"
_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
_UNSUPPORTED = ("_typeFilter", "_elements", "patient", "includeAssociatedData")
_JOB_RE = re.compile(r"[0-9a-f]{32}")
_FILE_RE = re.compile(r"[A-Z][A-Za-z]{0,63}\.ndjson")


def is_export_path(path: str) -> bool:
    """Whether ``path`` (below the FHIR base) is handled by :func:`route`."""
    parts = [p for p in path.split("/") if p]
    return bool(parts) and (
        parts[-1] == "$export" or parts[0] in ("$export-poll-status", "$export-file")
    )


def route(env: Env, request: FhirRequest) -> FhirResponse | None:
    """Answer the request if it is a Bulk Data export URL, else return None."""
    parts = [p for p in request.path.split("/") if p]
    if not parts:
        return None
    head, n, method = parts[0], len(parts), request.method
    kind: str | None = None
    if parts == ["$export"]:
        kind = "system"
    elif n == 2 and parts == ["Patient", "$export"]:
        kind = "patient"
    elif n == 3 and head == "Group" and parts[2] == "$export":
        kind = "group"
    if kind is not None:
        if method != "GET":
            raise FhirError(405, "not-supported", f"{method} is not supported for $export; use GET")
        return kickoff(env, request, kind, parts[1] if kind == "group" else None)
    if head == "$export-poll-status" and n == 2:
        if method == "GET":
            return status(env, request, parts[1])
        if method == "DELETE":
            return cancel(env, request, parts[1])
        raise FhirError(405, "not-supported", f"{method} is not supported on a status URL")
    if head == "$export-file" and n == 3:
        if method != "GET":
            raise FhirError(405, "not-supported", f"{method} is not supported on an export file")
        return download(env, request, parts[1], parts[2])
    return None


def _jobs(env: Env) -> ExportJobs:
    jobs = env.exports
    if jobs is None:
        raise FhirError(501, "not-supported", "Bulk Data export is not enabled on this server")
    return jobs


def _request_url(request: FhirRequest) -> str:
    url = f"{request.base_url}/{request.path.strip('/')}"
    return f"{url}?{urlencode(request.query)}" if request.query else url


def _parse(env: Env, request: FhirRequest) -> tuple[tuple[str, ...] | None, str | None]:
    """Validate the kick-off parameters; returns (types, since)."""
    prefer = (request.header("prefer") or "").lower()
    if "respond-async" not in prefer:
        raise FhirError(400, "invalid", "$export requires the header Prefer: respond-async")
    lenient = "handling=lenient" in prefer
    fmt = request.param("_outputFormat")
    if fmt is not None and fmt.strip().lower() not in _FORMATS:
        raise FhirError(
            400,
            "not-supported",
            f"_outputFormat {fmt!r} is not supported; use application/fhir+ndjson",
            expression="_outputFormat",
        )
    for name in _UNSUPPORTED:
        if request.param(name) is not None and not lenient:
            raise FhirError(
                400, "not-supported", f"{name} is not supported by this server", expression=name
            )
    types: tuple[str, ...] | None = None
    values = [v for k, v in request.query if k == "_type"]
    if values:
        names = [t.strip() for v in values for t in v.split(",") if t.strip()]
        unknown = [t for t in names if not env.model.is_resource_type(t)]
        if unknown:
            raise FhirError(
                400,
                "invalid",
                f"_type names unknown resource type {unknown[0]!r}",
                expression="_type",
            )
        types = tuple(dict.fromkeys(names))
    since = request.param("_since")
    if since is not None:
        try:
            since = parse_date_range(since)[0]
        except InvalidRequestError as exc:
            raise FhirError(400, "invalid", f"_since: {exc}", expression="_since") from None
    return types, since


def _group_members(env: Env, group_id: str) -> frozenset[str]:
    """Patient ids among ``Group.member.entity`` (https://hl7.org/fhir/R4/group.html)."""
    stored = env.repository.read("Group", group_id)
    assert stored.data is not None
    group = orjson.loads(stored.data)
    ids: set[str] = set()
    for member in group.get("member") or ():
        ref = (member.get("entity") or {}).get("reference") if isinstance(member, dict) else None
        if isinstance(ref, str):
            parts = ref.split("/")
            if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
                ids.add(parts[-1])
    return frozenset(ids)


def kickoff(env: Env, request: FhirRequest, level: str, group_id: str | None) -> FhirResponse:
    """Start an export job (system, ``patient`` or ``group`` level); 202 + Content-Location.

    See https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#bulk-data-kick-off-request.
    """
    jobs = _jobs(env)
    types, since = _parse(env, request)
    patients: PatientScope | None = None
    if level == "patient":
        patients = PatientScope()
    elif level == "group":
        assert group_id is not None
        patients = PatientScope(_group_members(env, group_id))
    export = ExportRequest(_request_url(request), types, since, patients)
    try:
        job = jobs.start(env.repository, env.model, export, _deidentified(env, request, export))
    except TooManyJobsError as exc:
        raise FhirError(429, "throttled", str(exc), headers=[("retry-after", "10")]) from None
    location = f"{request.base_url}/$export-poll-status/{job.id}"
    return FhirResponse(202, b"", [("content-location", location)])


def requested_deidentifier(
    env: Env, request: FhirRequest, asked: str | None
) -> Deidentifier | None:
    """The :class:`~cmio.security.deid.Deidentifier` when the caller asked for
    de-identified data (``_deidentify=true``) or is only an analyst (always
    de-identified), None otherwise. The key is ``$CMIO_DEID_KEY[_FILE]``; see
    :mod:`cmio.security.deid` (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)).

    Raises:
        FhirError: 400 for a value other than true/false, 501 when no key is configured.
    """
    asked = (asked or "false").strip().lower()
    if asked not in ("true", "false"):
        raise FhirError(
            400, "invalid", "_deidentify must be true or false", expression="_deidentify"
        )
    grant = request.context.grant
    analyst_only = grant is not None and bool(grant.roles) and grant.roles <= {"analyst"}
    if asked == "false" and not analyst_only:
        return None
    from cmio.security.deid import Deidentifier as Deid

    try:
        return Deid.from_environment(env.model)
    except (LookupError, PermissionError, OSError, ValueError):
        raise FhirError(
            501,
            "not-supported",
            "De-identified data is not configured on this server (no usable $CMIO_DEID_KEY)",
        ) from None


def _deidentified(env: Env, request: FhirRequest, export: ExportRequest) -> ExportWork | None:
    """A de-identifying export (see :func:`requested_deidentifier`), None for the plain one."""
    deid = requested_deidentifier(env, request, request.param("_deidentify"))
    if deid is None:
        return None

    def work(
        directory: Path, progress: Callable[[ExportProgress], None], cancelled: Callable[[], bool]
    ) -> list[ExportFile]:
        return export_ndjson(
            env.repository,
            env.model,
            directory,
            types=export.types,
            since=export.since,
            patients=export.patients,
            progress=progress,
            cancelled=cancelled,
            transform=deid.deidentify_json,
        )

    return work


def _job(env: Env, job_id: str) -> ExportJob:
    job = _jobs(env).get(job_id) if _JOB_RE.fullmatch(job_id) else None
    if job is None:
        raise FhirError(
            404, "not-found", f"No export job {job_id[:40]!r} (unknown, expired or deleted)"
        )
    return job


def status(env: Env, request: FhirRequest, job_id: str) -> FhirResponse:
    """Poll a job: 202 with ``X-Progress`` while running, 200 with the manifest when done.

    See https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#bulk-data-status-request.
    """
    job = _job(env, job_id)
    if job.status == "in-progress":
        return FhirResponse(202, b"", [("x-progress", job.progress_text()), ("retry-after", "1")])
    if job.status == "error":
        raise FhirError(500, "exception", f"Export failed: {job.error}")
    manifest = job.manifest(f"{request.base_url}/$export-file/{job.id}")
    return FhirResponse(200, orjson.dumps(manifest), [("content-type", "application/json")])


def cancel(env: Env, request: FhirRequest, job_id: str) -> FhirResponse:
    """Cancel a job and delete its files: 202 (https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#bulk-data-delete-request)."""
    if not (_JOB_RE.fullmatch(job_id) and _jobs(env).delete(job_id)):
        raise FhirError(404, "not-found", f"No export job {job_id[:40]!r}")
    return FhirResponse(202, b"", [])


def download(env: Env, request: FhirRequest, job_id: str, name: str) -> FhirResponse:
    """Serve one output file as ``application/fhir+ndjson``.

    See https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-request.
    """
    job = _job(env, job_id)
    found = job.file(name) if _FILE_RE.fullmatch(name) and job.status == "completed" else None
    if found is None:
        raise FhirError(404, "not-found", f"Export job {job_id} has no file {name[:80]!r}")
    return FhirResponse(200, found.path.read_bytes(), [("content-type", NDJSON)])
