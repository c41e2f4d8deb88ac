"""OBX-5 values by value type (OBX-2) and quantities with units (NM/SN + CWE).

IG segment map OBX[Observation] (the OBX-5 rows) and datatype maps NM[Quantity],
CWE[Quantity], SN[Quantity], SN[Range], SN[Ratio], NR[Range]
(https://build.fhir.org/ig/HL7/v2-to-fhir/ ).
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from cmio.interfaces.hl7v2.mapping.context import MapContext
from cmio.interfaces.hl7v2.mapping.datatypes import clean_code, codeable, coding_system
from cmio.interfaces.hl7v2.mapping.values import datetime
from cmio.interfaces.hl7v2.message import Repetition, Segment

__all__ = ["mime_type", "observation_value", "quantity"]

_COMPARATORS = MappingProxyType({"<": "<", ">": ">", "<=": "<=", ">=": ">="})


def mime_type(obx: Segment) -> str:
    """The MIME type of an ED value in OBX-5 (ED.2 type of data, ED.3 subtype).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (datatype map ED[Attachment]).
    """
    kind, sub = obx.get(5, 1, 2).lower(), obx.get(5, 1, 3).lower()
    if kind and sub:
        return f"{'application' if kind in ('ap', 'application') else kind}/{sub}"
    return "application/octet-stream"


def observation_value(ctx: MapContext, obx: Segment, path: str) -> dict[str, Any]:
    """OBX-5 by its value type OBX-2 -> ``value[x]`` (IG map OBX[Observation], OBX-5 rows).

    A value that is only whitespace is no value.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    value = _value(ctx, obx, path)
    text = value.get("valueString")
    if text is not None and not text.strip():
        return {}
    return value


def _value(ctx: MapContext, obx: Segment, path: str) -> dict[str, Any]:
    kind = obx.get(2).upper()
    reps = obx.field(5).repetitions
    if not reps:
        return {}
    first = reps[0]
    units = obx.texts(6)
    if kind == "NM":
        q = quantity(ctx, first.value, units, f"{path}-5")
        return {"valueQuantity": q} if q else {"valueString": first.value}
    if kind in ("ST", "FT", "TX", "TN"):
        return {"valueString": "\n".join(r.get(1) for r in reps)}
    if kind in ("CWE", "CE", "CNE", "CF", "IS", "ID", "CD"):
        concept = codeable(ctx, first, f"{path}-5")
        if len(reps) > 1:
            ctx.issue(f"{path}-5", f"{len(reps)} coded values; the first is the value")
        return {"valueCodeableConcept": concept} if concept else {}
    if kind in ("DTM", "DT", "TS"):
        when = datetime(ctx, first.value, f"{path}-5")
        return {"valueDateTime": when} if when else {"valueString": first.value}
    if kind == "TM":
        t = first.value
        if len(t) >= 4 and t[:4].isdigit():
            return {"valueTime": f"{t[:2]}:{t[2:4]}:{t[4:6] or '00'}"}
        return {"valueString": t}
    if kind == "SN":
        return _structured_numeric(ctx, first, units, path)
    if kind == "NR":
        low, high = quantity(ctx, first.get(1), None, path), quantity(ctx, first.get(2), None, path)
        rng = {k: v for k, v in (("low", low), ("high", high)) if v}
        return {"valueRange": rng} if rng else {}
    ctx.issue(f"{path}-2", f"value type {kind or '(empty)'} kept as text")
    return {"valueString": "^".join(first.texts())}


def _structured_numeric(
    ctx: MapContext, sn: Repetition, units: list[str], path: str
) -> dict[str, Any]:
    comparator, num1, sep, num2 = sn.get(1), sn.get(2), sn.get(3), sn.get(4)
    if comparator == "<>" or sep in ("+", "."):
        return {"valueString": "".join((comparator, num1, sep, num2)).strip()}
    if sep in (":", "/") and num2:
        n, d = quantity(ctx, num1, None, path), quantity(ctx, num2, None, path)
        if n and d:
            return {"valueRatio": {"numerator": n, "denominator": d}}
    if sep == "-" and num2:
        low, high = quantity(ctx, num1, units, path), quantity(ctx, num2, units, path)
        if low and high:
            return {"valueRange": {"low": low, "high": high}}
    q = quantity(ctx, num1, units, f"{path}-5")
    if q is None:
        return {"valueString": "".join(sn.texts())}
    if comparator in _COMPARATORS:
        q["comparator"] = _COMPARATORS[comparator]
    return {"valueQuantity": q}


def quantity(
    ctx: MapContext, value: str, unit: Repetition | list[str] | None, path: str
) -> dict[str, Any] | None:
    """NM + CWE units -> Quantity (IG maps NM[Quantity], CWE[Quantity]); UCUM when coded so.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    number = _decimal(value)
    if number is None:
        if value:
            ctx.issue(path, f"not a number: {value!r}")
        return None
    out: dict[str, Any] = {"value": number}
    units = unit if isinstance(unit, list) else unit.texts() if unit else []
    if units and any(units):
        code, text, name = ([*units, "", "", ""])[:3]
        code, name = clean_code(code), name.strip()
        out["unit"] = text or code
        if code and name:
            system, standard = coding_system(ctx, name)
            out["system"] = system
            out["code"] = code
            if not standard:
                ctx.report(f"{path}", name, code, text, "local unit, kept as sent")
    return out


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def _decimal(text: str) -> float | int | None:
    text = text.strip()
    if not _NUMBER.match(text):
        return None
    if "." in text:
        return float(text)
    return int(text)
