"""Realism: prevalence by age band, HbA1c in diabetics, demographics, EHR after-hours time.

Each check compares the generated population (600 patients) with a published figure,
allowing three binomial standard errors (the test data set is small) plus one point.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from datetime import date

import pytest

from cmio.synth import DEFAULT_END
from cmio.synth.disease import assign_profile

from . import realism
from .conftest import Generated

# (condition, first age, last age, published prevalence, source)
PUBLISHED = (
    # CDC National Diabetes Statistics Report (2021 data), diagnosed diabetes ~ 90-95% type 2
    ("t2dm", 18, 44, 0.030, "CDC NDSR: diagnosed diabetes 18-44 3.0%"),
    ("t2dm", 45, 64, 0.119, "CDC NDSR: diagnosed diabetes 45-64 11.9%"),
    ("t2dm", 65, 120, 0.198, "CDC NDSR: diagnosed diabetes 65+ 19.8%"),
    ("t2dm", 18, 120, 0.113, "CDC NDSR: diagnosed diabetes 11.3% of adults"),
    # NHANES 2017-2018, Ostchega et al., NCHS Data Brief 364
    ("htn", 18, 39, 0.224, "NHANES: hypertension 18-39 22.4%"),
    ("htn", 40, 59, 0.545, "NHANES: hypertension 40-59 54.5%"),
    ("htn", 60, 120, 0.745, "NHANES: hypertension 60+ 74.5%"),
    ("htn", 18, 120, 0.454, "NHANES: hypertension 45.4% of adults"),
    # NHANES 2015-2018 (high total cholesterol or on lipid-lowering therapy; NCHS Data Brief)
    ("hld", 20, 120, 0.28, "NHANES: ~28% of adults with hyperlipidemia diagnosed or treated"),
    # NHANES 2017-2020, Brody et al., NCHS Data Brief 2023: depression 8.3% of adults
    ("depression", 18, 120, 0.083, "NHANES: depression 8.3% of adults"),
    # CDC NHIS 2021: current asthma 7.7% of adults, 5.8-6.5% of children
    ("asthma", 18, 120, 0.077, "NHIS: current asthma 7.7% of adults"),
    ("asthma", 0, 17, 0.060, "NHIS: current asthma ~6% of children"),
    # CDC BRFSS: COPD ~ 6% of adults, ~ 11% at 65+ (we report 40+)
    ("copd", 40, 120, 0.075, "BRFSS: COPD ~7.5% of adults 40+"),
    ("copd", 0, 39, 0.0, "COPD before 40 is rare"),
)


def tolerance(p: float, n: int) -> float:
    return 3 * math.sqrt(max(p, 0.01) * (1 - p) / max(n, 1)) + 0.01


@pytest.mark.parametrize(("key", "lo", "hi", "published", "source"), PUBLISHED)
def test_prevalence_by_age_band(
    generated: Generated, key: str, lo: int, hi: int, published: float, source: str
) -> None:
    observed, n = realism.prevalence(generated.by_type, key, lo, hi, DEFAULT_END)
    assert n >= 40
    assert abs(observed - published) <= tolerance(published, n), (source, observed, n)


def test_prevalence_rises_with_age(generated: Generated) -> None:
    young = realism.prevalence(generated.by_type, "t2dm", 18, 44, DEFAULT_END)[0]
    old = realism.prevalence(generated.by_type, "t2dm", 65, 120, DEFAULT_END)[0]
    assert old > 2 * young
    assert realism.prevalence(generated.by_type, "htn", 60, 120, DEFAULT_END)[0] > 2 * young


def test_hba1c_distribution(generated: Generated) -> None:
    # NHANES 2015-2018 (Fang et al., NEJM 2021): about half of adults with diabetes at
    # HbA1c < 7%, median ~ 7%; ~ 15-20% above 9% (poor control).
    values = realism.last_a1c(generated.by_type)
    assert len(values) >= 25
    assert 6.5 <= statistics.median(values) <= 7.6
    poor = sum(v > 9 for v in values) / len(values)
    assert 0.03 <= poor <= 0.35  # few diabetics here: the model is checked on 20,000 below
    assert all(4.5 <= v <= 14.5 for v in values)


def test_hba1c_model_on_a_large_population() -> None:
    rng = random.Random(11)
    levels: list[float] = []
    while len(levels) < 2000:
        profile = assign_profile(rng, rng.randint(40, 85), rng.random() < 0.5, 364, -30_000)
        if "t2dm" in profile.onset:
            levels.append(profile.a1c)
    assert 6.8 <= statistics.median(levels) <= 7.4
    assert 0.10 <= sum(v > 9 for v in levels) / len(levels) <= 0.25
    assert 0.40 <= sum(v < 7 for v in levels) / len(levels) <= 0.60


def test_blood_pressure_panel(generated: Generated) -> None:
    panels = [
        o for o in generated.by_type["Observation"] if o["code"]["coding"][0]["code"] == "85354-9"
    ]
    assert len(panels) > 500
    systolic = []
    for o in panels:
        codes = [c["code"]["coding"][0]["code"] for c in o["component"]]
        assert codes == ["8480-6", "8462-4"]
        assert all(c["valueQuantity"]["code"] == "mm[Hg]" for c in o["component"])
        systolic.append(o["component"][0]["valueQuantity"]["value"])
    assert 105 <= statistics.median(systolic) <= 135
    share_high = sum(s >= 140 for s in systolic) / len(systolic)
    assert 0.05 <= share_high <= 0.40


def test_demographics(generated: Generated) -> None:
    patients = generated.by_type["Patient"]
    n = len(patients)
    ages = [realism.age_on(p["birthDate"], DEFAULT_END) for p in patients]
    # 2020 Census: 22.1% under 18, 16.8% 65 and over, 50.5% female, 18.7% Hispanic
    assert abs(sum(a < 18 for a in ages) / n - 0.221) <= tolerance(0.221, n)
    assert abs(sum(a >= 65 for a in ages) / n - 0.168) <= tolerance(0.168, n)
    assert abs(sum(p["gender"] == "female" for p in patients) / n - 0.505) <= tolerance(0.505, n)
    hispanic = sum(
        p["extension"][1]["extension"][0]["valueCoding"]["code"] == "2135-2" for p in patients
    )
    assert abs(hispanic / n - 0.187) <= tolerance(0.187, n)
    mrns = [p["identifier"][0] for p in patients]
    assert all(
        i["type"]["coding"][0]["code"] == "MR" and i["system"].endswith("/mrn") for i in mrns
    )
    assert len({i["value"] for i in mrns}) == n
    # CDC: ~ 0.9% of the population dies each year
    deaths = sum("deceasedDateTime" in p for p in patients)
    assert 1 <= deaths <= 20


def test_coverage_mix(generated: Generated) -> None:
    payers = Counter(
        c["payor"][0]["reference"].partition("/")[0] for c in generated.by_type["Coverage"]
    )
    n = len(generated.by_type["Coverage"])
    assert n == len(generated.by_type["Patient"])
    # Census CPS 2023: ~ 8% uninsured (self-pay coverage points at the Patient)
    assert 0.02 <= payers["Patient"] / n <= 0.15


def test_after_hours_ehr_time(generated: Generated) -> None:
    # Arndt et al., Ann Fam Med 2017: 1.4 of 5.9 daily EHR hours after clinic (24%);
    # Epic Signal national data: roughly 10-25% of EHR time outside scheduled hours,
    # with a long tail of heavy "pajama time" users.
    shares = realism.after_hours_shares(generated.by_type)
    assert len(shares) >= 8
    values = sorted(shares.values())
    assert 0.08 <= statistics.median(values) <= 0.35
    assert values[0] < 0.15
    assert values[-1] > 0.30
    assert values[-1] - values[0] >= 0.2
    assert all(0.0 <= v <= 0.75 for v in values)


def test_every_encounter_is_billed(generated: Generated) -> None:
    encounters = {e["id"] for e in generated.by_type["Encounter"]}
    claimed = {c["item"][0]["encounter"][0]["reference"][10:] for c in generated.by_type["Claim"]}
    assert claimed == encounters
    assert len(generated.by_type["ExplanationOfBenefit"]) == len(generated.by_type["Claim"])
    for eob in generated.by_type["ExplanationOfBenefit"]:
        totals = {t["category"]["coding"][0]["code"]: t["amount"]["value"] for t in eob["total"]}
        assert 0 <= totals["benefit"] <= totals["eligible"] <= totals["submitted"] + 0.01
        assert eob["insurance"][0]["coverage"]["reference"].startswith("Coverage/")


def test_team_entered_orders_have_provenance(generated: Generated) -> None:
    provenance = generated.by_type["Provenance"]
    assert provenance
    for p in provenance:
        roles = [a["type"]["coding"][0]["code"] for a in p["agent"]]
        assert roles == ["author", "enterer"]
        assert p["agent"][0]["who"] != p["agent"][1]["who"]
    entered = {p["target"][0]["reference"] for p in provenance}
    orders = {f"ServiceRequest/{r['id']}" for r in generated.by_type["ServiceRequest"]}
    orders |= {f"MedicationRequest/{r['id']}" for r in generated.by_type["MedicationRequest"]}
    assert entered <= orders
    assert 0.1 <= len(entered) / len(orders) <= 0.6


def test_audit_log_csv_matches_audit_events(generated: Generated) -> None:
    lines = (generated.out / "audit-log.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == ["user_id", "user_name", "timestamp", "action"]
    assert len(lines) - 1 == len(generated.by_type["AuditEvent"])
    classes = Counter(line.rsplit(",", 4)[1] for line in lines[1:])
    assert set(classes) == {"Chart Review", "Notes", "Orders", "Results Review", "In Basket"}


def test_simulated_period(generated: Generated) -> None:
    starts = [e["period"]["start"][:10] for e in generated.by_type["Encounter"]]
    assert min(starts) >= "2025-01-01"
    assert max(starts) <= DEFAULT_END.isoformat()
    assert date.fromisoformat(max(starts)) > date(2025, 11, 1)


def test_cancer_screening_with_gaps(generated: Generated) -> None:
    # NHIS 2021 (CDC): ~ 70-76% of women 50-74 had a mammogram within 2 years; ~ 72% of
    # adults 50-75 up to date with colorectal screening (colonoscopy 10 y or FIT 1 y).
    patients = {p["id"]: p for p in generated.by_type["Patient"]}
    mammograms: dict[str, list[str]] = {}
    colonoscopies: dict[str, list[str]] = {}
    for proc in generated.by_type["Procedure"]:
        when = proc.get("performedDateTime") or proc["performedPeriod"]["start"]
        pid = proc["subject"]["reference"][8:]
        code = proc["code"]["coding"][0]["code"]
        if code == "24623002":
            mammograms.setdefault(pid, []).append(when[:10])
        elif code == "73761001":
            colonoscopies.setdefault(pid, []).append(when[:10])
    fits = {
        o["subject"]["reference"][8:]
        for o in generated.by_type["Observation"]
        if o["code"]["coding"][0]["code"] == "29771-3"
    }
    women = [
        pid for pid, p in patients.items()
        if p["gender"] == "female" and 52 <= realism.age_on(p["birthDate"], DEFAULT_END) <= 74
    ]  # fmt: skip
    up_to_date = sum(any(d >= "2024-01-01" for d in mammograms.get(pid, ())) for pid in women)
    assert 0.50 <= up_to_date / len(women) <= 0.88
    adults = [
        pid
        for pid, p in patients.items()
        if 50 <= realism.age_on(p["birthDate"], DEFAULT_END) <= 75
    ]
    crc = sum(
        any(d >= "2016-01-01" for d in colonoscopies.get(pid, ())) or pid in fits for pid in adults
    )
    assert 0.55 <= crc / len(adults) <= 0.85


def test_utilization_rates(generated: Generated) -> None:
    # NHAMCS 2021: 43.5 ED visits per 100 persons a year; AHA: ~ 10 admissions per 100;
    # CDC life tables: ~ 0.9% of the population dies each year; NVSS 2023: 54.5 births
    # per 1,000 women 15-44.
    n = len(generated.by_type["Patient"])
    classes = Counter(e["class"]["code"] for e in generated.by_type["Encounter"])
    assert abs(classes["EMER"] / n - 0.435) <= tolerance(0.435, n) + 0.05
    assert abs(classes["IMP"] / n - 0.10) <= tolerance(0.10, n)
    assert classes["AMB"] / n >= 2.5
    deaths = sum("deceasedDateTime" in p for p in generated.by_type["Patient"])
    assert abs(deaths / n - 0.009) <= tolerance(0.009, n)
    women = sum(
        p["gender"] == "female" and 15 <= realism.age_on(p["birthDate"], DEFAULT_END) <= 44
        for p in generated.by_type["Patient"]
    )
    births = sum(
        any(c["code"] == "O80" for c in e["reasonCode"][0]["coding"])
        for e in generated.by_type["Encounter"]
    )
    assert abs(births / women - 0.055) <= tolerance(0.055, women)


def test_inbox_load_varies_between_clinicians(generated: Generated) -> None:
    panels = Counter(p["generalPractitioner"][0]["reference"] for p in generated.by_type["Patient"])
    messages = Counter(
        c["recipient"][0]["reference"]
        for c in generated.by_type["Communication"]
        if c["sender"]["reference"].startswith("Patient/")
    )
    per_patient = sorted(messages[k] / v for k, v in panels.items() if v >= 20)
    assert len(per_patient) >= 4
    assert per_patient[-1] >= 2 * per_patient[0]


def npi_valid(number: str) -> bool:
    """CMS NPI check digit: Luhn over the prefix 80840 and the 10 digits."""
    total = 0
    for i, ch in enumerate(reversed("80840" + number)):
        d = int(ch) * (2 if i % 2 == 1 else 1)
        total += d - 9 if d > 9 else d
    return len(number) == 10 and total % 10 == 0


def test_practitioners_and_inbox_items(generated: Generated) -> None:
    assert npi_valid("1234567893")  # the CMS example
    for practitioner in generated.by_type["Practitioner"]:
        assert npi_valid(practitioner["identifier"][0]["value"])
    kinds = Counter(t["code"]["text"] for t in generated.by_type["Task"])
    assert kinds["Review result"] > 100
    assert kinds["Refill request"] > 100
    specialties = {
        c["code"]
        for role in generated.by_type["PractitionerRole"]
        for s in role["specialty"]
        for c in s["coding"]
    }
    assert {
        "207Q00000X",
        "207RC0000X",
        "207RE0101X",
        "207P00000X",
        "208M00000X",
        "208000000X",
    } <= specialties
