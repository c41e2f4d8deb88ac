"""``$viewdefinition-run``: run a SQL on FHIR ViewDefinition and return its rows synchronously.

Per http://sql-on-fhir.org/OperationDefinition/$viewdefinition-run (R4 mode:
system level, ``[base]/$viewdefinition-run``; ViewDefinitions stored on this
server are ``Basic`` resources, see :mod:`cmio.views.materialize`, so the instance
level is ``[base]/Basic/[id]/$viewdefinition-run``). Parameters, from the query
or a ``Parameters`` body: ``viewResource`` (inline ViewDefinition) or
``viewReference`` (``Basic/[id]``, ``ViewDefinition/[id]`` or ``[id]``),
``_format`` (``ndjson`` default, ``json``, ``csv``, ``parquet``), ``header``
(CSV header, default true), ``patient`` (rows of that patient's resources only),
``_since`` (resources changed at or after that instant), ``_limit`` (row cap) and
``resource`` (inline resources instead of the server's data) and ``_deidentify``
(HIPAA Safe Harbor before the view runs; always for an analyst-only caller). Bad input is a
400 OperationOutcome naming the parameter or the ViewDefinition element.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import parse_json_body

__all__ = [
    "FORMATS",
    "belongs",
    "encode_rows",
    "stored_view",
    "view_terminology",
    "viewdefinition_run",
]

FORMATS = {
    "ndjson": "application/x-ndjson",
    "json": "application/json",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
_ALIASES = {
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/json": "json",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
}
_PATIENT_FIELDS = ("subject", "patient", "beneficiary")


def _params(request: FhirRequest) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """Scalar parameters by name (query and body) and inline resources."""
    values: dict[str, list[Any]] = {}
    for key, text in request.query:
        values.setdefault(key, []).append(text)
    resources: list[dict[str, Any]] = []
    if request.method == "POST" and request.body.strip():
        body = parse_json_body(request)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError(400, "invalid", "The body must be a Parameters resource")
        for index, parameter in enumerate(body.get("parameter", [])):
            name = parameter.get("name")
            if name == "resource" and isinstance(parameter.get("resource"), dict):
                resources.append(parameter["resource"])
                continue
            if name == "viewResource" and isinstance(parameter.get("resource"), dict):
                values.setdefault(name, []).append(parameter["resource"])
                continue
            value: Any = next((v for k, v in parameter.items() if k.startswith("value")), None)
            if value is None:
                raise FhirError(
                    400, "invalid", f"Parameters.parameter[{index}] ({name}) has no value"
                )
            if isinstance(value, dict) and "reference" in value:
                value = value["reference"]
            values.setdefault(str(name), []).append(value)
    return values, resources


def _one(values: dict[str, list[Any]], name: str) -> Any:
    found = values.get(name, [])
    if len(found) > 1:
        raise FhirError(400, "invalid", f"Parameter {name} given {len(found)} times")
    return found[0] if found else None


def stored_view(env: Env, reference: str) -> dict[str, Any]:
    """The ViewDefinition JSON stored as ``Basic/[id]`` (404 when absent, 400 when not a view)."""
    from cmio.store.base import GoneError, NotFoundError
    from cmio.views.materialize import view_from_basic

    rid = reference.rsplit("/", 1)[-1]
    try:
        stored = env.repository.read("Basic", rid)
    except (NotFoundError, GoneError) as exc:
        raise FhirError(404, "not-found", f"No stored ViewDefinition {reference}") from exc
    view = view_from_basic(json.loads(stored.data or b"{}"))
    if view is None:
        raise FhirError(400, "invalid", f"Basic/{rid} does not carry a ViewDefinition")
    return view


def belongs(resource: dict[str, Any], patient: str) -> bool:
    """Whether a resource is the patient or points at it (``subject``/``patient``)."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient
    for name in _PATIENT_FIELDS:
        ref = resource.get(name)
        if isinstance(ref, dict) and ref.get("reference") == f"Patient/{patient}":
            return True
    return False


