"""``$viewdefinition-export``: run ViewDefinitions as an asynchronous Bulk-style job.

Per https://sql-on-fhir.org/ig/latest/OperationDefinition-ViewDefinitionExport.html
(the FHIR asynchronous request pattern, https://hl7.org/fhir/R4/async.html):

* Kick-off: ``POST [base]/$viewdefinition-export`` with ``Prefer: respond-async`` and a
  ``Parameters`` body: one or more ``view`` parameters (parts ``name``,
  ``viewReference`` or ``viewResource``), ``_format`` (``ndjson`` default, ``json``,
  ``csv``, ``parquet``), ``header`` (CSV), ``clientTrackingId``, ``patient`` and
  ``group`` (compartment filters, 0..*), ``_since``. On a stored view
  (``[base]/Basic/[id]/$viewdefinition-export``, GET or POST) that view is exported.
  Every view is validated before the job starts (404 for an unknown reference,
  422 for an invalid ViewDefinition, 400 for bad or unsupported parameters such as
  ``source``). The answer is 202 with ``Content-Location`` and a ``Parameters``
  body (``exportId``, ``status`` ``accepted``, ``location``).
* Status: ``GET [base]/$viewdefinition-export-status?job=[id]``: 202 with a
  ``Parameters`` body (``in-progress``, ``X-Progress``, ``Retry-After``) while the
  job runs; 200 with ``completed`` and one ``output`` per view (``name``,
  ``location``) when done; 202 with ``failed`` and ``error`` when it failed.
  ``DELETE`` on it cancels the job and removes its files (then 404).
* Files: ``GET [base]/$viewdefinition-export-file?job=[id]&file=[name].[format]``.

Jobs run on the server's :class:`~cmio.bulk.jobs.ExportJobs` (the ``$export``
machinery: job state on disk, polling from any server process).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cmio.api.env import Env
from cmio.api.errors import FhirError, OutcomeIssue
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import parse_json_body
from cmio.api.ops.viewdefinition_run import FORMATS, belongs, stored_view, view_terminology
from cmio.api.render import json_response
from cmio.bulk.exporter import ExportCancelledError, ExportFile, ExportProgress
from cmio.bulk.jobs import ExportJob, ExportJobs, ExportRequest, TooManyJobsError

__all__ = ["download", "kickoff", "status_or_cancel"]

_OP = "$viewdefinition-export"
_JOB_RE = re.compile(r"[0-9a-f]{32}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_META = "view-export.json"
_ALIASES = {"application/x-ndjson": "ndjson", "application/ndjson": "ndjson"}
_ALIASES.update({v: k for k, v in FORMATS.items() if k != "ndjson"})
_UNSUPPORTED = ("source",)


def _jobs(env: Env) -> ExportJobs:
    if env.exports is None:
        raise FhirError(501, "not-supported", "Asynchronous exports are not enabled on this server")
    return env.exports


def _value(part: dict[str, Any]) -> Any:
    value = next((v for k, v in part.items() if k.startswith("value")), None)
    if isinstance(value, dict) and "reference" in value:
        return value["reference"]
    return value


def _parameters(request: FhirRequest) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """Scalar parameters by name (query and body) and the ``view`` parameters' parts."""
    values: dict[str, list[Any]] = {}
    for key, text in request.query:
        values.setdefault(key, []).append(text)
    views: list[dict[str, Any]] = []
    if request.method != "POST" or not request.body.strip():
        return values, views
    body = parse_json_body(request)
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError(400, "invalid", "The body must be a Parameters resource")
    for index, parameter in enumerate(body.get("parameter") or []):
        name = str(parameter.get("name"))
        where = f"Parameters.parameter[{index}]"
        if name != "view":
            value = _value(parameter)
            if value is None:
                raise FhirError(400, "invalid", f"{where} ({name}) has no value", expression=where)
            values.setdefault(name, []).append(value)
            continue
        entry: dict[str, Any] = {"where": where}
        for part in parameter.get("part") or []:
            key = part.get("name")
            if key == "viewResource" and isinstance(part.get("resource"), dict):
                entry[key] = part["resource"]
            elif key in ("name", "viewReference") and _value(part) is not None:
                entry[key] = str(_value(part))
            else:
                raise FhirError(
                    400, "invalid", f"{where}: unknown or empty part {key!r}", expression=where
                )
        views.append(entry)
    return values, views


def _one(values: dict[str, list[Any]], name: str) -> Any:
    found = values.get(name, [])
    if len(found) > 1:
        raise FhirError(400, "invalid", f"Parameter {name} given {len(found)} times")
    return found[0] if found else None


