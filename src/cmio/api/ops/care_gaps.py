"""``Measure/$care-gaps``: the open (or closed) care gaps of patients.

After the Da Vinci DEQM operation
(https://hl7.org/fhir/us/davinci-deqm/STU3/OperationDefinition-care-gaps.html):
``[base]/Measure/$care-gaps?periodStart=..&periodEnd=..&subject=Patient/[id]``, with
``measureId`` / ``measureUrl`` (repeatable; default: every shipped measure) and
``status`` (``open-gap`` default, ``closed-gap``, ``all``). The answer is a
``Parameters`` with one ``return`` document Bundle per patient with a gap
(Composition, individual MeasureReports, DetectedIssues), see
:func:`cmio.measures.caregaps.care_gaps_parameters`.
"""

from __future__ import annotations

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.evaluate_measure import evaluate, find_measure, measure_period, operation_params
from cmio.api.render import json_response

__all__ = ["care_gaps"]

_STATUS = ("open-gap", "closed-gap", "all")


def care_gaps(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """Handle ``$care-gaps`` (see the module docstring)."""
    from cmio.measures import builtin_measures
    from cmio.measures.caregaps import care_gaps_parameters

    values = operation_params(request)
    period = measure_period(values)
    subjects = []
    for subject in values.get("subject", []):
        pid = subject.removeprefix("Patient/")
        if not pid or "/" in pid:
            raise FhirError(400, "invalid", "subject must be Patient/[id]", expression="subject")
        subjects.append(pid)
    if not subjects:
        raise FhirError(400, "required", "subject (Patient/[id]) is required", expression="subject")
    statuses = values.get("status") or ["open-gap"]
    if len(statuses) > 1 or statuses[0] not in _STATUS:
        raise FhirError(
            400, "invalid", f"status must be one of {', '.join(_STATUS)}", expression="status"
        )
    measures = [find_measure(env, rid=m) for m in values.get("measureId", [])]
    measures += [find_measure(env, url=u) for u in values.get("measureUrl", [])]
    if not measures:
        measures = list(builtin_measures().values())
    results = evaluate(env, measures, period)
    return json_response(request, 200, care_gaps_parameters(results, subjects, status=statuses[0]))