def _server_resources(env: Env, rtype: str, since: str | None) -> Iterator[dict[str, Any]]:
    from cmio.store.base import InvalidRequestError

    try:
        for stored in env.repository.iter_current([rtype], since):
            if stored.data is not None:
                yield json.loads(stored.data)
    except InvalidRequestError as exc:
        raise FhirError(400, "invalid", f"_since: {exc}") from exc


def view_terminology(env: Env) -> Any:
    """The server's terminology service for ``memberOf()`` in views (None when it has none)."""
    if env.terminology is None:
        return None
    from cmio.terminology.providers import ServiceTerminology

    return ServiceTerminology(env.terminology)


def encode_rows(table: pa.Table, fmt: str, header: bool = True) -> bytes:
    """The rows in an output format of the SQL on FHIR operations (``ndjson``, ``json``,
    ``csv``, ``parquet``); decimals as JSON numbers."""
    if fmt == "parquet":
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()
    if fmt == "csv":
        sink = io.BytesIO()
        options = pacsv.WriteOptions(include_header=header)
        flat = table.select([i for i, f in enumerate(table.schema) if not pa.types.is_list(f.type)])
        if flat.num_columns != table.num_columns:
            lists = {
                f.name: [json.dumps(v, default=str) for v in table.column(f.name).to_pylist()]
                for f in table.schema
                if pa.types.is_list(f.type)
            }
            flat = pa.table(
                {
                    f.name: lists[f.name] if f.name in lists else table.column(f.name)
                    for f in table.schema
                }
            )
        pacsv.write_csv(flat, sink, options)
        return sink.getvalue()
    rows = table.to_pylist()
    if fmt == "json":
        return json.dumps(rows, default=_number).encode()
    return b"".join(json.dumps(row, default=_number).encode() + b"\n" for row in rows)


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def viewdefinition_run(
    env: Env, request: FhirRequest, rtype: str | None, rid: str | None
) -> FhirResponse:
    """Run the ViewDefinition and answer its rows in the requested format."""
    from cmio.views import ViewDefinitionError, parse_view, run

    values, inline = _params(request)
    fmt = str(_one(values, "_format") or "ndjson")
    fmt = _ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise FhirError(400, "invalid", f"_format {fmt!r}: use one of {', '.join(FORMATS)}")
    view: Any = _one(values, "viewResource")
    reference = _one(values, "viewReference")
    if rid is not None:
        reference = f"Basic/{rid}"
    if (view is None) == (reference is None):
        raise FhirError(400, "invalid", "Give exactly one of viewResource and viewReference")
    if view is None:
        view = stored_view(env, str(reference))
    header = str(_one(values, "header") if "header" in values else "true").lower() != "false"
    limit = _one(values, "_limit")
    try:
        limit = None if limit is None else int(limit)
    except ValueError as exc:
        raise FhirError(400, "invalid", f"_limit {limit!r} is not an integer") from exc
    if limit is not None and limit < 0:
        raise FhirError(400, "invalid", "_limit must not be negative")
    patient = _one(values, "patient")
    since = _one(values, "_since")
    from cmio.api.ops.export import requested_deidentifier

    asked = _one(values, "_deidentify")
    deid = requested_deidentifier(env, request, None if asked is None else str(asked))
    try:
        parsed = parse_view(view)
        resources: Iterable[dict[str, Any]] = inline or _server_resources(
            env, parsed.resource, None if since is None else str(since)
        )
        if patient is not None:
            pid = str(patient).rsplit("/", 1)[-1]
            resources = [r for r in resources if belongs(r, pid)]
        if deid is not None:  # Safe Harbor before the view sees anything (issue 9, item 4)
            resources = deid.deidentify_all(resources)
        table = run(parsed, list(resources), engine="duckdb", terminology=view_terminology(env))
    except ViewDefinitionError as exc:
        raise FhirError(400, "invalid", exc.detail, expression=exc.element) from exc
    if limit is not None:
        table = table.slice(0, limit)
    return FhirResponse(200, encode_rows(table, fmt, header), [("content-type", FORMATS[fmt])])
