"""Care planning: the timeline of a patient's encounters over the simulated period.

A patient's :class:`~cmio.synth.disease.Profile` becomes a sorted list of
:class:`Event` (one per encounter): preventive visits with age-appropriate
screening and immunizations (AAP/CDC schedules, USPSTF screening intervals),
chronic follow-up at intervals set by disease control, specialist visits, acute
visits (Poisson, seasonal), emergency visits and admissions (NHAMCS 2021: ~43 ED
visits per 100 persons a year; AHA: ~ 10 admissions per 100), prenatal care and
delivery, cancer screening with adherence gaps, and a terminal admission for part
of the deaths.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from cmio.synth.disease import Profile

__all__ = ["CHRONIC", "Event", "plan_care"]

CHRONIC = ("t2dm", "htn", "hld", "depression", "asthma", "copd", "cad", "afib", "hf", "ckd3",
           "hypothyroid", "obesity", "oa_knee", "gerd")  # fmt: skip
_CANCERS = ("breast_ca", "colon_ca", "prostate_ca", "lung_ca")
_ACUTE_CHILD: tuple[tuple[str, float], ...] = (("uri", 5), ("otitis", 3), ("strep", 1.5), ("pharyngitis", 1.5),
                ("gastroenteritis", 1.5), ("conjunctivitis", 1), ("influenza", 1), ("dermatitis", 0.5))  # fmt: skip
_ACUTE_ADULT: tuple[tuple[str, float], ...] = (("uri", 4), ("sinusitis", 2), ("uti", 1.5), ("bronchitis", 1.5), ("back_pain", 2),
                ("ankle_sprain", 0.7), ("influenza", 1), ("covid", 1), ("migraine", 0.7),
                ("dermatitis", 0.6), ("pharyngitis", 1), ("strep", 0.5))  # fmt: skip
_ED: tuple[tuple[str, float], ...] = (("chest_pain", 3), ("abdominal_pain", 3), ("concussion", 1), ("syncope", 1),
       ("wrist_fracture", 0.7), ("ankle_sprain", 1.2), ("cellulitis", 1), ("uti", 0.8),
       ("migraine", 0.8))  # fmt: skip
_ADMIT: tuple[tuple[str, float], ...] = (
    ("pneumonia", 3),
    ("sepsis", 1.5),
    ("cellulitis", 1),
    ("aki", 0.8),
)
_CHILD_VISIT_MONTHS = (0.1, 1, 2, 4, 6, 9, 12, 15, 18, 24, 30)
_CHILD_VACCINES = {  # AAP/CDC child schedule: months -> vaccines
    2: ("hepb", "dtap", "ipv", "hib", "pcv13"),
    4: ("dtap", "ipv", "hib", "pcv13"),
    6: ("hepb", "dtap", "pcv13"),
    12: ("mmr", "varicella", "hepa", "hib", "pcv13"),
    15: ("dtap",),
    18: ("hepa", "ipv"),
}
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


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], [w for _, w in table])[0]


def _poisson_days(rng: random.Random, rate_per_year: float, days: int) -> list[int]:
    out: list[int] = []
    if rate_per_year <= 0:
        return out
    t = rng.expovariate(rate_per_year / 365.0)
    while t < days:
        out.append(int(t))
        t += rng.expovariate(rate_per_year / 365.0)
    return out


def _chronic_meds(key: str, profile: Profile, rng: random.Random) -> list[str]:
    if key == "t2dm":
        meds = ["metformin"]
        if profile.a1c_control == "poor" or (profile.a1c_control == "fair" and rng.random() < 0.3):
            meds.append("insulin")
        return meds
    return {
        "htn": ["lisinopril"] + (["amlodipine"] if not profile.bp_controlled else []),
        "hld": ["atorvastatin" if rng.random() < 0.6 else "simvastatin"],
        "depression": ["fluoxetine"] if rng.random() < 0.7 else [],
        "asthma": ["albuterol"] + (["fluticasone"] if rng.random() < 0.5 else []),
        "copd": ["albuterol", "fluticasone_salmeterol"],
        "cad": ["aspirin", "metoprolol"],
        "afib": ["metoprolol"],
        "hf": ["metoprolol", "lisinopril"],
        "breast_ca": ["letrozole" if rng.random() < 0.6 else "tamoxifen"],
    }.get(key, [])


def plan_care(
    rng: random.Random, profile: Profile, age_end: float, female: bool, days: int, stop: int
) -> list[Event]:
    """Plan a patient's encounters.

    Args:
        rng: the patient's generator.
        profile: the clinical profile.
        age_end: age at the end of the simulation (years).
        female: sex.
        days: simulated days.
        stop: last day the patient is alive (``days - 1`` if they survive).

    Returns:
        Events sorted by day, all on or before ``stop``.
    """
    events: list[Event] = []
    years = days / 365.25

    def age_at(day: int) -> float:
        return age_end - (days - day) / 365.25

    active = [k for k in CHRONIC if k in profile.onset]
    chronic_meds: dict[str, list[str]] = {k: _chronic_meds(k, profile, rng) for k in active}
    # preventive care
    if age_end - years < 3:
        for months in _CHILD_VISIT_MONTHS:
            day = days - int((age_end - months / 12) * 365.25)
            if 0 <= day < days and rng.random() < 0.9:
                kind = "wellness_infant" if months < 12 else "wellness_child"
                vax = [v for m, vs in _CHILD_VACCINES.items() if m == int(months) for v in vs]
                events.append(Event(day, kind, "pediatrics", ["checkup_child"], vaccines=vax))
    wellness_p = 0.85 if age_end < 18 else min(0.9, 0.35 + 0.5 * profile.screening)
    for year in range(int(years + 0.999)):
        age = age_at(year * 365)
        if age >= 2.5 and rng.random() < wellness_p:
            day = year * 365 + rng.randrange(365)
            events.append(_wellness(rng, profile, age_at(day), female, day))
        flu_day = year * 365 + 250 + rng.randrange(90)  # September to November
        if age_at(flu_day) >= 0.5 and rng.random() < profile.flu:
            events.append(Event(flu_day, "procedure", "pediatrics" if age < 18 else "primary",
                                ["checkup_child" if age < 18 else "checkup_adult"], vaccines=["flu"]))  # fmt: skip
    # chronic follow-up
    if active:
        interval = 365
        for k in active:
            if k == "t2dm":
                interval = min(interval, {"poor": 90, "fair": 120}.get(profile.a1c_control, 180))
            elif k == "htn":
                interval = min(interval, 180 if profile.bp_controlled else 100)
            elif k in ("depression", "hf", "copd", "ckd3"):
                interval = min(interval, 120)
            else:
                interval = min(interval, 240)
        first = min(max(0, profile.onset[k]) for k in active)
        day = first + (0 if first > 0 else rng.randrange(interval))
        started: set[str] = set()
        while day < days:
            present = [k for k in active if profile.onset[k] <= day]
            ev = Event(
                day, "chronic", "primary" if age_at(day) >= 18 else "pediatrics", list(present)
            )
            for k in present:
                if profile.onset[k] > day - interval and profile.onset[k] > 0 and k not in started:
                    ev.new_dx.append(k)
                if k not in started or (day // 365) != ((day - interval) // 365):
                    ev.meds.extend(chronic_meds.get(k, []))
                started.add(k)
            if "t2dm" in present:
                ev.labs.append("a1c")
                if rng.random() < 0.5:
                    ev.labs.append("uacr")
            if ("htn" in present or "ckd3" in present) and rng.random() < 0.5:
                ev.labs.append("bmp")
            if "hld" in present and rng.random() < 0.4:
                ev.labs.append("lipid")
            ev.phq9 = "depression" in present
            if present:
                events.append(ev)
            day += int(interval * rng.uniform(0.8, 1.4))
    _specialists(rng, profile, events, days, age_at)
    # acute, emergency, inpatient
    age_mid = age_at(days // 2)
    acute_rate = 2.0 if age_mid < 5 else 1.2 if age_mid < 18 else 0.9 if age_mid < 65 else 1.1
    for day in _poisson_days(rng, acute_rate, days):
        table = _ACUTE_CHILD if age_at(day) < 18 else _ACUTE_ADULT
        reason = _weighted(rng, table)
        if reason == "uti" and not female and rng.random() < 0.8:
            reason = "uri"
        kind = "virtual" if rng.random() < 0.15 else "acute"
        dept = "pediatrics" if age_at(day) < 18 else "primary"
        ev = Event(day, kind, dept, [reason], meds=_acute_meds(rng, reason))
        if reason == "strep":
            ev.procs.append("strep_test")
        events.append(ev)
    ed_rate = 0.45 if age_mid < 5 else 0.3 if age_mid < 18 else 0.35 if age_mid < 65 else 0.42
    for k, mult in (("copd", 1.8), ("hf", 1.8), ("asthma", 1.4)):
        if k in profile.onset:
            ed_rate *= mult
    for day in _poisson_days(rng, ed_rate, days):
        table = _ED
        if "asthma" in profile.onset and rng.random() < 0.25:
            reason = "asthma_exac"
        elif "copd" in profile.onset and rng.random() < 0.3:
            reason = "copd_exac"
        else:
            reason = _weighted(rng, table)
        ev = Event(day, "emergency", "emergency", [reason], meds=_acute_meds(rng, reason))
        if reason in ("chest_pain", "syncope"):
            ev.procs.append("ecg")
            ev.labs.append("bmp")
        if reason in ("copd_exac", "asthma_exac"):
            ev.procs.append("chest_xray")
        events.append(ev)
    admit_rate = 0.04 if age_mid < 45 else 0.08 if age_mid < 65 else 0.2
    for k, mult in (("hf", 3.0), ("copd", 2.0), ("ckd3", 1.5), ("cad", 1.5)):
        if k in profile.onset:
            admit_rate *= mult
    if age_mid < 18:
        admit_rate = 0.015
    for day in _poisson_days(rng, admit_rate, days):
        events.append(_admission(rng, profile, day, age_at(day)))
    for conception in profile.pregnancies:
        _pregnancy(rng, events, conception, days)
    _screening(rng, profile, events, days, age_at, female)
    events = [e for e in events if 0 <= e.day <= stop]
    if stop < days - 1 and rng.random() < 0.4:
        reason = "sepsis" if rng.random() < 0.3 else "pneumonia"
        los = rng.randint(1, 6)
        ev = Event(max(0, stop - los), "inpatient", "inpatient", [reason], labs=["cbc", "bmp"])
        ev.los, ev.dies = stop - ev.day, True
        events = [e for e in events if e.day < ev.day]
        events.append(ev)
    events.sort(key=lambda e: e.day)
    return events


def _wellness(rng: random.Random, profile: Profile, age: float, female: bool, day: int) -> Event:
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


def _acute_meds(rng: random.Random, reason: str) -> list[str]:
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


def _admission(rng: random.Random, profile: Profile, day: int, age: float) -> Event:
    options = list(_ADMIT)
    for key, cause, w in (("hf", "hf", 3.0), ("copd", "copd_exac", 3.0), ("cad", "mi", 1.5),
                          ("htn", "stroke", 0.6), ("afib", "stroke", 1.0)):  # fmt: skip
        if key in profile.onset:
            options.append((cause, w))
    if age >= 70:
        options.append(("hip_fracture", 0.8))
    reason = _weighted(rng, tuple(options))
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


def _pregnancy(rng: random.Random, events: list[Event], conception: int, days: int) -> None:
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


def _specialists(
    rng: random.Random,
    profile: Profile,
    events: list[Event],
    days: int,
    age_at: Callable[[int], float],
) -> None:
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


def _screening(
    rng: random.Random,
    profile: Profile,
    events: list[Event],
    days: int,
    age_at: Callable[[int], float],
    female: bool,
) -> None:
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
