"""FHIR to OBX records: reference ranges, abnormal flags, coded and string values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hl7  # type: ignore[import-untyped]
from typer.testing import CliRunner

from cmio.cli.main import app
from cmio.synth.hl7v2.context import lab_result
from cmio.synth.hl7v2.encode import ts
from cmio.synth.hl7v2.messages import message, oru_message
from cmio.synth.hl7v2.records import (
    CodedValue,
    Header,
    LabReport,
    PatientRecord,
    Quirks,
    parse_instant,
)


def _obs(loinc: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": "X"}]},
        "effectiveDateTime": "2025-06-23T09:45:15-05:00",
        **value,
    }


def _quantity(number: float, unit: str) -> dict[str, Any]:
    return {"value": number, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def test_numeric_result_gets_range_and_flag_from_adult_limits() -> None:
    high = lab_result(_obs("2345-7", valueQuantity=_quantity(182, "mg/dL")), "F")
    assert high is not None
    assert (high.value, high.unit, high.reference_range, high.interpretation) == (
        182,
        "mg/dL",
        "70-99",
        "H",
    )
    assert high.code == CodedValue("2345-7", "X", "LN")
    low = lab_result(_obs("718-7", valueQuantity=_quantity(11.1, "g/dL")), "M")
    assert low is not None and (low.reference_range, low.interpretation) == ("13.5-17.5", "L")
    a1c = lab_result(_obs("4548-4", valueQuantity=_quantity(5.7, "%")), "M")
    assert a1c is not None and (a1c.reference_range, a1c.interpretation) == ("<5.7", "H")
    hdl = lab_result(_obs("2085-9", valueQuantity=_quantity(58, "mg/dL")), "F")
    assert hdl is not None and (hdl.reference_range, hdl.interpretation) == (">40", "N")


def test_observation_range_and_interpretation_win() -> None:
    obs = _obs(
        "2345-7",
        valueQuantity=_quantity(101, "mg/dL"),
        referenceRange=[{"low": {"value": 65}, "high": {"value": 110}}],
        interpretation=[{"coding": [{"code": "N", "system": "x"}]}],
    )
    result = lab_result(obs, "F")
    assert result is not None and (result.reference_range, result.interpretation) == ("65-110", "N")


def test_coded_string_and_missing_values() -> None:
    fit = lab_result(
        _obs(
            "29771-3",
            valueCodeableConcept={
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "10828004", "display": "Positive"}
                ]
            },
        ),
        "F",
    )
    assert fit is not None
    assert fit.value == CodedValue("10828004", "Positive", "SCT")
    assert (fit.reference_range, fit.interpretation) == ("Negative", "A")
    note = lab_result(_obs("8251-1", valueString="Clear | yellow"), "F")
    assert note is not None and note.value == "Clear | yellow"
    assert lab_result(_obs("2345-7", valueQuantity={"unit": "mg/dL"}), "F") is None
    assert lab_result(_obs("2345-7"), "F") is None


def test_string_result_is_escaped_in_obx() -> None:
    result = lab_result(_obs("8251-1", valueString="Clear | yellow ^ 2+"), "F")
    assert result is not None
    when = datetime(2025, 1, 1, tzinfo=UTC)
    report = LabReport(
        "1", "L1", CodedValue("24356-8", "UA", "LN"), "F", when, when, None, "Lab", (result,)
    )
    patient = PatientRecord("p", "M1", "", "RBH", "Doe", ("Jo",), "F", "1990-01-01")
    header = Header("ORU", "R01", "ORU_R01", "LAB", "RBH", when, "9")
    parsed = hl7.parse(message(oru_message(header, patient, None, report, Quirks())))
    assert parsed.extract_field("OBX", 1, 2, 1, 1) == "ST"
    assert parsed.extract_field("OBX", 1, 5, 1, 1) == "Clear | yellow ^ 2+"


def test_cli_refuses_a_folder_without_patients(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["synth-feeds", "--in", str(tmp_path), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code != 0
    assert not (tmp_path / "out").exists()


def test_partial_dates_and_timestamps() -> None:
    assert ts(parse_instant("2006-03-05")) == "20060305"
    assert ts(parse_instant("2006-03")) == "20060301"
    assert ts(parse_instant("2025-06-20T09:27:09-05:00")) == "20250620092709-0500"
