"""HL7 v2 data types to FHIR R4 data types, by the datatype maps of the V2-to-FHIR IG.

CWE/CE/CNE -> CodeableConcept, CX/EI -> Identifier, XPN -> HumanName, XAD -> Address,
XTN -> ContactPoint, DTM/TS/DT -> dateTime/date/instant, XCN -> Practitioner,
CWE/CQ -> Quantity (https://build.fhir.org/ig/HL7/v2-to-fhir/ , "Data type maps").
Coding system names (CWE.3, HL7 Table 0396) become code system URIs; local and unknown
systems keep their code under ``local_system_prefix + name`` and are reported.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from cmio.interfaces.hl7v2.mapping.context import MapContext, identifier_query
from cmio.interfaces.hl7v2.mapping.values import date, datetime, instant
from cmio.interfaces.hl7v2.mapping.vocabulary import VOCABULARY
from cmio.interfaces.hl7v2.message import Repetition

__all__ = [
    "CODING_SYSTEMS",
    "address",
    "authority_system",
    "clean_code",
    "codeable",
    "coding_system",
    "contact_point",
    "date",
    "datetime",
    "entity_identifier",
    "human_name",
    "identifier",
    "instant",
    "name_from",
    "practitioner",
    "v2_table_system",
    "vocab",
]

# HL7 Table 0396 (coding system) names to FHIR code system URIs (FHIR R4 terminologies,
# https://hl7.org/fhir/R4/terminologies-systems.html ).
CODING_SYSTEMS = MappingProxyType(
    {
        "LN": "http://loinc.org",
        "LOINC": "http://loinc.org",
        "SCT": "http://snomed.info/sct",
        "SNOMEDCT": "http://snomed.info/sct",
        "SNOMED-CT": "http://snomed.info/sct",
        "CVX": "http://hl7.org/fhir/sid/cvx",
        "MVX": "http://terminology.hl7.org/CodeSystem/MVX",
        "I10": "http://hl7.org/fhir/sid/icd-10",
        "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
        "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
        "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
        "I9CDX": "http://hl7.org/fhir/sid/icd-9-cm",
        "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
        "NDC": "http://hl7.org/fhir/sid/ndc",
        "C4": "http://www.ama-assn.org/go/cpt",
        "CPT": "http://www.ama-assn.org/go/cpt",
        "UCUM": "http://unitsofmeasure.org",
        "CDCREC": "urn:oid:2.16.840.1.113883.6.238",
        "NCIT": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
        "ISO639": "urn:ietf:bcp:47",
        "NUBC": "http://www.nubc.org/patient-discharge",
    }
)
_V2_TABLE = re.compile(r"^HL7(\d{4,5})$")


def clean_code(text: str) -> str:
    """A FHIR ``code`` from v2 text: no leading, trailing or repeated whitespace.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    return " ".join(text.split()) if text else ""


def v2_table_system(table: str) -> str:
    """``http://terminology.hl7.org/CodeSystem/v2-NNNN`` for HL7 table ``NNNN``."""
    return f"http://terminology.hl7.org/CodeSystem/v2-{int(table):04d}"


def coding_system(ctx: MapContext, name: str) -> tuple[str, bool]:
    """The URI for a v2 coding system name and whether it is a standard one.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    if not name:
        return "", False
    cached = ctx.systems.get(name)
    if cached is None:
        cached = ctx.systems[name] = _coding_system(ctx, name)
    return cached


def _coding_system(ctx: MapContext, name: str) -> tuple[str, bool]:
    known = ctx.options.coding_systems.get(name) or CODING_SYSTEMS.get(name.upper())
    if known:
        return known, True
    m = _V2_TABLE.match(name.upper())
    if m:
        return v2_table_system(m.group(1)), True
    if ":" in name and " " not in name:  # already a URI (urn:oid:..., http://...)
        return name, True
    # percent-encoded: a local name with spaces or other URI-invalid characters stays a uri
    return ctx.options.local_system_prefix + quote(name, safe=":._~-"), False


def vocab(ctx: MapContext, table: str, code: str, path: str, v2_table: str = "") -> str | None:
    """Map one v2 code through an IG vocabulary map; unknown codes are reported.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    code = code.strip()
    if not code:
        return None
    found = VOCABULARY[table].get(code) or VOCABULARY[table].get(code.upper())
    if found is None:
        ctx.report(path, v2_table or table, code, "", f"no FHIR code in the IG map {table}")
        return None
    return found[0]


