"""The element walk of :class:`cmio.security.deid.Deidentifier`: each element by its datatype.

The rules are those of HIPAA Safe Harbor, 45 CFR 164.514(b)(2)
(https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-E/section-164.514);
see :mod:`cmio.security.deid` for the list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cmio.model import JsonProperty
from cmio.model.types import K_RESOURCE, K_SHADOW
from cmio.security.deid_values import AGE_CAP, shift_date, zip3

if TYPE_CHECKING:
    from cmio.security.deid import Deidentifier

__all__ = ["Walk"]

_DROP_TYPES = frozenset(
    {"HumanName", "ContactPoint", "Identifier", "Narrative", "Annotation", "Signature"}
)
_DROP_PRIMITIVES = frozenset({"xhtml", "base64Binary", "url", "uuid"})
_KEEP_PRIMITIVES = frozenset(
    {
        "boolean",
        "integer",
        "decimal",
        "positiveInt",
        "unsignedInt",
        "code",
        "uri",
        "canonical",
        "oid",
        "time",
        "id",
    }
)
_DATES = frozenset({"date", "dateTime", "instant"})
_QUANTITIES = frozenset({"Quantity", "SimpleQuantity", "Age", "Duration", "Count", "Distance"})
_ADDRESS_KEEP = ("use", "type", "state", "country")
_YEARS = frozenset({"a", "yr", "year", "years"})


class Walk:
    """One resource's walk: the de-identifier and the offset of its patient."""

    __slots__ = ("days", "deid")

    def __init__(self, deid: Deidentifier, days: int) -> None:
        self.deid = deid
        self.days = days

    def resource(
        self, node: dict[str, Any], index: dict[str, JsonProperty], *, top: bool
    ) -> dict[str, Any]:
        out = self.complex(node, index, node["resourceType"])
        out = {"resourceType": node["resourceType"], **out}
        rid = node.get("id")
        if isinstance(rid, str):
            out["id"] = self.deid.pseudonym(node["resourceType"], rid) if top else rid
        meta = out.get("meta")
        if isinstance(meta, dict):
            meta.pop("source", None)
        return out

    def complex(
        self, node: dict[str, Any], index: dict[str, JsonProperty], owner: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            prop = index.get(key)
            if prop is None or prop.kind == K_SHADOW:
                continue
            kept = self.element(value, prop, owner, node)
            if kept is not None:
                out[key] = kept
        for key, value in node.items():
            prop = index.get(key)
            if prop is None or prop.kind != K_SHADOW or prop.partner not in out:
                continue
            kept_value, source = out[str(prop.partner)], node.get(str(prop.partner))
            if not isinstance(kept_value, list) or len(kept_value) == len(source or ()):
                shadow = self.element(value, prop, owner, node)
                if shadow is not None:
                    out[key] = shadow
        return out

    def element(self, value: Any, prop: JsonProperty, owner: str, parent: dict[str, Any]) -> Any:
        if isinstance(value, list) and prop.kind == K_SHADOW:
            aligned = [self.one(v, prop, owner, parent) for v in value]
            return aligned if any(v is not None for v in aligned) else None
        if isinstance(value, list):
            kept = [v for v in (self.one(v, prop, owner, parent) for v in value) if v is not None]
            return kept or None
        return self.one(value, prop, owner, parent)

    def one(self, value: Any, prop: JsonProperty, owner: str, parent: dict[str, Any]) -> Any:
        code = prop.type_code
        if value is None:
            return None
        if prop.kind == K_RESOURCE:
            if not isinstance(value, dict):
                return None
            if prop.element.name != "contained":  # Bundle.entry.resource, Parameters ...
                return self.deid.deidentify(value)  # its own patient, offset and pseudonym
            tdef = self.deid.model.types.get(str(value.get("resourceType")))
            if tdef is None or tdef.kind != "resource":
                return None
            return self.resource(value, tdef.json_index, top=False)  # local id kept (#ref)
        if prop.kind == K_SHADOW:
            return self.nested(value, prop, code) if isinstance(value, dict) else None
        if code in _DROP_TYPES or code in _DROP_PRIMITIVES:
            return None
        if code in _DATES:
            return shift_date(value, self.days) if isinstance(value, str) else None
        if code == "uri" and prop.element.name == "fullUrl" and isinstance(value, str):
            return self.deid.rewrite_reference(value)  # Bundle.entry.fullUrl names the resource
        if code in _KEEP_PRIMITIVES:
            return value
        if code in ("string", "markdown"):
            return value if self.keeps_text(prop, owner, parent) else None
        if not isinstance(value, dict):
            return None
        if code == "Attachment":
            return {"contentType": value["contentType"]} if "contentType" in value else None
        if code == "Address":
            return self.address(value)
        out = self.nested(value, prop, code)
        if code == "Reference":
            ref = value.get("reference")
            out.pop("display", None)
            if isinstance(ref, str):
                new = self.deid.rewrite_reference(ref)
                if new is None:
                    out.pop("reference", None)
                else:
                    out["reference"] = new
        elif code in _QUANTITIES:
            self.cap_age_quantity(out)
        elif code == "Extension" and not any(k.startswith(("value", "extension")) for k in out):
            return None
        return out or None

    def nested(self, value: dict[str, Any], prop: JsonProperty, code: str) -> dict[str, Any]:
        members = prop.members
        if members is None:
            tdef = self.deid.model.types.get(code)
            members = tdef.json_index if tdef is not None else {}
        return self.complex(value, members, code)

    def keeps_text(self, prop: JsonProperty, owner: str, parent: dict[str, Any]) -> bool:
        name = prop.element.name
        if owner == "Coding" and name == "display":
            return True
        if owner in _QUANTITIES and name == "unit":
            return True
        return owner == "CodeableConcept" and name == "text" and bool(parent.get("coding"))

    def address(self, value: dict[str, Any]) -> dict[str, Any] | None:
        out: dict[str, Any] = {k: value[k] for k in _ADDRESS_KEEP if isinstance(value.get(k), str)}
        postal = value.get("postalCode")
        if isinstance(postal, str):
            short = zip3(postal)
            if short is not None:
                out["postalCode"] = short
        period = value.get("period")
        if isinstance(period, dict):
            shifted = self.complex(period, self.deid.model.types["Period"].json_index, "Period")
            if shifted:
                out["period"] = shifted
        return out or None

    @staticmethod
    def cap_age_quantity(out: dict[str, Any]) -> None:
        value = out.get("value")
        unit = str(out.get("code") or out.get("unit") or "").lower()
        if isinstance(value, int | float) and unit in _YEARS and value > AGE_CAP - 1:
            out["value"] = AGE_CAP
            out["comparator"] = ">="
