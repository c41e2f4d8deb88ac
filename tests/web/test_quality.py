"""The quality pages: figures, strata and care-gap lists drawn from the quality summary,
the gap list equal to the measure framework's denominator minus numerator, a clinician
limited to the patients they treat, refusals by role, and the browser flow from the
measures to a patient's chart (axe clean, no console errors)."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest

from cmio.measures import Period, builtin_measures, evaluate_measures
from cmio.oversight import ReportingPeriod
from cmio.oversight.quality import QualitySummary
from cmio.security.grant import AccessGrant
from cmio.security.policy import Policy
from cmio.testing.browser import axe_violations, open_page
from cmio.testing.web import WebSite
from cmio.web.pages.quality import PAGE_SIZE, cached_summary
from tests.web.conftest import RolePage


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _pct(value: float | None) -> str:
    return "\u2014" if value is None else f"{value * 100:.1f}%"


def _summary(site: WebSite) -> QualitySummary:
    ctx = site.app.web.ctx
    return cached_summary(ctx, ReportingPeriod.year_of(ctx.data_end()))


def _get(site: WebSite, role: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(
        site.url + path, params=params, cookies=site.session_cookies(role), timeout=600
    )


def _gap_ids(site: WebSite, role: str, measure: str) -> list[str]:
    """Every patient id linked from the measure's gap list, page by page."""
    ids: list[str] = []
    page = 1
    while True:
        answer = _get(site, role, f"/quality/{measure}/gaps", page=str(page))
        assert answer.status_code == 200
        found = re.findall(r'href="/patients/([^"]+)"', answer.text)
        assert len(found) <= PAGE_SIZE
        ids += found
        if 'rel="next"' not in answer.text:
            return ids
        page += 1


def test_index_shows_every_measure(site: WebSite) -> None:
    answer = _get(site, "informaticist", "/quality")
    assert answer.status_code == 200
    summary = _summary(site)
    text = _text(answer.text)
    assert f"rates for {summary.period.label}" in text
    for m in summary.measures:
        assert f"{m.name} ({m.id})" in text
        assert f'href="/quality/{m.id}?period={summary.period.label}"' in answer.text
        row = _text(answer.text.split(f">{m.identifier}</a>", 1)[1].split("</tr>", 1)[0])
        figures = [_pct(m.rate), str(m.counts.numerator), str(m.counts.denominator)]
        assert all(f in row for f in figures), (m.id, row)
        assert f"/quality/{m.id}/gaps?period={summary.period.label}" in answer.text
    assert answer.text.count("class='vl-spec'") == 1
    again = _get(site, "informaticist", "/quality")
    assert float(again.headers["server-timing"].split("dur=")[1]) < 300


def test_measure_page_shows_trend_and_every_stratum(site: WebSite) -> None:
    summary = _summary(site)
    m = summary.measure("CMS130")
    answer = _get(site, "analyst", "/quality/CMS130")
    assert answer.status_code == 200
    for name in ("clinician", "department", "sex", "age_band", "race", "ethnicity", "payer"):
        section = answer.text.split(f'id="by-{name}"', 1)[1].split("</section>", 1)[0]
        strata = m.strata_of(name)
        assert sum(s.counts.denominator for s in strata) == m.counts.denominator
        rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</th>(.*?)</tr>", section, re.S)
        assert [unescape(label) for label, _ in rows] == [s.label for s in strata]
        for (_, cells), s in zip(rows, strata, strict=True):
            numbers = re.findall(r'<td class="num">(?:<a [^>]*>)?([^<]*)', cells)
            assert numbers == [
                str(s.counts.initial_population),
                str(s.counts.denominator),
                str(s.counts.numerator),
                str(s.counts.gaps),
                _pct(s.counts.rate),
            ]
    assert answer.text.count("class='vl-spec'") == 8  # the trend and one per stratifier
    assert f'href="/quality/CMS130/gaps?period={summary.period.label}"' in answer.text
    assert _get(site, "analyst", "/quality/NOPE").status_code == 404
    bad = _get(site, "analyst", "/quality/CMS130", period="2025-13")
    assert bad.status_code == 400 and 'role="alert"' in bad.text


