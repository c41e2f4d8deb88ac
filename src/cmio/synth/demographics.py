"""Patients: demographics, identifiers, address, insurance and death.

Age and sex follow the 2020 US Census pyramid, race and ethnicity the 2020 Census
shares (US Core race/ethnicity/birth-sex extensions,
https://hl7.org/fhir/us/core/StructureDefinition-us-core-patient.html), insurance
the age-specific US mix (Census CPS ASEC 2023: 92% of 65+ on Medicare; ~40% of
children and ~15% of adults under 65 on Medicaid; 8% uninsured), deaths the CDC
life table.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from cmio.synth.codes import ETHNICITIES, RACES, Code
from cmio.synth.ids import Clock, IdMaker
from cmio.synth.system import MRN_SYSTEM, Clinician, HealthSystem, Payer
from cmio.synth.tables import (
    AGE_BANDS,
    ASIAN_SURNAMES,
    CITIES,
    FEMALE_NAMES,
    HISPANIC_SURNAMES,
    MALE_NAMES,
    MORTALITY,
    STATE,
    STREETS,
    SURNAMES,
    band_value,
)

__all__ = ["Person", "make_person", "patient_resources"]

_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
_RACE_WEIGHTS = tuple(w for _, w in RACES)
_RACE_CODES = tuple(c for c, _ in RACES)
_BAND_WEIGHTS = tuple(b[2] for b in AGE_BANDS)
_CITY_WEIGHTS = tuple(c[2] for c in CITIES)


@dataclass(slots=True)
class Person:
    """A generated patient's identity and fixed attributes.

    Attributes:
        index: patient number in the run. id: Patient id. female: sex.
        birth: birth date. age: age in whole years at the end of the simulation.
        races: OMB race codes. hispanic: ethnicity. given/family: name.
        mrn: medical record number. city/zip: home. payer: insurer.
        coverage_id: Coverage id. pcp: primary care clinician.
        death_day: simulation day of death, or None.
    """

    index: int
    id: str
    female: bool
    birth: date
    age: int
    races: tuple[Code, ...]
    hispanic: bool
    given: str
    family: str
    mrn: str
    city: str
    zip: str
    payer: Payer
    coverage_id: str
    pcp: Clinician
    death_day: int | None

    def age_on(self, clock: Clock, day: int) -> float:
        """Age in years on a simulation day."""
        return (clock.day_of(self.birth) * -1 + day) / 365.25

    @property
    def ref(self) -> dict[str, str]:
        """Reference to the Patient."""
        return {"reference": f"Patient/{self.id}"}


def _payer(rng: random.Random, system: HealthSystem, age: int) -> Payer:
    r = rng.random()
    p = system.payers
    if age >= 65:
        return p["medicare"] if r < 0.93 else p["summit"] if r < 0.98 else p["medicaid"]
    medicaid = 0.40 if age < 19 else 0.15
    uninsured = 0.05 if age < 19 else 0.10
    if r < medicaid:
        return p["medicaid"]
    if r < medicaid + uninsured:
        return p["self"]
    r2 = rng.random()
    return p["summit"] if r2 < 0.5 else p["lakeshore"] if r2 < 0.85 else p["marketplace"]


def make_person(
    rng: random.Random, index: int, pid: str, ids: IdMaker, system: HealthSystem, clock: Clock
) -> Person:
    """Draw one patient's demographics (``rng`` is the patient's own generator)."""
    lo, hi, _, female_share = rng.choices(AGE_BANDS, _BAND_WEIGHTS)[0]
    age = rng.randint(lo, hi)
    female = rng.random() < female_share
    birth = clock.end - timedelta(days=age * 365 + rng.randrange(365))
    if rng.random() < 0.10:  # two or more races
        races = tuple(rng.choices(_RACE_CODES, _RACE_WEIGHTS, k=2))
        if races[0] == races[1]:
            races = races[:1]
    else:
        races = (rng.choices(_RACE_CODES, _RACE_WEIGHTS)[0],)
    hispanic = rng.random() < 0.187
    if hispanic and rng.random() < 0.8:
        family = rng.choice(HISPANIC_SURNAMES)
    elif races[0].code == "2028-9" and rng.random() < 0.8:
        family = rng.choice(ASIAN_SURNAMES)
    else:
        family = rng.choice(SURNAMES)
    given = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
    city, zips, _ = rng.choices(CITIES, _CITY_WEIGHTS)[0]
    dept = "pediatrics" if age < 18 else ("internal" if rng.random() < 0.2 else "primary")
    death_day = None
    years = clock.days / 365.25
    for year in range(math.ceil(years)):
        exposure = min(1.0, years - year)  # the last year may be partial
        q = band_value(MORTALITY, max(0, age - math.ceil(years) + 1 + year)) * exposure
        q *= 0.8 if female else 1.2
        if rng.random() < q:
            death_day = min(clock.days - 1, year * 365 + rng.randrange(max(1, int(365 * exposure))))
            break
    return Person(
        index,
        pid,
        female,
        birth,
        age,
        races,
        hispanic,
        given,
        family,
        f"RB{index + 1:08d}",
        city,
        rng.choice(zips),
        _payer(rng, system, age),
        ids(),
        system.pick(dept, rng),
        death_day,
    )


def _race_extension(person: Person) -> dict[str, Any]:
    ext: list[dict[str, Any]] = [
        {"url": "ombCategory", "valueCoding": c.coding} for c in person.races
    ]
    ext.append({"url": "text", "valueString": " and ".join(c.display for c in person.races)})
    return {"url": f"{_US_CORE}/us-core-race", "extension": ext}


def _ethnicity_extension(person: Person) -> dict[str, Any]:
    code = ETHNICITIES[0 if person.hispanic else 1]
    return {
        "url": f"{_US_CORE}/us-core-ethnicity",
        "extension": [
            {"url": "ombCategory", "valueCoding": code.coding},
            {"url": "text", "valueString": code.display},
        ],
    }


def patient_resources(
    rng: random.Random, person: Person, system: HealthSystem, clock: Clock
) -> list[dict[str, Any]]:
    """The Patient (US Core shape) and its Coverage (https://hl7.org/fhir/R4/coverage.html)."""
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": person.id,
        "extension": [
            _race_extension(person),
            _ethnicity_extension(person),
            {"url": f"{_US_CORE}/us-core-birthsex", "valueCode": "F" if person.female else "M"},
        ],
        "identifier": [
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": _V2_0203, "code": "MR", "display": "Medical record number"}
                    ]
                },
                "system": MRN_SYSTEM,
                "value": person.mrn,
                "assigner": {"reference": f"Organization/{system.org_id}"},
            },
            {
                "type": {
                    "coding": [
                        {"system": _V2_0203, "code": "SS", "display": "Social Security number"}
                    ]
                },
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
            },
        ],
        "name": [{"use": "official", "family": person.family, "given": [person.given]}],
        "telecom": [
            {"system": "phone", "value": f"614-555-{rng.randint(100, 199):04d}", "use": "home"}
        ],
        "gender": "female" if person.female else "male",
        "birthDate": person.birth.isoformat(),
        "address": [
            {
                "use": "home",
                "line": [f"{rng.randint(10, 9999)} {rng.choice(STREETS)}"],
                "city": person.city,
                "state": STATE,
                "postalCode": person.zip,
                "country": "US",
            }
        ],
        "communication": [
            {
                "language": {
                    "coding": [
                        {
                            "system": "urn:ietf:bcp:47",
                            "code": "es" if person.hispanic and rng.random() < 0.3 else "en-US",
                        }
                    ]
                }
            }
        ],
        "generalPractitioner": [person.pcp.reference],
        "managingOrganization": {"reference": f"Organization/{system.org_id}"},
    }
    if person.age >= 18:
        status = rng.choices("MSDW", (0.5, 0.33, 0.1, 0.07))[0]
        patient["maritalStatus"] = {"coding": [{"system": _MARITAL, "code": status}]}
    if person.death_day is not None:
        patient["deceasedDateTime"] = clock.instant(person.death_day * 1440 + rng.randrange(1440))
    payer = person.payer
    coverage: dict[str, Any] = {
        "resourceType": "Coverage",
        "id": person.coverage_id,
        "status": "active",
        "type": _coverage_type(payer),
        "subscriberId": f"{payer.key[:3].upper()}{rng.randrange(10**9):09d}",
        "beneficiary": person.ref,
        "relationship": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                    "code": "self" if person.age >= 26 or payer.kind != "commercial" else "child",
                }
            ]
        },
        "period": {"start": clock.date(0)},
        "payor": [
            person.ref
            if payer.kind == "self"
            else {"reference": f"Organization/{payer.org_id}", "display": payer.name}
        ],
    }
    if payer.kind != "self":
        coverage["class"] = [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                            "code": "plan",
                        }
                    ]
                },
                "value": f"{payer.key.upper()}-STD",
                "name": f"{payer.name} standard plan",
            }
        ]
    return [patient, coverage]


def _coverage_type(payer: Payer) -> dict[str, Any]:
    if payer.kind == "self":
        return {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/coverage-selfpay",
                    "code": "pay",
                    "display": "Pay",
                }
            ]
        }
    code, display = {
        "medicare": ("SUBSIDIZ", "subsidized health program"),
        "medicaid": ("SUBSIDIZ", "subsidized health program"),
    }.get(payer.kind, ("HIP", "health insurance plan policy"))
    return {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": code,
                "display": display,
            }
        ]
    }
