"""The health system: organizations, sites, departments, clinicians, payers, devices.

Built deterministically from the seed and the number of patients (the workforce
scales with the population, see :class:`cmio.synth.codes.Specialty`). Each
clinician gets a weekly clinic template and EHR work-style parameters that drive
the generated audit trail: after-hours propensity, inbox load, share of orders
entered by the care team. Resources follow FHIR R4 Organization, Location,
Practitioner, PractitionerRole and Schedule (https://hl7.org/fhir/R4/).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cmio.synth.codes import NP_TAXONOMY, NURSE_TAXONOMY, SPECIALTIES, Specialty
from cmio.synth.ids import uuid5
from cmio.synth.tables import CITIES, FEMALE_NAMES, MALE_NAMES, STATE, STREETS, SURNAMES

__all__ = ["SYSTEM_NAME", "Clinician", "HealthSystem", "Payer", "Site", "build_system"]

SYSTEM_NAME = "Riverbend Health"
BASE_URL = "https://riverbend-health.example.org"
MRN_SYSTEM = f"{BASE_URL}/fhir/sid/mrn"
_ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
_HOSPITAL_DEPTS = frozenset(
    {"emergency", "inpatient", "radiology", "cardiology", "endocrinology", "pulmonology",
     "gastroenterology", "oncology", "obstetrics", "psychiatry"}
)  # fmt: skip
_CLINIC_DEPTS = frozenset({"primary", "internal", "pediatrics"})
SESSION_HOURS = ((8 * 60, 12 * 60), (13 * 60, 17 * 60))
"""Clinic session windows (morning, afternoon), minutes after midnight."""


@dataclass(frozen=True, slots=True)
class Site:
    """A hospital or clinic with its departments.

    Attributes:
        name: site name.
        hospital: whether it is a hospital (else an outpatient clinic).
        org_id: Organization id of the site.
        location_id: Location id of the site.
        city: city of the site.
        zip: ZIP code.
        departments: department key -> (Organization id, Location id).
    """

    name: str
    hospital: bool
    org_id: str
    location_id: str
    city: str
    zip: str
    departments: Mapping[str, tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Clinician:
    """A physician, nurse practitioner or nurse, with work-style parameters.

    Attributes:
        id: Practitioner id. role_id: PractitionerRole id. schedule_id: Schedule id.
        dept: specialty key. site: site index. name: (given, family). npi: NPI-like number.
        kind: ``physician``, ``np`` or ``nurse``.
        sessions: 10 flags, weekday*2 + (0 morning, 1 afternoon): clinic sessions.
        after_hours: probability that a documentation/inbox task slips outside hours.
        inbox_load: multiplier of patient messages and result notifications.
        team_orders: share of orders entered by the team nurse on the clinician's behalf.
        note_minutes: typical minutes to write a note.
        device: workstation id.
        nurse: index of the team nurse (self for nurses).
        index: position in :attr:`HealthSystem.clinicians`.
    """

    id: str
    role_id: str
    schedule_id: str
    dept: str
    site: int
    name: tuple[str, str]
    npi: str
    kind: str
    sessions: tuple[bool, ...]
    after_hours: float
    inbox_load: float
    team_orders: float
    note_minutes: float
    device: str
    nurse: int
    index: int

    display: str = field(init=False)
    """Display name with credentials."""
    reference: dict[str, str] = field(init=False, compare=False)
    """A FHIR Reference to the Practitioner (a shared template: don't mutate)."""

    def __post_init__(self) -> None:
        suffix = {"physician": "MD", "np": "NP", "nurse": "RN"}[self.kind]
        display = f"{self.name[0]} {self.name[1]}, {suffix}"
        object.__setattr__(self, "display", display)
        object.__setattr__(
            self, "reference", {"reference": f"Practitioner/{self.id}", "display": display}
        )


@dataclass(frozen=True, slots=True)
class Payer:
    """An insurer (or self-pay): Organization id, kind and adjudication parameters.

    Attributes:
        key: short name. name: display name. org_id: Organization id.
        kind: ``medicare``, ``medicaid``, ``commercial`` or ``self``.
        allowed: share of charges allowed. patient_share: coinsurance after copay.
        copay: office-visit copay in dollars.
    """

    key: str
    name: str
    org_id: str
    kind: str
    allowed: float
    patient_share: float
    copay: float


_PAYERS = (
    ("medicare", "Medicare (CMS)", "medicare", 0.32, 0.20, 0.0),
    ("medicaid", "Ohio Medicaid", "medicaid", 0.27, 0.0, 0.0),
    ("summit", "Summit Mutual Health Plan", "commercial", 0.55, 0.20, 30.0),
    ("lakeshore", "Lakeshore Benefit Cooperative", "commercial", 0.50, 0.15, 25.0),
    ("marketplace", "Scioto Marketplace Health", "commercial", 0.48, 0.30, 45.0),
    ("self", "Self-pay", "self", 0.60, 1.0, 0.0),
)


@dataclass(frozen=True, slots=True)
class HealthSystem:
    """The generated health system (shared by all patients of a run)."""

    seed: int
    org_id: str
    sites: tuple[Site, ...]
    clinicians: tuple[Clinician, ...]
    by_dept: Mapping[str, tuple[int, ...]]
    payers: Mapping[str, Payer]
    ehr_device_id: str

    def pick(self, dept: str, rng: random.Random) -> Clinician:
        """A physician/NP of a department, chosen with ``rng``."""
        pool = self.by_dept[dept]
        return self.clinicians[pool[rng.randrange(len(pool))]]

    def dept_ids(self, clinician: Clinician) -> tuple[str, str]:
        """(Organization id, Location id) of the clinician's department."""
        return self.sites[clinician.site].departments[clinician.dept]

    def resources(self) -> Iterator[dict[str, Any]]:
        """Every resource of the system itself (see :func:`cmio.synth.system_fhir`)."""
        from cmio.synth.system_fhir import system_resources

        return system_resources(self)


def _sid(seed: int, path: str) -> str:
    return uuid5(f"cmio-synth/{seed}/system/{path}")


def _sessions(rng: random.Random, count: int) -> tuple[bool, ...]:
    flags = [False] * 10
    for i in rng.sample(range(10), count):
        flags[i] = True
    return tuple(flags)


def _workstyle(rng: random.Random) -> tuple[float, float, float, float]:
    # After-hours propensity: lognormal around 0.2 with a heavy tail (a few "pajama time"
    # heavy users); Arndt et al., Ann Fam Med 2017: 1.4 of 5.9 EHR hours after hours.
    after = min(0.5, max(0.02, math.exp(rng.gauss(math.log(0.2), 0.6))))
    inbox = math.exp(rng.gauss(0.0, 0.5))
    team = rng.uniform(0.05, 0.6)
    note = math.exp(rng.gauss(math.log(9.0), 0.35))
    return after, inbox, team, note


def build_system(seed: int, n_patients: int) -> HealthSystem:
    """Build the health system for a run of ``n_patients`` patients.

    Args:
        seed: the run's seed.
        n_patients: number of patients (sizes the workforce and the sites).

    Returns:
        The health system.
    """
    rng = random.Random(f"system/{seed}")
    n_hospitals = max(1, min(6, round(n_patients / 40_000)))
    n_clinics = max(2, min(30, n_patients // 8_000))
    cities = [c for c in CITIES]
    sites: list[Site] = []
    for i in range(n_hospitals + n_clinics):
        hospital = i < n_hospitals
        city, zips, _ = cities[i % len(cities)]
        label = (
            f"{SYSTEM_NAME} {city} Medical Center"
            if hospital
            else f"{SYSTEM_NAME} {city} Family Health Center"
        )
        if i >= len(cities):
            label += f" {i // len(cities) + 1}"
        depts = sorted(_HOSPITAL_DEPTS if hospital else _CLINIC_DEPTS)
        departments = {
            d: (_sid(seed, f"site{i}/{d}/org"), _sid(seed, f"site{i}/{d}/loc")) for d in depts
        }
        sites.append(
            Site(
                label,
                hospital,
                _sid(seed, f"site{i}/org"),
                _sid(seed, f"site{i}/loc"),
                city,
                zips[0],
                MappingProxyType(departments),
            )
        )
    clinicians: list[Clinician] = []
    by_dept: dict[str, list[int]] = {}
    for spec in SPECIALTIES:
        hosts = [i for i, s in enumerate(sites) if spec.key in s.departments]
        count = max(spec.minimum, round(spec.per_10k * n_patients / 10_000))
        team_nurses: dict[int, int] = {}
        for host in hosts:  # one nurse per department site (more in big systems)
            team_nurses[host] = len(clinicians)
            clinicians.append(_clinician(rng, seed, spec, host, len(clinicians), "nurse", -1))
        for k in range(count):
            host = hosts[k % len(hosts)]
            kind = "np" if spec.key == "primary" and k % 5 == 4 else "physician"
            index = len(clinicians)
            by_dept.setdefault(spec.key, []).append(index)
            clinicians.append(_clinician(rng, seed, spec, host, index, kind, team_nurses[host]))
    payers = {
        key: Payer(key, name, _sid(seed, f"payer/{key}"), kind, allowed, share, copay)
        for key, name, kind, allowed, share, copay in _PAYERS
    }
    return HealthSystem(
        seed,
        _sid(seed, "org"),
        tuple(sites),
        tuple(clinicians),
        MappingProxyType({k: tuple(v) for k, v in by_dept.items()}),
        MappingProxyType(payers),
        _sid(seed, "device/ehr"),
    )


def _clinician(
    rng: random.Random, seed: int, spec: Specialty, site: int, index: int, kind: str, nurse: int
) -> Clinician:
    female = rng.random() < (0.9 if kind == "nurse" else 0.45)
    given = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
    family = rng.choice(SURNAMES)
    after, inbox, team, note = _workstyle(rng)
    hospital_based = spec.key in ("emergency", "inpatient", "radiology")
    sessions = (False,) * 10 if hospital_based else _sessions(rng, rng.randint(6, 9))
    return Clinician(
        _sid(seed, f"clinician{index}"),
        _sid(seed, f"clinician{index}/role"),
        _sid(seed, f"clinician{index}/schedule"),
        spec.key,
        site,
        (given, family),
        npi(rng),
        kind,
        sessions,
        after,
        inbox,
        team,
        note,
        f"WS-{site:02d}-{index:04d}",
        index if kind == "nurse" else nurse,
        index,
    )


def npi(rng: random.Random) -> str:
    """A 10-digit NPI-shaped number with a valid check digit (Luhn over ``80840`` + 9 digits,
    CMS NPI check digit standard); synthetic, not an issued NPI."""
    base = f"1{rng.randrange(10**8):08d}"
    total = 0
    for i, ch in enumerate(reversed("80840" + base)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return f"{base}{(10 - total % 10) % 10}"


def taxonomy(spec: Specialty, kind: str) -> Any:
    """The NUCC taxonomy code of a clinician of ``kind`` in ``spec``."""
    return {"nurse": NURSE_TAXONOMY, "np": NP_TAXONOMY}.get(kind, spec.nucc)


def address(rng: random.Random, city: str, zip_code: str) -> dict[str, Any]:
    """A US postal address in ``city`` (FHIR Address, https://hl7.org/fhir/R4/datatypes.html#Address)."""
    return {
        "use": "work",
        "line": [f"{rng.randint(100, 9999)} {rng.choice(STREETS)}"],
        "city": city,
        "state": STATE,
        "postalCode": zip_code,
        "country": "US",
    }
