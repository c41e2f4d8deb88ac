"""Measures of realism computed from generated resources (shared by the tests and the benchmark)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

ICD_PREFIX = {
    "t2dm": ("E11.",),
    "htn": ("I10",),
    "hld": ("E78.",),
    "depression": ("F32.", "F33."),
    "asthma": ("J45.",),
    "copd": ("J44.",),
}
DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Resource = dict[str, Any]


def age_on(birth: str, when: date) -> int:
    b = date.fromisoformat(birth)
    return when.year - b.year - ((when.month, when.day) < (b.month, b.day))


def active_problems(by_type: dict[str, list[Resource]]) -> dict[str, set[str]]:
    """Patient id -> condition keys of active problem-list Conditions."""
    out: dict[str, set[str]] = defaultdict(set)
    for c in by_type["Condition"]:
        if c["category"][0]["coding"][0]["code"] != "problem-list-item":
            continue
        if c["clinicalStatus"]["coding"][0]["code"] != "active":
            continue
        icd = next(x["code"] for x in c["code"]["coding"] if x["system"].endswith("icd-10-cm"))
        for key, prefixes in ICD_PREFIX.items():
            if icd.startswith(prefixes):
                out[c["subject"]["reference"][8:]].add(key)
    return out


def prevalence(
    by_type: dict[str, list[Resource]], key: str, lo: int, hi: int, end: date
) -> tuple[float, int]:
    """Share of patients aged lo..hi at ``end`` with an active ``key`` problem, and their number."""
    problems = active_problems(by_type)
    ages = {p["id"]: age_on(p["birthDate"], end) for p in by_type["Patient"]}
    band = [pid for pid, age in ages.items() if lo <= age <= hi]
    hits = sum(1 for pid in band if key in problems.get(pid, ()))
    return hits / max(1, len(band)), len(band)


def last_a1c(by_type: dict[str, list[Resource]]) -> list[float]:
    """Each patient's latest HbA1c (LOINC 4548-4) among patients with diabetes."""
    diabetics = {pid for pid, keys in active_problems(by_type).items() if "t2dm" in keys}
    latest: dict[str, tuple[str, float]] = {}
    for o in by_type["Observation"]:
        if o["code"]["coding"][0]["code"] != "4548-4":
            continue
        pid = o["subject"]["reference"][8:]
        if pid in diabetics and latest.get(pid, ("", 0.0))[0] < o["effectiveDateTime"]:
            latest[pid] = (o["effectiveDateTime"], o["valueQuantity"]["value"])
    return [v for _, v in latest.values()]


def _in_session(windows: list[tuple[int, int, int]], when: datetime) -> bool:
    minute = when.hour * 60 + when.minute
    return any(
        wd == when.weekday() and start - 30 <= minute < end + 30 for wd, start, end in windows
    )


def after_hours_shares(
    by_type: dict[str, list[Resource]], min_events: int = 30
) -> dict[str, float]:
    """Per clinician with clinic sessions: share of EHR time (AuditEvent periods, by the
    user agent) outside scheduled sessions (+-30 minutes), as Epic Signal's "time
    outside scheduled hours"."""
    windows: dict[str, list[tuple[int, int, int]]] = {}
    for role in by_type["PractitionerRole"]:
        slots = []
        for t in role.get("availableTime", []):
            h1, m1, _ = map(int, t["availableStartTime"].split(":"))
            h2, m2, _ = map(int, t["availableEndTime"].split(":"))
            for d in t["daysOfWeek"]:
                slots.append((DAY_CODES.index(d), h1 * 60 + m1, h2 * 60 + m2))
        if slots:
            windows[role["practitioner"]["reference"]] = slots
    total: dict[str, float] = defaultdict(float)
    outside: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for event in by_type["AuditEvent"]:
        user = event["agent"][2]["who"]["reference"]
        if user not in windows:
            continue
        start = datetime.fromisoformat(event["period"]["start"])
        seconds = (datetime.fromisoformat(event["period"]["end"]) - start) / timedelta(seconds=1)
        total[user] += seconds
        count[user] += 1
        if not _in_session(windows[user], start):
            outside[user] += seconds
    return {u: outside[u] / total[u] for u in total if count[u] >= min_events}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
