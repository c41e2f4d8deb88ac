"""PID-10 race and PID-22 ethnic group to the US Core race and ethnicity extensions.

The IG's PID[Patient] map leaves PID-10 and PID-22 to the realm ("US = US Core Race
Extension", https://build.fhir.org/ig/HL7/v2-to-fhir/ ). Here a code is used when it is a
CDC Race & Ethnicity code (``urn:oid:2.16.840.1.113883.6.238``, v2 coding system ``CDCREC``
or tables HL70005/HL70189, which since v2.5 take their values from it): the five OMB race
categories and the two OMB ethnicity categories go to ``ombCategory``, other CDC codes to
``detailed`` (https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-race.html ,
https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-ethnicity.html ). The
single-letter values of older HL7 tables 0005 (W, B, A, I, P, O) and 0189 (H, N) and ``U``
(unknown) are translated to those codes. Any other code is kept as sent in a cmio extension
(``urn:cmio:v2:extension:PID-10``/``-22``, a CodeableConcept) and reported as unmapped.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from cmio.interfaces.hl7v2.fields import Repetition
from cmio.interfaces.hl7v2.mapping.context import MapContext
from cmio.interfaces.hl7v2.mapping.datatypes import codeable
from cmio.interfaces.hl7v2.message import Segment

__all__ = ["CDC_RACE_ETHNICITY", "race_and_ethnicity"]

CDC_RACE_ETHNICITY = "urn:oid:2.16.840.1.113883.6.238"
"""The CDC Race & Ethnicity code system."""

_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-"
_NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
_CDC_CODE = re.compile(r"[0-9]{4}-[0-9]\Z")
_CDC_SYSTEMS = frozenset({"CDCREC", "HL70005", "HL70189", CDC_RACE_ETHNICITY.upper(),
                          "2.16.840.1.113883.6.238"})  # fmt: skip
_OMB = MappingProxyType(
    {
        "race": {
            "1002-5": "American Indian or Alaska Native",
            "2028-9": "Asian",
            "2054-5": "Black or African American",
            "2076-8": "Native Hawaiian or Other Pacific Islander",
            "2106-3": "White",
        },
        "ethnicity": {"2135-2": "Hispanic or Latino", "2186-5": "Not Hispanic or Latino"},
    }
)
_LEGACY = MappingProxyType(
    {
        "race": {
            "W": "2106-3",
            "B": "2054-5",
            "A": "2028-9",
            "I": "1002-5",
            "P": "2076-8",
            "O": "2131-1",
        },
        "ethnicity": {"H": "2135-2", "N": "2186-5"},
    }
)
_OTHER_RACE = {"2131-1": "Other Race"}


def _cdc(kind: str, rep: Repetition) -> tuple[str, str] | None:
    """The CDC (code, display) of one CWE, from its first or alternate triplet."""
    for first in (1, 4):
        code, display, system = rep.get(first), rep.get(first + 1), rep.get(first + 2)
        if not code:
            continue
        system = system.upper()
        if _CDC_CODE.match(code) and (not system or system in _CDC_SYSTEMS):
            return code, display or _OMB[kind].get(code, _OTHER_RACE.get(code, ""))
        legacy = _LEGACY[kind].get(code.upper())
        if legacy and system in ("", "HL70005", "HL70189"):
            return legacy, _OMB[kind].get(legacy, _OTHER_RACE.get(legacy, ""))
    return None


def race_and_ethnicity(ctx: MapContext, pid: Segment) -> list[dict[str, Any]]:
    """PID-10 and PID-22 -> US Core race/ethnicity extensions (+ kept unmapped codes).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (PID[Patient]: local implementation) and
    https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-race.html .
    """
    out: list[dict[str, Any]] = []
    for n, kind, table in ((10, "race", "HL70005"), (22, "ethnicity", "HL70189")):
        parts: list[dict[str, Any]] = []
        texts: list[str] = []
        for i, rep in enumerate(pid.field(n).repetitions, 1):
            path = f"PID-{n}({i})"
            if not rep.get(1) and not rep.get(4):
                continue
            if rep.get(1).upper() in ("U", "UNK") and not rep.get(3):
                coding = {"system": _NULL_FLAVOR, "code": "UNK", "display": "unknown"}
                parts.append({"url": "ombCategory", "valueCoding": coding})
                texts.append("unknown")
                continue
            found = _cdc(kind, rep)
            if found is None:
                kept = codeable(ctx, rep, path, v2_table=table)
                ctx.report(path, rep.get(3), rep.get(1), rep.get(2),
                           f"not a CDC Race & Ethnicity {kind} code")  # fmt: skip
                if kept:
                    out.append({"url": f"urn:cmio:v2:extension:PID-{n}",
                                "valueCodeableConcept": kept})  # fmt: skip
                continue
            code, display = found
            coding = {"system": CDC_RACE_ETHNICITY, "code": code}
            if display:
                coding["display"] = display
            slot = "ombCategory" if code in _OMB[kind] else "detailed"
            parts.append({"url": slot, "valueCoding": coding})
            texts.append(display or code)
        if parts:
            parts.append({"url": "text", "valueString": ", ".join(dict.fromkeys(texts))})
            out.append({"url": f"{_US_CORE}{kind}", "extension": parts})
    return out
