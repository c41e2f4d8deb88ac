"""The encounters of a care plan: :class:`Event`, and one visit or series of visits each.

:mod:`cmio.synth.care` lays these out over the simulated period: preventive visits
(AAP/CDC immunization schedules), unplanned admissions, pregnancy (prenatal visits,
delivery, postpartum), specialist follow-up and cancer screening (USPSTF intervals,
https://www.uspreventiveservicestaskforce.org/uspstf/recommendation-topics).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from cmio.synth.disease import Profile

__all__ = [
    "Event",
    "acute_meds",
    "admission",
    "cancer_screening",
    "pregnancy",
    "specialist_visits",
    "weighted",
    "wellness_visit",
]

_CANCERS = ("breast_ca", "colon_ca", "prostate_ca", "lung_ca")
_ADMIT: tuple[tuple[str, float], ...] = (
    ("pneumonia", 3),
    ("sepsis", 1.5),
    ("cellulitis", 1),
    ("aki", 0.8),
)
_SCHOOL_VACCINES = {4: ("dtap", "ipv", "mmr", "varicella"), 11: ("tdap", "hpv", "menacwy"),
                    12: ("hpv",), 16: ("menacwy",)}  # fmt: skip


@dataclass(slots=True)
class Event:
    """One encounter to generate.

    Attributes:
        day: simulation day. kind: a :data:`~cmio.synth.clinical_codes.VISITS` key.
        dept: department (specialty key). reasons: diagnosis keys, primary first.
        labs: panel keys. procs: procedure keys. vaccines: vaccine keys.
        meds: drug keys prescribed. new_dx: problem-list conditions diagnosed here.
        los: nights in hospital. phq9: PHQ-9 administered. dies: the patient dies
        at the end of the stay. resolves: condition keys closed at this encounter.
        via_ed: an admission that starts with an emergency department visit.
    """

    day: int
    kind: str
    dept: str
    reasons: list[str] = field(default_factory=list)
    labs: list[str] = field(default_factory=list)
    procs: list[str] = field(default_factory=list)
    vaccines: list[str] = field(default_factory=list)
    meds: list[str] = field(default_factory=list)
    new_dx: list[str] = field(default_factory=list)
    los: int = 0
    phq9: bool = False
    dies: bool = False
    resolves: list[str] = field(default_factory=list)
    via_ed: bool = False


def weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    """A key of ``table`` drawn with the weights given beside each."""
    return rng.choices([k for k, _ in table], [w for _, w in table])[0]


def wellness_visit(
    rng: random.Random, profile: Profile, age: float, female: bool, day: int
) -> Event:
    """A preventive visit for the age: vaccines (AAP/CDC schedule), PHQ-9, screening labs
    (lipids, A1c, FIT per USPSTF intervals) and adult vaccines.
    """
    if age < 5:
        kind = "wellness_child"
    elif age < 12:
        kind = "wellness_school"
    elif age < 18:
        kind = "wellness_teen"
    elif age < 40:
        kind = "wellness_young"
    else:
        kind = "wellness_adult" if age < 65 else "wellness_senior"
    ev = Event(day, kind, "pediatrics" if age < 18 else "primary")
    ev.reasons.append("checkup_child" if age < 18 else "checkup_adult")
    ev.vaccines.extend(v for a, vs in _SCHOOL_VACCINES.items() if int(age) == a for v in vs)
    if age >= 12:
        ev.phq9 = rng.random() < 0.75
    if age >= 18:
        if age >= 40 or "hld" in profile.onset:
            ev.labs.append("lipid")
        if age >= 35 and profile.bmi >= 25 and "t2dm" not in profile.onset:
            ev.labs.append("a1c")
        if rng.random() < 0.5:
            ev.labs.append("cbc")
        if 45 <= age <= 75 and profile.use_fit and rng.random() < profile.screening:
            ev.labs.append("fit")
        if rng.random() < 0.08:
            ev.vaccines.append("tdap")
        if age >= 50 and rng.random() < 0.15:
            ev.vaccines.append("zoster")
        if age >= 65 and rng.random() < 0.2:
            ev.vaccines.append("ppsv23")
    return ev


def acute_meds(rng: random.Random, reason: str) -> list[str]:
    """The drugs prescribed at an acute visit for ``reason`` (often none)."""
    if reason in ("strep", "otitis"):
        return ["amoxicillin" if rng.random() < 0.7 else "penicillin_v"]
    if reason in ("sinusitis", "cellulitis") or (reason == "uti" and rng.random() < 0.5):
        return ["amox_clav"]
    if reason in ("back_pain", "ankle_sprain", "migraine"):
        return ["ibuprofen" if rng.random() < 0.6 else "naproxen"]
    if reason in ("wrist_fracture", "concussion"):
        return ["acetaminophen"] if rng.random() < 0.7 else ["oxycodone_apap"]
    if reason in ("asthma_exac", "copd_exac"):
        return ["prednisone"]
    if reason in ("uri", "influenza", "covid") and rng.random() < 0.3:
        return ["acetaminophen"]
    if reason == "dermatitis":
        return ["cetirizine"]
    return []


def admission(rng: random.Random, profile: Profile, day: int, age: float) -> Event:
    """An unplanned admission: the cause (weighted by the chronic conditions), length of
    stay, whether it starts in the emergency department, prophylaxis and imaging.
    """
    options = list(_ADMIT)
    for key, cause, w in (("hf", "hf", 3.0), ("copd", "copd_exac", 3.0), ("cad", "mi", 1.5),
                          ("htn", "stroke", 0.6), ("afib", "stroke", 1.0)):  # fmt: skip
        if key in profile.onset:
            options.append((cause, w))
    if age >= 70:
        options.append(("hip_fracture", 0.8))
    reason = weighted(rng, tuple(options))
    los = max(1, min(14, int(rng.expovariate(1 / 3.5)) + 1))
    ev = Event(day, "inpatient", "inpatient", [reason], labs=["cbc", "bmp"], los=los)
    ev.via_ed = reason != "hip_fracture" or rng.random() < 0.9
    ev.via_ed = ev.via_ed and rng.random() < 0.75  # ~ 3 in 4 unplanned admissions come via the ED
    ev.meds.append("enoxaparin")
    if reason in ("pneumonia", "copd_exac"):
        ev.procs.append("chest_xray")
    if reason in ("mi", "hf", "stroke"):
        ev.procs.append("ecg")
    return ev


def pregnancy(rng: random.Random, events: list[Event], conception: int, days: int) -> None:
    """Append prenatal visits (ACOG schedule), the delivery and the postpartum visit."""
    for week in (8, 12, 16, 20, 24, 28, 30, 32, 34, 36, 37, 38, 39):
        day = conception + week * 7 + rng.randrange(-2, 3)
        ev = Event(day, "prenatal", "obstetrics", ["pregnancy"])
        if week == 8:
            ev.procs.append("fetal_us")
            ev.new_dx.append("pregnancy")
            ev.labs.append("cbc")
        if week == 28:
            ev.vaccines.append("tdap")
        events.append(ev)
    birth = conception + 273 + rng.randrange(-10, 8)
    events.append(Event(birth, "inpatient", "obstetrics", ["delivery"], procs=["delivery"],
                        los=rng.randint(1, 3), resolves=["pregnancy"]))  # fmt: skip
    events.append(Event(birth + 42, "prenatal", "obstetrics", ["postpartum"], phq9=True))


def specialist_visits(
    rng: random.Random,
    profile: Profile,
    events: list[Event],
    days: int,
    age_at: Callable[[int], float],
) -> None:
    """Append specialist follow-up (endocrinology, cardiology, pulmonology, psychiatry,
    oncology) at intervals set by the condition, from its onset to the end."""
    plans: list[tuple[str, str, int, list[str]]] = []
    onset = profile.onset
    if "t2dm" in onset and profile.a1c_control == "poor":
        plans.append(("t2dm", "endocrinology", 180, ["a1c"]))
    for key in ("cad", "hf", "afib"):
        if key in onset:
            plans.append((key, "cardiology", 200, []))
            break
    if "copd" in onset:
        plans.append(("copd", "pulmonology", 300, []))
    if "depression" in onset and profile.phq9 >= 15:
        plans.append(("depression", "psychiatry", 75, []))
    for key in _CANCERS:
        if key in onset:
            plans.append((key, "oncology", 30 if onset[key] > -365 else 120, ["cbc"]))
    for key, dept, interval, labs in plans:
        day = max(0, onset[key]) + rng.randrange(interval)
        while day < days:
            ev = Event(day, "specialist", dept, [key], labs=list(labs))
            if key == "copd" and rng.random() < 0.6:
                ev.procs.append("spirometry")
            if dept == "oncology" and onset[key] > -365:
                ev.procs.append("chemo")
                ev.reasons.insert(0, "chemo")
            if dept == "cardiology":
                ev.procs.append("ecg")
            if dept == "psychiatry":
                ev.phq9 = True
            events.append(ev)
            day += int(interval * rng.uniform(0.8, 1.3))


def cancer_screening(
    rng: random.Random,
    profile: Profile,
    events: list[Event],
    days: int,
    age_at: Callable[[int], float],
    female: bool,
) -> None:
    """Append screening mammograms (USPSTF: biennial, 50-74) and colonoscopies
    (45-75, every 10 years) with the patient's adherence."""
    at = age_at
    # USPSTF: biennial mammography 50-74 (NHIS 2021: ~ 76% up to date)
    if female:
        due = (profile.last_mammogram or -rng.randrange(0, 900)) + 730
        while due < days:
            delay = int(rng.expovariate(1 / (30 + 400 * (1 - profile.screening))))
            day = max(0, due + delay)
            if day < days and 50 <= at(day) <= 74 and rng.random() < profile.screening:
                events.append(
                    Event(day, "procedure", "radiology", ["screen_mammo"], procs=["mammography"])
                )
                due = day + 730
            else:
                due += 365
    # USPSTF: colorectal screening 45-75; colonoscopy every 10 years (FIT yearly at wellness)
    if not profile.use_fit:
        last = profile.last_colonoscopy
        due = (last + 3650) if last is not None else rng.randrange(0, 3 * 365)
        if due < days and 45 <= at(max(0, due)) <= 75 and rng.random() < profile.screening:
            day = max(0, due + int(rng.expovariate(1 / 120)))
            if day < days:
                ev = Event(
                    day, "procedure", "gastroenterology", ["screen_colon"], procs=["colonoscopy"]
                )
                if rng.random() < 0.3:
                    ev.reasons.append("colon_polyp")
                events.append(ev)
