"""The audit facts of a REST interaction: what its URL tells, then what its answer tells.

:func:`classify` reads the request (https://hl7.org/fhir/R4/http.html) before it is
answered; :func:`with_outcome` completes the facts from the response (outcome, why it
failed, patient and version of what was read). See https://profiles.ihe.net/ITI/BALP/.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from cmio.api.http import FhirRequest, FhirResponse
from cmio.security.audit import AuditFacts, outcome_code
from cmio.security.audit.jobs import patient_of

__all__ = ["METHOD_INTERACTION", "classify", "with_outcome"]

METHOD_INTERACTION = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
"""The interaction of a write by its HTTP method."""
_PATIENT_PARAMS = ("patient", "subject", "beneficiary")
_READS = ("read", "vread", "history-instance")


def classify(request: FhirRequest) -> AuditFacts:
    """The audit facts a request's URL and context tell (https://hl7.org/fhir/R4/http.html)."""
    if request.method == "GET" and not request.query:  # the common read: GET [type]/[id]
        type_, slash, id_ = request.path.strip("/").partition("/")
        if (
            slash
            and type_
            and id_
            and "/" not in id_
            and type_[0] not in "$_"
            and id_[0] not in "$_"
        ):
            patient = id_ if type_ == "Patient" else None
            return _facts(request, "read", resource_type=type_, resource_id=id_, patient=patient)
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
        interaction, rtype = METHOD_INTERACTION.get(method, "operation"), parts[0]
    elif n == 2:
        rtype, rid = parts
        interaction = "read" if method == "GET" else METHOD_INTERACTION.get(method, "operation")
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
    return _facts(
        request,
        interaction,
        resource_type=rtype,
        resource_id=rid,
        version=version,
        patient=patient,
        query=query,
        operation=operation,
    )


def _facts(request: FhirRequest, interaction: str, **found: Any) -> AuditFacts:
    """The facts of ``interaction`` with what every request's context tells."""
    context = request.context
    return AuditFacts(
        interaction,
        grant=context.grant,
        remote_addr=context.remote_addr,
        correlation_id=context.correlation_id,
        server=request.base_url,
        **found,
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


def with_outcome(
    facts: AuditFacts, response: FhirResponse, id: str, *, own: bool = False
) -> AuditFacts:
    """``facts`` completed from the response: outcome, why it failed, patient, version.

    With ``own`` (the caller's private copy, e.g. the facts :func:`classify` made for the
    request being finished) they are completed in place instead of copied.
    """
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
    if not own:
        facts = facts.evolve()
    facts.outcome, facts.outcome_desc, facts.status = outcome_code(status), desc, status
    facts.patient, facts.version, facts.id = patient, version, id
    return facts