def codeable(
    ctx: MapContext,
    rep: Repetition | list[str],
    path: str,
    table: str = "",
    v2_table: str = "",
) -> dict[str, Any] | None:
    """CWE/CE/CNE -> CodeableConcept (IG map CWE[CodeableConcept]).

    Args:
        ctx: the mapping context.
        rep: the CWE value, or its component texts (:meth:`Segment.texts`).
        path: where it is, for reports.
        table: an IG vocabulary map to apply to HL7-table codes (``MaritalStatus``).
        v2_table: the HL7 table of the field (``HL70002``), used when CWE.3 is empty.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    comps = rep if isinstance(rep, list) else rep.texts() if rep else []
    if not any(comps):
        return None
    comps = comps + [""] * (13 - len(comps))
    codings: list[dict[str, Any]] = []
    for code_i, display_i, system_i, version_i in ((0, 1, 2, 6), (3, 4, 5, 7), (9, 10, 11, 12)):
        code, display, name = clean_code(comps[code_i]), comps[display_i], comps[system_i].strip()
        if not code:
            continue
        name = name or (v2_table if code_i == 0 else "")
        if table and (not name or _V2_TABLE.match(name.upper()) or name == v2_table):
            mapped = VOCABULARY[table].get(code) or VOCABULARY[table].get(code.upper())
            if mapped is not None:
                coding = {"system": mapped[2], "code": mapped[0]}
                if mapped[1]:
                    coding["display"] = mapped[1]
                codings.append(coding)
                continue
        system, standard = coding_system(ctx, name)
        coding = {"code": code}
        if system:
            coding = {"system": system, "code": code}
        if display:
            coding["display"] = display
        if comps[version_i]:
            coding["version"] = comps[version_i]
        codings.append(coding)
        if not standard:
            translated = _translate(ctx, system, code)
            codings.extend(translated)
            if not translated:
                reason = "local code" if name else "code without a coding system"
                ctx.report(path, name, code, display, f"{reason}, kept as sent")
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    text = comps[8] or (comps[1] if not codings else "")
    if text:
        concept["text"] = text
    return concept or None


def _translate(ctx: MapContext, system: str, code: str) -> list[dict[str, Any]]:
    if ctx.options.translate is None:
        return []
    out: list[dict[str, Any]] = []
    for t_system, t_code, t_display in ctx.options.translate(system, code):
        coding = {"system": t_system, "code": t_code}
        if t_display:
            coding["display"] = t_display
        out.append(coding)
    return out


def identifier(ctx: MapContext, rep: Repetition, path: str) -> dict[str, Any] | None:
    """CX/EI -> Identifier (IG maps CX[Identifier], EI[Identifier-Extension], HD[uri]).

    The system comes from the assigning authority (CX.4, or EI.2-4): its universal id
    (``urn:oid:`` for ISO, ``urn:uuid:`` for UUID, the URI itself otherwise), else a system
    configured for its namespace, else ``urn:id:<namespace>``. An identifier without an
    authority belongs to the sending facility (MSH-4).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    value = rep.get(1) if rep else ""
    if not value:
        return None
    authority = rep.component(4)
    ident: dict[str, Any] = {
        "system": authority_system(ctx, *authority.subcomponents[:3]),
        "value": value,
    }
    type_code = rep.get(5)
    if type_code:
        ident["type"] = {
            "coding": [{"system": v2_table_system("0203"), "code": type_code}],
        }
    start, end = rep.get(7), rep.get(8)
    period = {
        k: v
        for k, v in (("start", datetime(ctx, start, path)), ("end", datetime(ctx, end, path)))
        if v
    }
    if period:
        ident["period"] = period
    return ident


def entity_identifier(
    ctx: MapContext, rep: Repetition | list[str], path: str
) -> dict[str, Any] | None:
    """EI (EI.1 entity id, EI.2 namespace, EI.3 universal id, EI.4 type) -> Identifier.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    c = rep if isinstance(rep, list) else rep.texts() if rep else []
    if not c or not c[0]:
        return None
    c = [*c, "", "", ""]
    return {"system": authority_system(ctx, c[1], c[2], c[3]), "value": c[0]}


def authority_system(
    ctx: MapContext, namespace: str = "", universal: str = "", kind: str = ""
) -> str:
    """The identifier system for an assigning authority (HD: namespace, universal id, type).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    kind = kind.upper()
    if universal:
        if kind == "ISO":
            return universal if universal.startswith("urn:oid:") else f"urn:oid:{universal}"
        if kind == "UUID":
            return universal if universal.startswith("urn:uuid:") else f"urn:uuid:{universal}"
        if ":" in universal:
            return universal
    if namespace:
        configured = ctx.options.authority_systems.get(namespace)
        return configured or f"urn:id:{namespace}"
    facility = ctx.message.sending_facility or ctx.message.sending_application
    return ctx.options.authority_systems.get(facility) or f"urn:id:{facility or 'unknown'}"


