"""Shared helpers of the chart tests: direct FHIR reads as a user, the test patients, a
second clinician, and reading the numbers back from the chart page."""

from __future__ import annotations

import html
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from cmio.api.auth import SESSION_COOKIE
from cmio.testing.web import WebSite

CHART_TIMEOUT = 120.0  # the first care-gap and CDS answers evaluate measures over the store


@dataclass(frozen=True)
class Cast:
    """The users and patients of the chart tests.

    Attributes:
        mine: a patient of the site's clinician (web-clinician).
        other: a second clinician user (name, password) who does not treat ``mine``.
        a1c: a patient with the most HbA1c results (read by the administrator).
        cds: a patient with diabetes (the starter CDS services give cards).
    """

    mine: str
    other: tuple[str, str]
    a1c: str
    cds: str


def token(site: WebSite, role: str) -> str:
    """The role's session token (also a bearer token of the API)."""
    return str(site.session_cookies(role)[SESSION_COOKIE])


def fhir(site: WebSite, bearer: str, path: str, params: list[Any]) -> dict[str, Any]:
    """A direct FHIR read as the token's user."""
    answer = httpx.get(
        f"{site.url}/fhir/{path}",
        params=params,
        headers={"authorization": f"Bearer {bearer}", "accept": "application/fhir+json"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def resources(site: WebSite, bearer: str, rtype: str, params: list[tuple[str, str]]) -> list[Any]:
    """Every resource a search finds (one page of up to 1000)."""
    bundle = fhir(site, bearer, rtype, [*params, ("_count", "1000")])
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def cast(site: WebSite) -> Cast:
    """Pick the patients and add the second clinician (idempotent per site)."""
    from cmio.cds import install_starter_services

    install_starter_services(site.app.env.repository)  # idempotent: kept if present
    admin = token(site, "administrator")
    clinician = token(site, "clinician")
    mine = sorted(p["id"] for p in resources(site, clinician, "Patient", []))
    a1c_counts: dict[str, int] = {}
    for obs in resources(site, admin, "Observation", [("code", "http://loinc.org|4548-4")]):
        pid = obs["subject"]["reference"].removeprefix("Patient/")
        a1c_counts[pid] = a1c_counts.get(pid, 0) + 1
    a1c = max(sorted(a1c_counts), key=lambda p: a1c_counts[p])
    diabetic = resources(site, admin, "Condition", [("code", "http://snomed.info/sct|44054006")])
    cds = sorted(c["subject"]["reference"].removeprefix("Patient/") for c in diabetic)[0]
    assert site.app.auth is not None
    users = site.app.auth.server.users
    name = "web-clinician-2"
    password = secrets.token_urlsafe(12)
    treating = _practitioners_of(site, admin, mine[0])
    if users.get(name) is None:
        everyone = [p["id"] for p in resources(site, admin, "Practitioner", [])]
        stranger = next(f"Practitioner/{p}" for p in sorted(everyone) if p not in treating)
        users.add(name, password, ["clinician"], stranger)
    else:
        users.set_password(name, password)
    return Cast(mine[0], (name, password), a1c, cds)


def _practitioners_of(site: WebSite, bearer: str, pid: str) -> set[str]:
    """The practitioners with a treatment relationship to the patient."""
    found: set[str] = set()
    for enc in resources(site, bearer, "Encounter", [("patient", pid)]):
        for part in enc.get("participant", []):
            found.add(part.get("individual", {}).get("reference", "").removeprefix("Practitioner/"))
    patient = fhir(site, bearer, f"Patient/{pid}", [])
    for gp in patient.get("generalPractitioner", []):
        found.add(gp.get("reference", "").removeprefix("Practitioner/"))
    for team in resources(site, bearer, "CareTeam", [("patient", pid)]):
        for member in team.get("participant", []):
            ref = member.get("member", {}).get("reference", "")
            found.add(ref.removeprefix("Practitioner/"))
    return found


def login(site: WebSite, name: str, password: str) -> dict[str, str]:
    """Session cookies of a user (through the login form's POST)."""
    answer = httpx.post(
        site.url + "/auth/login",
        data={"username": name, "password": password, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return dict(answer.cookies)


def count(page: str, table: str) -> int:
    """The ``data-count`` of one of the chart's tables."""
    found = re.search(rf'<table id="{table}" data-count="(\d+)"', page)
    assert found is not None, f"no table {table}"
    return int(found.group(1))


def spec(page: str, title: str) -> dict[str, Any]:
    """The Vega-Lite spec of the chart captioned ``title``."""
    found = re.search(
        rf"<figcaption>{re.escape(title)}</figcaption>.*?<script type='application/json' "
        r"class='vl-spec'>(.*?)</script>",
        page,
        re.S,
    )
    assert found is not None, f"no chart {title!r}"
    data: dict[str, Any] = json.loads(found.group(1).replace("<\\/", "</"))
    return data


def cards(page: str) -> list[tuple[str, str, str]]:
    """(service, indicator, summary) of the CDS cards on a page, sorted."""
    found = re.findall(
        r'<li class="cds-card cds-(\w+)">.*?<strong class="cds-summary">(.*?)</strong>'
        r".*?service ([\w\-]+)</p>",
        page,
        re.S,
    )
    return sorted((service, kind, html.unescape(text)) for kind, text, service in found)