def test_gap_list_is_denominator_minus_numerator(site: WebSite) -> None:
    summary = _summary(site)
    env = site.app.env
    [result] = evaluate_measures(
        [builtin_measures()["CMS125"]],
        Period(summary.period.start, summary.period.end),
        env.repository,
        terminology=env.terminology,
    )
    eligible = set(result.patients("denominator")) - set(result.patients("denominator_exclusion"))
    expected = eligible - set(result.patients("numerator"))
    ids = _gap_ids(site, "informaticist", "CMS125")
    assert len(ids) == len(set(ids)) and set(ids) == expected
    # filtered by attributed clinician: that clinician's share of the gaps
    stratum = next(s for s in summary.measure("CMS125").strata_of("clinician") if s.counts.gaps)
    answer = _get(site, "informaticist", "/quality/CMS125/gaps", clinician=stratum.value)
    found = re.findall(r'href="/patients/([^"]+)"', answer.text)
    assert len(found) == min(stratum.counts.gaps, PAGE_SIZE)
    assert set(found) <= expected


def test_clinician_sees_only_the_patients_they_treat(site: WebSite) -> None:
    summary = _summary(site)
    name = site.users["clinician"][0]
    user = site.app.auth.server.users.get(name) if site.app.auth else None
    assert user is not None and user.fhir_user
    grant = AccessGrant(
        name, "user", frozenset(), frozenset({"clinician"}), fhir_user=user.fhir_user
    )
    treated = Policy(grant, site.app.env.repository, site.app.env.model).related_patients()
    m = summary.measure("CMS130")
    gaps = {g.patient_id for g in m.gaps}
    ids = _gap_ids(site, "clinician", "CMS130")
    assert set(ids) == gaps & treated
    assert gaps - treated, "the test data should have gaps of patients the clinician does not treat"
    answer = _get(site, "clinician", "/quality/CMS130/gaps")
    assert f"{len(gaps - treated)} more you do not treat are not listed" in _text(answer.text)


def test_executive_sees_aggregates_only(site: WebSite) -> None:
    index = _get(site, "executive", "/quality")
    assert index.status_code == 200 and "/gaps" not in index.text
    measure = _get(site, "executive", "/quality/CMS122")
    assert measure.status_code == 200 and "/gaps" not in measure.text
    refused = _get(site, "executive", "/quality/CMS122/gaps")
    assert refused.status_code == 403
    assert "/patients/" not in refused.text


@pytest.mark.parametrize("role", ["integration-engineer", "privacy-officer"])
def test_roles_outside_quality_are_refused(site: WebSite, role: str) -> None:
    answer = _get(site, role, "/quality")
    assert answer.status_code == 403
    assert 'href="/quality"' not in answer.text
    assert _get(site, role, "/quality/CMS125").status_code == 403


@pytest.mark.browser
@pytest.mark.parametrize("role", ["executive", "informaticist"])
def test_quality_pages_in_the_browser(site: WebSite, as_role: RolePage, role: str) -> None:
    page, watch = as_role(role)
    paths = ("/quality", "/quality/CMS165") if role == "executive" else ("/quality/CMS165",)
    for path in paths:  # the clinician's test opens /quality too
        open_page(page, site.url + path)
        assert axe_violations(page) == [], path
    assert page.locator(".vl-chart svg").count() == 8
    assert watch.problems == []


@pytest.mark.browser
def test_clinician_drills_from_a_measure_to_a_chart(site: WebSite, as_role: RolePage) -> None:
    page, watch = as_role("clinician")
    open_page(page, site.url + "/quality")
    assert axe_violations(page) == []
    page.get_by_role("link", name=re.compile(r"\(CMS130\)")).first.click()
    page.wait_for_url(re.compile(r"/quality/CMS130\?"))
    page.get_by_role("link", name=re.compile("Care-gap patient list")).click()
    page.wait_for_url(re.compile(r"/quality/CMS130/gaps"))
    assert axe_violations(page) == []
    link = page.locator("table a[href^='/patients/']").first
    href = link.get_attribute("href")
    assert href is not None and re.fullmatch(r"/patients/[A-Za-z0-9\-.]+", href)
    link.click()
    page.wait_for_url(site.url + href)
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").count() == 1
    assert watch.problems == []
