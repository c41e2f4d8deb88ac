"""Care planning: the timeline of a patient's encounters over the simulated period.

A patient's :class:`~cmio.synth.disease.Profile` becomes a sorted list of
:class:`Event` (one per encounter): preventive visits with age-appropriate
screening and immunizations (AAP/CDC schedules, USPSTF screening intervals),
chronic follow-up at intervals set by disease control, specialist visits, acute
visits (Poisson, seasonal), emergency visits and admissions (NHAMCS 2021: ~43 ED
visits per 100 persons a year; AHA: ~ 10 admissions per 100), prenatal care and
delivery, cancer screening with adherence gaps, and a terminal admission for part
of the deaths. The visits themselves are built by :mod:`cmio.synth.events`.
"""

from __future__ import annotations

import random

from cmio.synth.disease import Profile
from cmio.synth.events import (
    Event,
    acute_meds,
    admission,
    cancer_screening,
    pregnancy,
    specialist_visits,
    weighted,
    wellness_visit,
)

__all__ = ["CHRONIC", "Event", "plan_care"]

CHRONIC = ("t2dm", "htn", "hld", "depression", "asthma", "copd", "cad", "afib", "hf", "ckd3",
           "hypothyroid", "obesity", "oa_knee", "gerd")  # fmt: skip
_ACUTE_CHILD: tuple[tuple[str, float], ...] = (("uri", 5), ("otitis", 3), ("strep", 1.5), ("pharyngitis", 1.5),
                ("gastroenteritis", 1.5), ("conjunctivitis", 1), ("influenza", 1), ("dermatitis", 0.5))  # fmt: skip
_ACUTE_ADULT: tuple[tuple[str, float], ...] = (("uri", 4), ("sinusitis", 2), ("uti", 1.5), ("bronchitis", 1.5), ("back_pain", 2),
                ("ankle_sprain", 0.7), ("influenza", 1), ("covid", 1), ("migraine", 0.7),
                ("dermatitis", 0.6), ("pharyngitis", 1), ("strep", 0.5))  # fmt: skip
_ED: tuple[tuple[str, float], ...] = (("chest_pain", 3), ("abdominal_pain", 3), ("concussion", 1), ("syncope", 1),
       ("wrist_fracture", 0.7), ("ankle_sprain", 1.2), ("cellulitis", 1), ("uti", 0.8),
       ("migraine", 0.8))  # fmt: skip
_CHILD_VISIT_MONTHS = (0.1, 1, 2, 4, 6, 9, 12, 15, 18, 24, 30)
_CHILD_VACCINES = {  # AAP/CDC child schedule: months -> vaccines
    2: ("hepb", "dtap", "ipv", "hib", "pcv13"),
    4: ("dtap", "ipv", "hib", "pcv13"),
    6: ("hepb", "dtap", "pcv13"),
    12: ("mmr", "varicella", "hepa", "hib", "pcv13"),
    15: ("dtap",),
    18: ("hepa", "ipv"),
}


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
            events.append(wellness_visit(rng, profile, age_at(day), female, day))
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
    specialist_visits(rng, profile, events, days, age_at)
    # acute, emergency, inpatient
    age_mid = age_at(days // 2)
    acute_rate = 2.0 if age_mid < 5 else 1.2 if age_mid < 18 else 0.9 if age_mid < 65 else 1.1
    for day in _poisson_days(rng, acute_rate, days):
        table = _ACUTE_CHILD if age_at(day) < 18 else _ACUTE_ADULT
        reason = weighted(rng, table)
        if reason == "uti" and not female and rng.random() < 0.8:
            reason = "uri"
        kind = "virtual" if rng.random() < 0.15 else "acute"
        dept = "pediatrics" if age_at(day) < 18 else "primary"
        ev = Event(day, kind, dept, [reason], meds=acute_meds(rng, reason))
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
            reason = weighted(rng, table)
        ev = Event(day, "emergency", "emergency", [reason], meds=acute_meds(rng, reason))
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
        events.append(admission(rng, profile, day, age_at(day)))
    for conception in profile.pregnancies:
        pregnancy(rng, events, conception, days)
    cancer_screening(rng, profile, events, days, age_at, female)
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
