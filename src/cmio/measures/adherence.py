"""Standards adherence and data quality: standard code systems, valid codes, required
elements, UCUM units and suspected duplicate patients, with a data-quality score.

Per resource type and source system (``meta.source``; else ``hl7v2:<sender>`` when
an HL7 v2 MessageHeader's ``focus`` names the resource; else ``unspecified``):

* ``coding``: coded elements (:class:`Standards`) and the share with a coding in one
  of the organization's standard systems for that element.
* ``codes``/``code_issues``: distinct (system, code) pairs checked once each against
  the terminology service (https://hl7.org/fhir/R4/codesystem-operation-lookup.html):
  ``valid``, ``invalid`` (unknown code), ``deprecated`` (inactive, retired or
  deprecated concept) or ``unchecked`` (system not available).
* ``required``: elements with minimum cardinality >= 1 in the R4 base definition
  (https://hl7.org/fhir/R4/conformance-rules.html#cardinality) plus
  :attr:`Standards.required`, and how many resources lack each.
* ``units``/``unit_issues``: Quantities of Observation value and components; a
  quantity with a unit is conformant when its system is UCUM and its code a valid
  UCUM expression (https://ucum.org/ucum).
* ``duplicates``: :mod:`cmio.measures.adherence_dupes`.
* ``score``: the mean of the available shares (standard coding, valid codes,
  required elements present, UCUM) x 100 per resource type and source, and overall.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pyarrow as pa

import cmio.views
from cmio.measures.adherence_dupes import duplicate_patients, patient_view, prepare_patients
from cmio.measures.ehr_use.inputs import split_resources
from cmio.measures.sqlengine import SqlEngine
from cmio.model import Model, load_model
from cmio.terminology.concepts import ConceptStore
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.ucum import Ucum

__all__ = [
    "ADHERENCE_OUTPUTS",
    "Standards",
    "check_codes",
    "check_units",
    "data_quality",
    "read_adherence",
]

ADHERENCE_OUTPUTS = (
    "coding", "codes", "code_issues", "required", "units", "unit_issues", "duplicates", "score",
)  # fmt: skip

LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
ICD10CM, RXNORM = "http://hl7.org/fhir/sid/icd-10-cm", "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX, CPT = "http://hl7.org/fhir/sid/cvx", "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
UCUM = "http://unitsofmeasure.org"

_ELEMENTS: Mapping[str, tuple[str, str, tuple[str, ...]]] = MappingProxyType(
    {
        "Condition.code": ("Condition", "code", (ICD10CM, SNOMED)),
        "Observation.code": ("Observation", "code", (LOINC,)),
        "Procedure.code": ("Procedure", "code", (SNOMED, CPT, HCPCS)),
        "MedicationRequest.medication": (
            "MedicationRequest", "medication.ofType(CodeableConcept)", (RXNORM,),
        ),
        "Immunization.vaccineCode": ("Immunization", "vaccineCode", (CVX,)),
        "AllergyIntolerance.code": ("AllergyIntolerance", "code", (SNOMED, RXNORM)),
        "DiagnosticReport.code": ("DiagnosticReport", "code", (LOINC,)),
        "ServiceRequest.code": ("ServiceRequest", "code", (LOINC, SNOMED, CPT)),
        "Encounter.type": ("Encounter", "type", (SNOMED, CPT)),
        "DocumentReference.type": ("DocumentReference", "type", (LOINC,)),
        "Claim.item.productOrService": (
            "Claim", "item.productOrService", (CPT, HCPCS, RXNORM, CVX),
        ),
    }
)  # fmt: skip
_EXTRA_REQUIRED: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "Patient": ("identifier", "name", "gender", "birthDate"),
        "Observation": ("subject", "effective"),
        "Encounter": ("subject", "period"),
    }
)


@dataclass(frozen=True, slots=True)
class Standards:
    """The organization's standards.

    Attributes:
        elements: element label -> (resource type, FHIRPath of its CodeableConcepts,
            standard code system URLs).
        required: extra required top-level elements by resource type (beyond the
            R4 minimum cardinalities).
        resource_types: the resource types whose required elements are checked.
    """

    elements: Mapping[str, tuple[str, str, tuple[str, ...]]] = field(
        default_factory=lambda: _ELEMENTS
    )
    required: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EXTRA_REQUIRED)
    resource_types: tuple[str, ...] = (
        "Patient", "Encounter", "Condition", "Observation", "Procedure", "MedicationRequest",
        "Immunization", "AllergyIntolerance", "DiagnosticReport", "ServiceRequest",
        "DocumentReference", "Claim", "ExplanationOfBenefit", "Coverage",
    )  # fmt: skip

    def required_elements(self, model: Model, resource_type: str) -> list[str]:
        """Top-level elements required in ``resource_type`` (base minimum >= 1 + extras)."""
        names = [e.name for e in model.types[resource_type].elements.values() if e.min >= 1]
        return list(dict.fromkeys([*names, *self.required.get(resource_type, ())]))


def _col(name: str, path: str, kind: str | None = None) -> dict[str, str]:
    out = {"name": name, "path": path}
    if kind:
        out["type"] = kind
    return out


def _views(standards: Standards, model: Model) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    base = [_col("id", "id"), _col("meta_source", "meta.source")]
    for rtype in standards.resource_types:
        checks = [
            _col(f"has_{name}", f"{name}.exists()", "boolean")
            for name in standards.required_elements(model, rtype)
        ]
        views[f"required:{rtype}"] = {"resourceType": "ViewDefinition", "resource": rtype,
                                      "select": [{"column": base + checks}]}  # fmt: skip
    for label, (rtype, path, _) in standards.elements.items():
        views[f"coded:{label}"] = {
            "resourceType": "ViewDefinition", "resource": rtype,
            "select": [{"column": base}, {
                "forEach": path, "column": [_col("cc_index", "%rowIndex")],
                "select": [{"forEachOrNull": "coding",
                            "column": [_col("system", "system"), _col("code", "code")]}],
            }],
        }  # fmt: skip
    quantity = [_col("unit", "unit"), _col("system", "system"), _col("code", "code")]
    views["quantities"] = {
        "resourceType": "ViewDefinition", "resource": "Observation",
        "select": [{"column": base}, {"unionAll": [
            {"forEach": "value.ofType(Quantity)", "column": quantity},
            {"forEach": "component.value.ofType(Quantity)", "column": quantity},
        ]}],
    }  # fmt: skip
    views["messages"] = {
        "resourceType": "ViewDefinition", "resource": "MessageHeader",
        "select": [{"column": [_col("sender", "source.name"),
                               _col("endpoint", "source.endpoint")]},
                   {"forEach": "focus", "column": [_col("focus_ref", "reference")]}],
    }  # fmt: skip
    views["patients"] = patient_view()
    return views


def read_adherence(
    source: Any,
    standards: Standards | None = None,
    *,
    model: Model | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, pa.Table]:
    """Run the adherence views over ``source`` on DuckDB into the input tables
    ``resources``, ``coded``, ``required`` (long), ``quantities``, ``messages``,
    ``patients``."""
    standards = standards or Standards()
    model = model or load_model()
    runner = cmio.views.DuckDbRunner(model)
    by_type = split_resources(source)
    resources: list[pa.Table] = []
    coded: list[pa.Table] = []
    required: dict[str, list[Any]] = {"resource_type": [], "id": [], "element": [], "present": []}
    out: dict[str, pa.Table] = {}
    for name, view in _views(standards, model).items():
        if progress is not None:
            progress(name)
        part = source if by_type is None else by_type.get(view["resource"], [])
        table = runner.run(view, part)
        kind, _, label = name.partition(":")
        rtype = view["resource"]
        if kind == "required":
            resources.append(_with(table.select(["id", "meta_source"]), resource_type=rtype))
            for column in table.column_names[2:]:
                n = table.num_rows
                required["resource_type"] += [rtype] * n
                required["id"] += table["id"].to_pylist()
                required["element"] += [column[4:]] * n
                required["present"] += table[column].to_pylist()
        elif kind == "coded":
            coded.append(_with(table, resource_type=rtype, element=label))
        else:
            out[name] = table
    out["resources"] = pa.concat_tables(resources) if resources else _empty_resources()
    out["coded"] = pa.concat_tables(coded) if coded else pa.table({})
    out["required"] = pa.table(
        required,
        schema=pa.schema([("resource_type", pa.string()), ("id", pa.string()),
                          ("element", pa.string()), ("present", pa.bool_())]),
    )  # fmt: skip
    out["quantities"] = _with(out["quantities"], resource_type="Observation")
    out["patients"] = prepare_patients(out["patients"])
    return out


def _empty_resources() -> pa.Table:
    names = ("id", "meta_source", "resource_type")
    return pa.schema([(n, pa.string()) for n in names]).empty_table()


def _with(table: pa.Table, **constants: str) -> pa.Table:
    for name, value in constants.items():
        table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
    return table


def check_codes(pairs: Iterable[tuple[str, str]], terminology: TerminologyResources) -> pa.Table:
    """Validate distinct (system, code) pairs, each code system resolved once; systems of
    the concept store are looked up in batches (:meth:`ConceptStore.lookup_many`).

    Returns:
        ``system, code, status, reason`` rows; status ``valid``, ``invalid``,
        ``deprecated`` or ``unchecked``.
    """
    by_system: dict[str, list[str]] = {}
    for system, code in pairs:
        by_system.setdefault(system, []).append(code)
    rows: dict[str, list[Any]] = {"system": [], "code": [], "status": [], "reason": []}
    store = terminology.concepts
    stored = {info.url for info in store.systems()} if store is not None else set()
    for system, codes in sorted(by_system.items()):
        if store is not None and system in stored:
            _check_stored(store, system, sorted(set(codes)), rows)
            continue
        source = terminology.code_system(system) if system else None
        content = source.resource.get("content", "complete") if source is not None else None
        # An unknown code is invalid only when the system's concepts are all known.
        complete = source is not None and (
            content in ("complete", None) or (content == "not-present" and source.count() > 0)
        )
        for code in sorted(set(codes)):
            entry = source.get(code) if source is not None else None
            if entry is not None and (
                entry.inactive or entry.status in ("retired", "deprecated", "inactive")
            ):
                status, reason = "deprecated", f"concept status {entry.status or 'inactive'}"
            elif entry is not None:
                status, reason = "valid", ""
            elif complete:
                status, reason = "invalid", f"unknown code in {system}"
            else:
                status, reason = "unchecked", "code system not available to the terminology service"
            for key, value in (("system", system), ("code", code), ("status", status),
                               ("reason", reason)):  # fmt: skip
                rows[key].append(value)
    return pa.table(rows, schema=pa.schema([(k, pa.string()) for k in rows]))


def _check_stored(
    store: ConceptStore, system: str, codes: list[str], rows: dict[str, list[Any]]
) -> None:
    """Codes of a concept-store system, looked up 500 at a time."""
    found = store.lookup_many(system, codes)
    for code in codes:
        concept = found.get(code)
        if concept is None:
            status, reason = "invalid", f"unknown code in {system}"
        elif not concept.active:
            status, reason = "deprecated", "inactive concept"
        else:
            status, reason = "valid", ""
        for key, value in (("system", system), ("code", code), ("status", status),
                           ("reason", reason)):  # fmt: skip
            rows[key].append(value)


def check_units(codes: Iterable[str], ucum: Ucum) -> pa.Table:
    """``code, reason`` for each distinct UCUM code (reason None when valid)."""
    distinct = sorted(set(codes))
    return pa.table(
        {"code": distinct, "reason": [ucum.validate(c) for c in distinct]},
        schema=pa.schema([("code", pa.string()), ("reason", pa.string())]),
    )


def data_quality(
    inputs: Mapping[str, pa.Table],
    engine: SqlEngine,
    terminology: TerminologyResources,
    standards: Standards | None = None,
    *,
    ucum: Ucum | None = None,
) -> dict[str, pa.Table]:
    """Compute the :data:`ADHERENCE_OUTPUTS` tables on ``engine``."""
    from cmio.measures import adherence_sql as q

    standards = standards or Standards()
    for name in ("resources", "coded", "required", "quantities", "messages", "patients"):
        engine.load(f"dq_{name}", inputs[name])
    rules = [(label, system) for label, (_, _, systems) in standards.elements.items()
             for system in systems]  # fmt: skip
    engine.load("dq_standard", pa.table({"element": [r[0] for r in rules],
                                         "system": [r[1] for r in rules]}))  # fmt: skip
    engine.create("dq_sources", q.SOURCES)
    pairs = engine.query(q.DISTINCT_CODES).to_pylist()
    engine.load("dq_checked", check_codes(((p["system"], p["code"]) for p in pairs), terminology))
    units = engine.query(q.DISTINCT_UNITS).to_pylist()
    engine.load("dq_ucum", check_units((u["code"] for u in units), ucum or Ucum()))
    out: dict[str, pa.Table] = {}
    for name, sql in q.TABLES.items():
        engine.create(f"dq_out_{name}", sql)
        out[name] = engine.query(f"SELECT * FROM dq_out_{name} ORDER BY {q.ORDER[name]}")
    out["duplicates"] = duplicate_patients(engine)
    out["score"] = engine.query(q.SCORE)
    return {name: out[name] for name in ADHERENCE_OUTPUTS}