def human_name(ctx: MapContext, rep: Repetition, path: str) -> dict[str, Any] | None:
    """XPN -> HumanName (IG map XPN[HumanName]).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    return name_from(ctx, rep.texts() if rep else [], path)


def name_from(ctx: MapContext, parts: list[str], path: str) -> dict[str, Any] | None:
    """A HumanName from XPN-ordered components (family, given, middle, suffix, prefix,
    degree, type ... XPN.14 professional suffix); XCN passes its components from XCN.2.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    c = parts + [""] * 14
    if not any(c[:6]):
        return None
    name: dict[str, Any] = {}
    if c[0]:
        name["family"] = c[0]
    given = [g for g in (c[1], *c[2].split(" ")) if g]
    if given:
        name["given"] = given
    if c[4]:
        name["prefix"] = [c[4]]
    suffix = [s for s in (c[3], c[5], c[13]) if s]
    if suffix:
        name["suffix"] = suffix
    use = vocab(ctx, "NameType", c[6], f"{path}.7", "HL70200") if c[6] else None
    if use:
        name["use"] = use
    return name


def address(ctx: MapContext, rep: Repetition, path: str) -> dict[str, Any] | None:
    """XAD -> Address (IG map XAD[Address]).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    c = (rep.texts() if rep else []) + [""] * 20
    if not any(c[:6]) and not c[8]:
        return None
    out: dict[str, Any] = {}
    lines = [x for x in (c[0], c[1], c[18]) if x]
    if lines:
        out["line"] = lines
    for key, i in (("city", 2), ("state", 3), ("postalCode", 4), ("country", 5), ("district", 8)):
        if c[i]:
            out[key] = c[i]
    kind = c[6]
    if kind in ("M", "SH"):
        out["type"] = "postal"
    elif kind:
        use = VOCABULARY["AddressType[Use]"].get(kind)
        if use is not None:
            out["use"] = use[0]
        elif kind not in ("M", "SH"):
            ctx.report(f"{path}.7", "HL70190", kind, "", "no FHIR code in the IG map AddressType")
    return out


def contact_point(
    ctx: MapContext, rep: Repetition, path: str, default_use: str
) -> dict[str, Any] | None:
    """XTN -> ContactPoint (IG map XTN[ContactPoint]); ``default_use`` when XTN.2 is empty.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    c = (rep.texts() if rep else []) + [""] * 20
    equipment = c[2]
    if equipment in ("Internet", "X.400") or (not equipment and c[3] and not c[0]):
        value, system = c[3], "email"
    else:
        local = " ".join(x for x in (c[5], c[6]) if x)
        if local and c[4]:
            local = f"+{c[4]} {local}"
        if local and c[7]:
            local += f" X{c[7]}"
        value = c[11] or local or c[0]
        system = "phone" if value else ""
        if equipment:
            mapped = VOCABULARY["TelecommunicationEquipmentType"].get(equipment)
            if mapped is None:
                ctx.report(f"{path}.3", "HL70202", equipment, "", "unknown equipment type")
            elif mapped[2].endswith("contact-point-use"):  # CP: a mobile phone (IG map)
                default_use = mapped[0]
            else:
                system = mapped[0]
    if not value:
        return None
    out: dict[str, Any] = {"value": value}
    if system:
        out["system"] = system
    use = vocab(ctx, "TelecommunicationUseCode", c[1], f"{path}.2", "HL70201") if c[1] else None
    if equipment == "CP" or not c[1]:
        use = default_use
    if use:
        out["use"] = use
    return out


def practitioner(ctx: MapContext, rep: Repetition, path: str) -> dict[str, Any] | None:
    """XCN -> a Reference to a Practitioner (IG map XCN[Practitioner]).

    With an id (XCN.1) the Practitioner is created once (conditional create by identifier
    XCN.1 + XCN.9); without one the reference carries the name as display only.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    if not rep:
        return None
    comps = rep.texts() + [""] * 10
    xcn_name = [*comps[1:7], comps[9]]
    name = name_from(ctx, xcn_name, path)
    display = " ".join([*(name or {}).get("given", []), (name or {}).get("family", "")]).strip()
    ident_value = comps[0]
    if not ident_value:
        return {"display": display} if display else None
    authority = rep.component(9)
    system = authority_system(ctx, *authority.subcomponents[:3])
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "identifier": [{"system": system, "value": ident_value}],
    }
    if name:
        resource["name"] = [name]
    key = f"Practitioner|{system}|{ident_value}"
    if not ctx.has(key):
        ctx.create(resource, key, identifier_query(system, ident_value))
    ref: dict[str, Any] = {"reference": ctx.full_url(key)}
    if display:
        ref["display"] = display
    return ref
