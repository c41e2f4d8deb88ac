"""Care gaps: who is missing what, since when, and which clinician is attributed.

A patient has an open gap in a measure when they are in the denominator, not excluded
or excepted, and not in the numerator (for an inverse measure such as CMS122, when
they ARE in the numerator); see :mod:`cmio.measures.runner`. ``since`` is the day of
the last event that counted for the measure (the last mammogram, the most recent
HbA1c), empty when there never was one.

:func:`care_gaps_parameters` renders the Da Vinci DEQM ``$care-gaps`` answer
(https://hl7.org/fhir/us/davinci-deqm/STU3/OperationDefinition-care-gaps.html): a
``Parameters`` with one ``return`` per patient, a ``document`` Bundle holding a
``Composition`` (one section per measure), the individual ``MeasureReport`` per measure
and a ``DetectedIssue`` per gap (``code`` CAREGAP, the ``gapStatus`` modifier extension
``open-gap``/``closed-gap``, ``evidence.detail`` the MeasureReport, ``author`` the
attributed clinician, the ``since`` date in a cmio extension).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from cmio.measures.report import measure_report
from cmio.measures.runner import MeasureResult

__all__ = ["CARE_GAP_SCHEMA", "care_gaps_parameters", "care_gaps_table"]

CARE_GAP_SCHEMA = pa.schema(
    [
        pa.field("measure", pa.string()),
        pa.field("patient_id", pa.string()),
        pa.field("missing", pa.string()),
        pa.field("since", pa.string()),
        pa.field("clinician", pa.string()),
        pa.field("department", pa.string()),
    ]
)
_GAP_STATUS = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-gapStatus"
_GAP_SYSTEM = "http://hl7.org/fhir/us/davinci-deqm/CodeSystem/gaps-status"
_SINCE = "https://cmio.dev/fhir/StructureDefinition/care-gap-since"


def _open(row: dict[str, Any]) -> bool:
    return bool(row.get("care_gap"))


def _eligible(row: dict[str, Any]) -> bool:
    return bool(row.get("denominator")) and not (
        row.get("denominator_exclusion") or row.get("denominator_exception")
    )


def care_gaps_table(results: Sequence[MeasureResult]) -> pa.Table:
    """The open gaps of every patient (:data:`CARE_GAP_SCHEMA`), by measure and patient."""
    rows = []
    for result in results:
        missing = result.measure.gap.missing if result.measure.gap else result.measure.title
        for row in result.members.to_pylist():
            if _open(row):
                rows.append(
                    {
                        "measure": result.measure.id,
                        "patient_id": row["patient_id"],
                        "missing": missing,
                        "since": row.get("gap_since"),
                        "clinician": row.get("strat_clinician"),
                        "department": row.get("strat_department"),
                    }
                )
    return pa.Table.from_pylist(rows, schema=CARE_GAP_SCHEMA)


def _issue(result: MeasureResult, row: dict[str, Any], report_id: str) -> dict[str, Any]:
    status = "open-gap" if _open(row) else "closed-gap"
    missing = result.measure.gap.missing if result.measure.gap else result.measure.title
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": str(uuid.uuid4()),
        "modifierExtension": [
            {
                "url": _GAP_STATUS,
                "valueCodeableConcept": {"coding": [{"system": _GAP_SYSTEM, "code": status}]},
            }
        ],
        "status": "final",
        "code": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "CAREGAP"}
            ]
        },
        "patient": {"reference": f"Patient/{row['patient_id']}"},
        "identifiedDateTime": datetime.now(UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "evidence": [{"detail": [{"reference": f"MeasureReport/{report_id}"}]}],
        "detail": f"{result.measure.id}: {missing}"
        if status == "open-gap"
        else f"{result.measure.id}: met",
    }
    since = row.get("gap_since")
    if since:
        issue["extension"] = [{"url": _SINCE, "valueDate": since}]
    clinician = row.get("strat_clinician")
    if isinstance(clinician, str) and clinician.startswith("Practitioner/"):
        issue["author"] = {"reference": clinician}
    return issue


def care_gaps_parameters(
    results: Sequence[MeasureResult], subjects: Sequence[str], *, status: str = "open-gap"
) -> dict[str, Any]:
    """The ``$care-gaps`` answer for patients (ids) over the evaluated measures.

    Args:
        results: the measures evaluated over the period.
        subjects: patient ids; each gets one ``return`` Bundle (only patients with at
            least one reported gap).
        status: ``open-gap`` (only open gaps) or ``closed-gap`` (only met measures);
            ``all`` for both.
    """
    parameters: list[dict[str, Any]] = []
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    for subject in subjects:
        entries: list[dict[str, Any]] = []
        sections: list[dict[str, Any]] = []
        for result in results:
            row = result.row(subject)
            if row is None or (not _eligible(row) and not _open(row)):
                continue
            if status != "all" and (status == "open-gap") != _open(row):
                continue
            report = measure_report(result, "individual", subject)
            report["id"] = str(uuid.uuid4())
            issue = _issue(result, row, report["id"])
            entries += [report, issue]
            sections.append(
                {
                    "title": result.measure.title or result.measure.id,
                    "focus": {"reference": f"MeasureReport/{report['id']}"},
                    "entry": [{"reference": f"DetectedIssue/{issue['id']}"}],
                }
            )
        if not sections:
            continue
        composition = {
            "resourceType": "Composition",
            "id": str(uuid.uuid4()),
            "status": "final",
            "type": {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "96315-7",
                        "display": "Gaps in care report",
                    }
                ]
            },
            "subject": {"reference": f"Patient/{subject}"},
            "date": now,
            "author": [{"display": "cmio"}],
            "title": "Gaps in care report",
            "section": sections,
        }
        bundle = {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "document",
            "timestamp": now,
            "entry": [
                {"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in [composition, *entries]
            ],
        }
        parameters.append({"name": "return", "resource": bundle})
    return {"resourceType": "Parameters", "parameter": parameters}
