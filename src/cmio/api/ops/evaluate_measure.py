"""``$evaluate-measure``: a MeasureReport of one measure over the server's data.

https://hl7.org/fhir/R4/measure-operation-evaluate-measure.html. Invoked as
``[base]/Measure/[id]/$evaluate-measure`` (``id`` a Measure stored on this server whose
populations carry SQL criteria, or a shipped measure such as ``CMS122``) or
``[base]/Measure/$evaluate-measure?measure=[canonical url]``. Parameters (query or a
``Parameters`` body): ``periodStart`` and ``periodEnd`` (required dates),
``reportType`` (``subject`` = individual, ``subject-list``, ``population`` = summary;
default ``population``, or ``subject`` when a subject is given) and ``subject``
(``Patient/[id]``). The measure runs on DuckDB over the store's current resources
(:mod:`cmio.measures.runner`), its value sets expanded by the server's terminology
service. Bad input is a 400 OperationOutcome naming the parameter.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import parse_json_body
from cmio.api.render import json_response

__all__ = ["evaluate_measure", "find_measure", "measure_period", "operation_params"]

_REPORT_TYPES = {"subject": "individual", "subject-list": "subject-list", "population": "summary"}


def operation_params(request: FhirRequest) -> dict[str, list[str]]:
    """Scalar parameters by name, from the query and a ``Parameters`` body."""
    values: dict[str, list[str]] = {}
    for key, text in request.query:
        values.setdefault(key, []).append(text)
    if request.method == "POST" and request.body.strip():
        body = parse_json_body(request)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError(400, "invalid", "The body must be a Parameters resource")
        for index, parameter in enumerate(body.get("parameter", [])):
            value = next((v for k, v in parameter.items() if k.startswith("value")), None)
            if value is None:
                raise FhirError(
                    400,
                    "invalid",
                    f"Parameters.parameter[{index}] ({parameter.get('name')}) has no value",
                    expression=f"Parameters.parameter[{index}]",
                )
            values.setdefault(str(parameter.get("name")), []).append(str(value))
    return values


def _one(values: dict[str, list[str]], name: str) -> str | None:
    found = values.get(name) or []
    if len(found) > 1:
        raise FhirError(400, "invalid", f"{name} may be given once", expression=name)
    return found[0] if found else None


def measure_period(values: dict[str, list[str]]) -> Any:
    """The ``periodStart``/``periodEnd`` parameters as a :class:`~cmio.measures.Period`."""
    from cmio.measures import Period

    days = []
    for name in ("periodStart", "periodEnd"):
        text = _one(values, name)
        if not text:
            raise FhirError(400, "required", f"{name} is required", expression=name)
        try:
            days.append(date.fromisoformat(text[:10]))
        except ValueError as exc:
            raise FhirError(
                400, "invalid", f"{name} is not a date: {text!r}", expression=name
            ) from exc
    try:
        return Period(days[0], days[1])
    except ValueError as exc:
        raise FhirError(400, "invalid", str(exc), expression="periodEnd") from exc


def _stored_measures(env: Env) -> list[dict[str, Any]]:
    return [
        json.loads(s.data) for s in env.repository.iter_current(["Measure"]) if s.data is not None
    ]


def find_measure(env: Env, rid: str | None = None, url: str | None = None) -> Any:
    """A measure by id (stored Measure, else a shipped one) or canonical URL.

    Raises:
        FhirError: 404 when unknown, 400 when a stored Measure has no SQL criteria.
    """
    from cmio.measures import MeasureDefinitionError, builtin_measures, measure_from_resource

    shipped = builtin_measures()
    canonical = url.split("|", 1)[0] if url else None
    for resource in _stored_measures(env):
        if (rid is not None and resource.get("id") == rid) or (
            canonical is not None and resource.get("url") == canonical
        ):
            try:
                return measure_from_resource(resource)
            except MeasureDefinitionError as exc:
                raise FhirError(400, "not-supported", str(exc), expression=exc.element) from exc
    for measure in shipped.values():
        if measure.id == rid or (canonical is not None and measure.canonical == canonical):
            return measure
    wanted = f"Measure/{rid}" if rid else f"measure {url}"
    raise FhirError(404, "not-found", f"{wanted} is not known", expression="measure")


def evaluate(env: Env, measures: list[Any], period: Any) -> list[Any]:
    """Evaluate measures on DuckDB over the store (value sets through the server's service)."""
    from cmio.measures import MeasureDefinitionError, evaluate_measures
    from cmio.measures.valuesets import ValueSetError

    try:
        return evaluate_measures(measures, period, env.repository, terminology=env.terminology)
    except (MeasureDefinitionError, ValueSetError) as exc:
        raise FhirError(422, "processing", str(exc), expression="measure") from exc


def evaluate_measure(
    env: Env, request: FhirRequest, rtype: str | None, rid: str | None
) -> FhirResponse:
    """Handle ``$evaluate-measure`` (see the module docstring)."""
    from cmio.measures.report import measure_report

    values = operation_params(request)
    url = _one(values, "measure")
    if rid is None and not url:
        raise FhirError(
            400, "required", "measure (a canonical URL) is required", expression="measure"
        )
    measure = find_measure(env, rid, url)
    period = measure_period(values)
    subject = _one(values, "subject")
    if subject is not None:
        subject = subject.removeprefix("Patient/")
        if not subject or "/" in subject:
            raise FhirError(400, "invalid", "subject must be Patient/[id]", expression="subject")
    kind = _one(values, "reportType") or ("subject" if subject else "population")
    if kind not in _REPORT_TYPES:
        raise FhirError(
            400,
            "invalid",
            f"reportType must be one of {', '.join(_REPORT_TYPES)}",
            expression="reportType",
        )
    if kind == "subject" and subject is None:
        raise FhirError(400, "required", "reportType=subject needs a subject", expression="subject")
    [result] = evaluate(env, [measure], period)
    report = measure_report(result, _REPORT_TYPES[kind], subject)
    return json_response(request, 200, report)
