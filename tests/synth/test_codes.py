"""Every coded element is a real code of its system.

ICD-10-CM codes must be billable (leaf) codes of the 2026 release shipped by PyPI
``simple-icd-10-cm``; HL7 terminology codes must exist in the code systems of the
FHIR R4 package cmio ships; SNOMED CT, LOINC, RxNorm, CVX, CPT, HCPCS, NUCC and
CDC race/ethnicity codes must come from the curated tables of ``cmio.synth`` (with
the same display); units must be UCUM units from a short allowed list.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import pytest

from cmio.model.package import find_package_tarball, iter_package_resources
from cmio.synth import clinical_codes, codes
from cmio.synth.activity import ACTIVITY_CLASSES, ACTIVITY_SYSTEM

from .conftest import Generated

CURATED_SYSTEMS = {
    codes.SNOMED, codes.LOINC, codes.RXNORM, codes.CVX, codes.CPT, codes.HCPCS, codes.NUCC,
    codes.CDCREC, codes.ICD10CM,
}  # fmt: skip
UCUM_UNITS = {"mm[Hg]", "/min", "Cel", "%", "kg", "cm", "kg/m2", "mg/dL", "mmol/L", "g/dL",
              "10*3/uL", "mg/g", "{score}"}  # fmt: skip
OTHER_SYSTEMS = {
    "http://dicom.nema.org/resources/ontology/DCM": {"110152", "110153"},
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category": {"clinical-note"},
    "urn:ietf:bcp:47": {"en-US", "es"},
    ACTIVITY_SYSTEM: set(ACTIVITY_CLASSES),
}


def _codes_in(value: Any, seen: set[int]) -> Iterator[codes.Code]:
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, codes.Code):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _codes_in(getattr(value, f.name), seen)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _codes_in(v, seen)
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _codes_in(v, seen)


def curated() -> dict[str, dict[str, str]]:
    """system -> code -> display, from every table of the synth code modules."""
    out: dict[str, dict[str, str]] = {}
    seen: set[int] = set()
    modules: tuple[ModuleType, ...] = (codes, clinical_codes)
    for module in modules:
        for name in dir(module):
            if name.isupper():
                for code in _codes_in(getattr(module, name), seen):
                    out.setdefault(code.system, {})[code.code] = code.display
    return out


def hl7_code_systems() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def walk(concepts: list[dict[str, Any]] | None, into: set[str]) -> None:
        for concept in concepts or []:
            into.add(concept["code"])
            walk(concept.get("concept"), into)

    for cs in iter_package_resources(find_package_tarball(), {"CodeSystem"}):
        walk(cs.get("concept"), out.setdefault(cs["url"], set()))
    return out


def codings(value: Any) -> Iterator[dict[str, Any]]:
    """Every Coding (and coded Quantity) in a resource."""
    if isinstance(value, dict):
        if "system" in value and "code" in value:
            yield value
        for v in value.values():
            yield from codings(v)
    elif isinstance(value, list):
        for v in value:
            yield from codings(v)


def icd10cm_billable(code: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package uses deprecated importlib.resources calls
        import simple_icd_10_cm as cm  # type: ignore[import-untyped]

        return bool(cm.is_valid_item(code) and cm.is_leaf(code))


def test_curated_icd10cm_codes_are_billable_2026() -> None:
    table = curated()[codes.ICD10CM]
    assert len(table) >= 50
    invalid = sorted(code for code in table if not icd10cm_billable(code))
    assert not invalid


def test_curated_codes_are_well_formed() -> None:
    table = curated()
    assert all(c.isdigit() and 6 <= len(c) <= 18 for c in table[codes.SNOMED])
    assert all(c.count("-") == 1 and c.replace("-", "").isdigit() for c in table[codes.LOINC])
    assert all(c.isdigit() for c in table[codes.RXNORM])
    assert all(c.isdigit() and len(c) <= 3 for c in table[codes.CVX])
    assert all(len(c) == 5 for c in table[codes.CPT])
    assert all(len(c) == 10 and c.endswith("X") for c in table[codes.NUCC])


@pytest.fixture(scope="module")
def used(generated: Generated) -> dict[tuple[str, str], tuple[str | None, bool]]:
    """(system, code) -> (display, is a Quantity) of every coding in the output."""
    out: dict[tuple[str, str], tuple[str | None, bool]] = {}
    for resources in generated.by_type.values():
        for resource in resources:
            for coding in codings(resource):
                out[(coding["system"], coding["code"])] = (coding.get("display"), "value" in coding)
    return out


def test_every_code_is_valid(used: dict[tuple[str, str], tuple[str | None, bool]]) -> None:
    table = curated()
    hl7 = hl7_code_systems()
    bad: list[str] = []
    systems: set[str] = set()
    for (system, code), (display, quantity) in sorted(used.items()):
        systems.add(system)
        if quantity or system == codes.UCUM:
            ok = system == codes.UCUM and code in UCUM_UNITS
        elif system in CURATED_SYSTEMS:
            ok = code in table.get(system, {}) and display in (None, table[system][code])
            if system == codes.ICD10CM:
                ok = ok and icd10cm_billable(code)
        elif system in OTHER_SYSTEMS:
            ok = code in OTHER_SYSTEMS[system]
        else:
            ok = code in hl7.get(system, set())
        if not ok:
            bad.append(f"{system}|{code}|{display}")
    assert not bad
    assert {
        codes.SNOMED,
        codes.LOINC,
        codes.RXNORM,
        codes.CVX,
        codes.ICD10CM,
        codes.CPT,
        codes.UCUM,
    } <= systems


def test_conditions_have_icd10cm_and_snomed(generated: Generated) -> None:
    for condition in generated.by_type["Condition"]:
        systems = {c["system"] for c in condition["code"]["coding"]}
        assert {codes.SNOMED, codes.ICD10CM} <= systems