def _resolve_views(
    env: Env, views: list[dict[str, Any]], rid: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """(output name, ViewDefinition JSON) per view, validated; names unique and file-safe."""
    from cmio.views import ViewDefinitionError, parse_view

    if rid is not None:
        views = [{"where": f"Basic/{rid}", "viewReference": f"Basic/{rid}"}, *views]
    if not views:
        raise FhirError(400, "invalid", "Give at least one view parameter", expression="view")
    out: list[tuple[str, dict[str, Any]]] = []
    issues: list[OutcomeIssue] = []
    taken: set[str] = set()
    for number, entry in enumerate(views):
        where = entry["where"]
        if ("viewResource" in entry) == ("viewReference" in entry):
            raise FhirError(
                400,
                "invalid",
                f"{where}: give one of viewReference and viewResource",
                expression=where,
            )
        view = entry.get("viewResource") or stored_view(env, entry["viewReference"])
        try:
            parsed = parse_view(view)
        except ViewDefinitionError as exc:
            issues.append(OutcomeIssue("error", "invalid", f"{where}: {exc.detail}", exc.element))
            continue
        name = _UNSAFE.sub("_", entry.get("name") or parsed.name or f"view{number + 1}")
        base, n = name, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        out.append((name, view))
    if issues:
        raise FhirError(422, "invalid", issues[0].diagnostics, issues=issues)
    return out


def _patients(env: Env, values: dict[str, list[Any]]) -> frozenset[str] | None:
    """Patient ids from ``patient`` and ``group`` (404 for ones not on the server)."""
    from cmio.api.ops.export import _group_members
    from cmio.store.base import GoneError, NotFoundError

    patients = [str(v) for v in values.get("patient", [])]
    groups = [str(v) for v in values.get("group", [])]
    if not patients and not groups:
        return None
    ids: set[str] = set()
    for kind, refs in (("Patient", patients), ("Group", groups)):
        for ref in refs:
            rid = ref.rsplit("/", 1)[-1]
            try:
                if kind == "Patient":
                    env.repository.read("Patient", rid)
                    ids.add(rid)
                else:
                    ids.update(_group_members(env, rid))
            except (NotFoundError, GoneError):
                raise FhirError(
                    404, "not-found", f"{kind} {ref!r} not found", expression=kind.lower()
                ) from None
    return frozenset(ids)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _work(
    env: Env,
    views: list[tuple[str, dict[str, Any]]],
    fmt: str,
    header: bool,
    since: str | None,
    patients: frozenset[str] | None,
    meta: dict[str, Any],
    ready: threading.Event,
    deid: Any = None,
) -> Callable[[Path, Callable[[ExportProgress], None], Callable[[], bool]], list[ExportFile]]:
    """The job: each view's rows to ``[name].[fmt]`` in the job folder (``deid``: a
    :class:`~cmio.security.deid.Deidentifier` every resource passes through first)."""

    def resources(rtype: str) -> Iterator[dict[str, Any]]:
        for stored in env.repository.iter_current([rtype], since):
            if stored.data is None:
                continue
            resource = json.loads(stored.data)
            if patients is None or any(belongs(resource, p) for p in patients):
                if deid is None:
                    yield resource
                elif (clean := deid.deidentify(resource)) is not None:
                    yield clean

    def work(
        directory: Path, progress: Callable[[ExportProgress], None], cancelled: Callable[[], bool]
    ) -> list[ExportFile]:
        from cmio.views import DuckDbRunner, arrow_schema, parse_view
        from cmio.views.output import OutputCancelledError, write_rows

        ready.wait(30)  # the kick-off writes the job's metadata first
        runner = DuckDbRunner(env.model, terminology=view_terminology(env))
        files: list[ExportFile] = []
        done = 0
        for name, view_json in views:
            view = parse_view(view_json)
            source: Any = env.repository
            if since is not None or patients is not None or deid is not None:
                source = resources(view.resource)
            path = directory / f"{name}.{fmt}"

            def report(rows: int, name: str = name, before: int = done) -> None:
                progress(ExportProgress(before + rows, name))

            try:
                count = write_rows(
                    runner.batches(view, source),
                    arrow_schema(view),
                    path,
                    fmt,
                    header=header,
                    cancelled=cancelled,
                    progress=report,
                )
            except OutputCancelledError:
                raise ExportCancelledError() from None
            done += count
            files.append(ExportFile(name, path, count))
        meta["exportEndTime"] = _now()
        _write_meta(directory, meta)
        return files

    return work


def _write_meta(directory: Path, meta: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f".{_META}.tmp"
    temp.write_text(json.dumps(meta), encoding="utf-8")
    temp.replace(directory / _META)


def kickoff(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """Validate the views and parameters, start the job: 202 + ``Content-Location``."""
    from cmio.store import parse_date_range
    from cmio.store.base import InvalidRequestError

    jobs = _jobs(env)
    if "respond-async" not in (request.header("prefer") or "").lower():
        raise FhirError(400, "invalid", f"{_OP} requires the header Prefer: respond-async")
    values, views = _parameters(request)
    for name in _UNSUPPORTED:
        if name in values:
            raise FhirError(
                400, "not-supported", f"The server does not support {name!r}", expression=name
            )
    fmt = str(_one(values, "_format") or "ndjson")
    fmt = _ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise FhirError(
            400,
            "invalid",
            f"_format {fmt!r}: use one of {', '.join(FORMATS)}",
            expression="_format",
        )
    header = str(_one(values, "header") or "true").lower() != "false"
    since = _one(values, "_since")
    if since is not None:
        try:
            since = parse_date_range(str(since))[0]
        except InvalidRequestError as exc:
            raise FhirError(400, "invalid", f"_since: {exc}", expression="_since") from None
    resolved = _resolve_views(env, views, rid)
    patients = _patients(env, values)
    from cmio.api.ops.export import requested_deidentifier

    asked = _one(values, "_deidentify")
    deid = requested_deidentifier(env, request, None if asked is None else str(asked))
    tracking = _one(values, "clientTrackingId")
    meta: dict[str, Any] = {"_format": fmt, "exportStartTime": _now()}
    if tracking is not None:
        meta["clientTrackingId"] = str(tracking)
    ready = threading.Event()
    url = f"{request.base_url}/{request.path.strip('/')}"
    try:
        job = jobs.start(
            env.repository,
            env.model,
            ExportRequest(url),
            _work(env, resolved, fmt, header, since, patients, meta, ready, deid),
        )
    except TooManyJobsError as exc:
        raise FhirError(429, "throttled", str(exc), headers=[("retry-after", "10")]) from None
    try:
        _write_meta(job.directory, meta)
    finally:
        ready.set()
    location = _location(request, job.id)
    body = _status_body(job, meta, location, "accepted")
    return json_response(request, 202, body, [("content-location", location)])


def _location(request: FhirRequest, job_id: str) -> str:
    return f"{request.base_url}/$viewdefinition-export-status?job={job_id}"


def _job(env: Env, request: FhirRequest) -> tuple[ExportJob, dict[str, Any]]:
    job_id = request.param("job") or ""
    job = _jobs(env).get(job_id) if _JOB_RE.fullmatch(job_id) else None
    if job is None or _OP not in job.request.request_url:
        raise FhirError(404, "not-found", f"No view export job {job_id[:40]!r}", expression="job")
    try:
        meta = json.loads((job.directory / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    return job, meta


def _status_body(
    job: ExportJob, meta: dict[str, Any], location: str, status: str
) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": "exportId", "valueString": job.id}]
    if "clientTrackingId" in meta:
        params.append({"name": "clientTrackingId", "valueString": meta["clientTrackingId"]})
    params.append({"name": "status", "valueCode": status})
    params.append({"name": "location", "valueUri": location})
    if "_format" in meta:
        params.append({"name": "_format", "valueCode": meta["_format"]})
    if "exportStartTime" in meta:
        params.append({"name": "exportStartTime", "valueInstant": meta["exportStartTime"]})
    if status == "completed" and "exportEndTime" in meta:
        params.append({"name": "exportEndTime", "valueInstant": meta["exportEndTime"]})
        start = datetime.fromisoformat(meta["exportStartTime"])
        end = datetime.fromisoformat(meta["exportEndTime"])
        params.append(
            {"name": "exportDuration", "valueInteger": int((end - start).total_seconds())}
        )
    if status == "failed" and job.error:
        params.append({"name": "error", "valueString": job.error})
    return {"resourceType": "Parameters", "parameter": params}


def status_or_cancel(
    env: Env, request: FhirRequest, rtype: str | None, rid: str | None
) -> FhirResponse:
    """GET: the job's status (202 running or failed, 200 with the outputs); DELETE: cancel."""
    job, meta = _job(env, request)
    if request.method == "DELETE":
        _jobs(env).delete(job.id)
        return FhirResponse(202, b"", [])
    location = _location(request, job.id)
    if job.status == "in-progress":
        body = _status_body(job, meta, location, "in-progress")
        headers = [
            ("x-progress", job.progress_text().replace("resources", "rows")),
            ("retry-after", "1"),
        ]
        return json_response(request, 202, body, headers)
    if job.status == "error":
        return json_response(request, 202, _status_body(job, meta, location, "failed"))
    body = _status_body(job, meta, location, "completed")
    base = f"{request.base_url}/$viewdefinition-export-file?job={job.id}&file="
    for file in job.files:
        part = [
            {"name": "name", "valueString": file.type},
            {"name": "location", "valueUri": base + file.path.name},
        ]
        body["parameter"].append({"name": "output", "part": part})
    return json_response(request, 200, body)


def download(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """One output file, typed by its format."""
    job, _ = _job(env, request)
    name = request.param("file") or ""
    found = job.file(name) if job.status == "completed" else None
    if found is None:
        raise FhirError(
            404, "not-found", f"Export job {job.id} has no file {name[:80]!r}", expression="file"
        )
    fmt = found.path.suffix.lstrip(".")
    headers = [
        ("content-type", FORMATS.get(fmt, "application/octet-stream")),
        ("content-disposition", f'attachment; filename="{found.path.name}"'),
    ]
    return FhirResponse(200, found.path.read_bytes(), headers)
