"""Disease models: who has what, since when, and how well controlled.

Prevalence is drawn per age band at the end of the simulation (so the generated
population reproduces published figures) and onset is placed in the past with a
duration distribution; conditions whose onset falls inside the simulated period are
diagnosed at a visit. Correlations: obesity raises the risk of diabetes and
hypertension (the marginal prevalence per band is preserved), smoking that of COPD
and lung cancer.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["PREVALENCE", "Profile", "assign_profile", "prevalence_for"]

Bands = tuple[tuple[int, float], ...]

# (first age of band, prevalence among the band at the end of the simulation).
# fmt: off
PREVALENCE: Mapping[str, Bands] = MappingProxyType({
    # CDC National Diabetes Statistics Report (2021 data): diagnosed diabetes 18-44 3.0%,
    # 45-64 11.9%, 65+ 19.8%; ~90-95% of it type 2; pediatric type 2 is rare.
    "t2dm": ((0, 0.0), (18, 0.028), (45, 0.115), (65, 0.19)),
    # NHANES 2017-2018 (Ostchega et al., NCHS Data Brief 364): hypertension 18-39 22.4%,
    # 40-59 54.5%, 60+ 74.5% (45.4% of adults); children ~ 2-4% (AAP 2017).
    "htn": ((0, 0.0), (12, 0.03), (18, 0.22), (40, 0.52), (60, 0.72)),
    # NHANES 2015-2018: high total cholesterol or lipid-lowering drugs ~ 1/3 of adults,
    # rising with age (statin use 65+ ~ 47%, NCHS Data Brief 2021).
    "hld": ((0, 0.0), (20, 0.08), (40, 0.28), (65, 0.48)),
    # NHANES 2017-2020 (Brody et al., NCHS Data Brief 2023): depression 8.3% of adults,
    # higher in 12-19 and women.
    "depression": ((0, 0.0), (12, 0.09), (20, 0.09), (40, 0.085), (60, 0.065)),
    # CDC NHIS 2021: current asthma 7.7% of adults, 5.8% of children (lower under 5).
    "asthma": ((0, 0.03), (5, 0.065), (18, 0.078)),
    # CDC BRFSS 2021: COPD 6.2% of adults; ~ 11% at 65+, rare before 40.
    "copd": ((0, 0.0), (40, 0.04), (55, 0.07), (65, 0.11)),
    # AHA Heart Disease and Stroke Statistics 2023: CHD 7% of adults, ~ 20% at 75+.
    "cad": ((0, 0.0), (40, 0.02), (60, 0.10), (75, 0.20)),
    "afib": ((0, 0.0), (50, 0.01), (65, 0.06), (80, 0.12)),
    "hf": ((0, 0.0), (50, 0.01), (65, 0.045), (80, 0.09)),
    # CDC CKD Surveillance: CKD stage 3 ~ 6% of adults, ~ 25% of 70+ (diagnosed is lower).
    "ckd3": ((0, 0.0), (45, 0.02), (65, 0.07), (75, 0.12)),
    # NHANES 2017-2020: obesity 41.9% of adults, 19.7% of children (diagnosis recorded
    # for about half: Obesity is underdocumented in EHRs).
    "obesity": ((0, 0.0), (6, 0.10), (18, 0.21), (40, 0.23), (65, 0.19)),
    # Hypothyroidism ~ 5% of adults, higher in older women (NHANES III; Aoki 2007).
    "hypothyroid": ((0, 0.0), (18, 0.03), (50, 0.07), (70, 0.10)),
    "oa_knee": ((0, 0.0), (45, 0.05), (65, 0.14)),
    "gerd": ((0, 0.0), (18, 0.06), (45, 0.10)),
    # NCI SEER cancer prevalence (people living after a diagnosis within ~ 5 years).
    "breast_ca": ((0, 0.0), (40, 0.004), (50, 0.012), (65, 0.022)),
    "colon_ca": ((0, 0.0), (45, 0.001), (55, 0.003), (70, 0.006)),
    "prostate_ca": ((0, 0.0), (50, 0.008), (65, 0.035)),
    "lung_ca": ((0, 0.0), (50, 0.001), (65, 0.004)),
})
# fmt: on

_FEMALE_ONLY = frozenset({"breast_ca"})
_MALE_ONLY = frozenset({"prostate_ca"})
# Sex ratios (female multiplier, male multiplier) keeping the band average.
_SEX = MappingProxyType(
    {
        "depression": (1.3, 0.7),
        "hypothyroid": (1.6, 0.4),
        "cad": (0.7, 1.3),
        "afib": (0.8, 1.2),
        "breast_ca": (2.0, 0.0),
        "prostate_ca": (0.0, 2.0),
        "oa_knee": (1.2, 0.8),
    }
)
# Mean years since onset for conditions present at the end (exponential).
_DURATION = MappingProxyType(
    {"depression": 3.0, "breast_ca": 3.0, "colon_ca": 2.5, "prostate_ca": 3.5, "lung_ca": 1.5}
)


def prevalence_for(key: str, age: float, female: bool) -> float:
    """Target prevalence of ``key`` at ``age`` for the given sex."""
    value = 0.0
    for first, p in PREVALENCE[key]:
        if age < first:
            break
        value = p
    f, m = _SEX.get(key, (1.0, 1.0))
    return value * (f if female else m)


@dataclass(slots=True)
class Profile:
    """A patient's clinical profile for the simulation.

    Attributes:
        onset: condition key -> simulation day of onset (negative: before the start).
        a1c: baseline HbA1c (%) for diabetics. a1c_control: ``good``/``fair``/``poor``.
        bp_controlled: whether hypertension is controlled. sbp/dbp: usual pressures.
        ldl: usual LDL (mg/dL). phq9: usual PHQ-9 score. bmi: body-mass index.
        height: cm. smoking: ``never``/``former``/``current``.
        screening: adherence to cancer screening (0..1). use_fit: FIT instead of colonoscopy.
        last_colonoscopy/last_mammogram: days before the start (None: never).
        allergies: allergy keys. flu: probability of a yearly flu shot.
        pregnancies: simulation days of conception.
    """

    onset: dict[str, int] = field(default_factory=dict)
    a1c: float = 5.4
    a1c_control: str = "none"
    bp_controlled: bool = True
    sbp: float = 118.0
    dbp: float = 76.0
    ldl: float = 110.0
    phq9: float = 2.0
    bmi: float = 25.0
    height: float = 170.0
    smoking: str = "never"
    screening: float = 0.7
    use_fit: bool = False
    last_colonoscopy: int | None = None
    last_mammogram: int | None = None
    allergies: list[str] = field(default_factory=list)
    flu: float = 0.5
    pregnancies: list[int] = field(default_factory=list)


def _onset(rng: random.Random, key: str, age: float, end_day: int) -> int:
    mean_years = _DURATION.get(key, 8.0)
    years = min(rng.expovariate(1.0 / mean_years), max(0.1, age - 1))
    return end_day - int(years * 365.25)


def assign_profile(
    rng: random.Random, age: int, female: bool, end_day: int, birth_day: int
) -> Profile:
    """Draw a patient's conditions, control and habits.

    Args:
        rng: the patient's generator.
        age: age in years at the end of the simulation.
        female: sex.
        end_day: last simulation day.
        birth_day: simulation day of birth (negative).

    Returns:
        The profile.
    """
    p = Profile()
    adult = age >= 18
    # smoking: NHIS 2021 current 11.5% of adults, former ~ 22%
    if age >= 15:
        r = rng.random()
        p.smoking = (
            "current" if r < 0.12 else "former" if r < 0.12 + 0.22 * min(1.0, age / 60) else "never"
        )
    p.height = rng.gauss(163 if female else 177, 7) if adult else 50 + min(age, 17) * 7.0
    obese_p = prevalence_for("obesity", age, female) * 2.0  # true obesity; half diagnosed
    obese = rng.random() < obese_p
    p.bmi = rng.gauss(34, 3.5) if obese else rng.gauss(25.5, 2.6) if adult else rng.gauss(18, 2)
    for key in PREVALENCE:
        if (key in _FEMALE_ONLY and not female) or (key in _MALE_ONLY and female):
            continue
        prob = prevalence_for(key, age, female)
        if key == "obesity":
            prob = 0.5 if obese else 0.0
        elif key in ("t2dm", "htn"):
            rr = 3.0 if key == "t2dm" else 1.6
            prob = prob * (rr if obese else 1.0) / (obese_p * rr + (1 - obese_p))
        elif key in ("copd", "lung_ca"):
            rr = {"current": 2.5, "former": 1.6}.get(p.smoking, 0.3)
            prob *= rr
        if prob > 0 and rng.random() < prob:
            p.onset[key] = max(birth_day + 365, _onset(rng, key, age, end_day))
    if "t2dm" in p.onset:
        # ADA/NHANES 2015-2018 (Fang et al., NEJM 2021): ~ 50% at HbA1c < 7%, ~ 17% > 9%
        # p.a1c is the level reached on treatment
        r = rng.random()
        if r < 0.50:
            p.a1c_control, p.a1c = "good", rng.gauss(6.6, 0.35)
        elif r < 0.80:
            p.a1c_control, p.a1c = "fair", rng.gauss(7.7, 0.45)
        else:
            p.a1c_control, p.a1c = "poor", rng.gauss(9.8, 1.1)
    else:
        p.a1c = rng.gauss(5.4 if p.bmi < 30 else 5.7, 0.25)
    if "htn" in p.onset:
        # NHANES 2017-2020: ~ 45-50% of hypertensive adults controlled (< 140/90)
        p.bp_controlled = rng.random() < 0.5
        p.sbp, p.dbp = (
            (rng.gauss(128, 6), rng.gauss(79, 5))
            if p.bp_controlled
            else (rng.gauss(150, 8), rng.gauss(92, 6))
        )
    elif adult:
        p.sbp, p.dbp = rng.gauss(112 + 0.25 * age, 7), rng.gauss(72 + 0.05 * age, 5)
    else:
        p.sbp, p.dbp = rng.gauss(100 + age, 6), rng.gauss(60 + 0.6 * age, 5)
    p.ldl = rng.gauss(135, 25) if "hld" in p.onset else rng.gauss(105, 22)
    p.phq9 = rng.gauss(13, 4) if "depression" in p.onset else max(0.0, rng.gauss(2.0, 2.0))
    p.screening = rng.betavariate(3, 1.3)
    p.use_fit = rng.random() < 0.2
    if age >= 50 and rng.random() < p.screening:
        p.last_colonoscopy = -rng.randrange(30, 3650 if not p.use_fit else 400)
    if female and age >= 50 and rng.random() < p.screening:
        p.last_mammogram = -rng.randrange(30, 900)
    # allergies: ~ 10% penicillin label (Shenoy, JAMA 2019); food ~ 8% children, 10% adults
    for key, prob in _ALLERGY_RATES:
        if rng.random() < prob:
            p.allergies.append(key)
    # CDC FluVaxView 2022-23: children 57%, adults 47%, 65+ 70%
    p.flu = 0.57 if age < 18 else 0.70 if age >= 65 else 0.40 + 0.2 * p.screening
    if female and 15 <= age <= 46:
        _pregnancies(rng, p, age, end_day)
    return p


_ALLERGY_RATES: tuple[tuple[str, float], ...] = (
    ("penicillin", 0.09),
    ("sulfonamide", 0.03),
    ("peanut", 0.02),
    ("shellfish", 0.025),
    ("latex", 0.01),
    ("pollen", 0.08),
    ("dust_mite", 0.04),
    ("cat_dander", 0.03),
)

# CDC NVSS 2023 births per 1,000 women by age: 15-19 13, 20-24 56, 25-29 92, 30-34 95,
# 35-39 54, 40-44 12.
_FERTILITY = (
    (15, 0.013),
    (20, 0.056),
    (25, 0.092),
    (30, 0.095),
    (35, 0.054),
    (40, 0.012),
    (45, 0.0),
)


def _pregnancies(rng: random.Random, p: Profile, age: int, end_day: int) -> None:
    day = -270  # conceptions from 9 months before the start
    while day < end_day - 30:
        age_then = age - (end_day - day) / 365.25
        rate = 0.0
        for first, v in _FERTILITY:
            if age_then >= first:
                rate = v
        if rate <= 0:
            day += 365
            continue
        wait = rng.expovariate(rate / 365.0)
        day += int(wait)
        if day >= end_day - 30:
            break
        p.pregnancies.append(day)
        day += 270 + 180  # pregnancy and postpartum
    if p.pregnancies:
        p.onset.pop("pregnancy", None)
