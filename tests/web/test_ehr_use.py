"""Physician EHR-use pages: the CMIO view's figures come from the summary (which the
oversight tests check against the engine) and agree with the engine run here; a
physician sees their own page and only theirs; executives see the aggregates; roles
without oversight get 403; the pages are accessible in the browser."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest

from cmio.measures.ehr_use import Period, SqlEngine, compute_ehr_use
from cmio.oversight.ehr_use import EhrUseSummary
from cmio.oversight.period import ReportingPeriod
from cmio.testing.browser import axe_violations, open_page
from cmio.testing.web import WebSite
from tests.web.conftest import RolePage


def _period(site: WebSite) -> ReportingPeriod:
    return ReportingPeriod.year_of(site.app.web.ctx.data_end())


def _get(site: WebSite, role: str, path: str, **options: Any) -> httpx.Response:
    return httpx.get(site.url + path, cookies=site.session_cookies(role), timeout=300, **options)


def _summary(site: WebSite) -> EhrUseSummary:
    period = _period(site)
    _get(site, "administrator", "/ehr-use")  # computed (or awaited) for the default period
    found = site.app.web.ctx.cache.peek(f"ehr-use:{period.label}")
    assert isinstance(found, EhrUseSummary)
    return found


def _own(site: WebSite) -> str:
    name = site.users["clinician"][0]
    user = site.app.auth.server.users.get(name)  # type: ignore[union-attr]
    assert user is not None and user.fhir_user
    return str(user.fhir_user).rsplit("/", 1)[1]


def _cells(text: str) -> list[str]:
    return [
        html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
        for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", text, re.S)
    ]


def test_cmio_view_shows_the_summary(site: WebSite) -> None:
    summary = _summary(site)
    answer = _get(site, "administrator", "/ehr-use")
    assert answer.status_code == 200
    text = answer.text
    cells = _cells(text)
    org = summary.organization
    assert f"{org.value('ehr_time8'):.2f} h" in text
    for clinician in summary.measured:
        assert html.escape(clinician.label) in text or clinician.label in text
        assert f"/ehr-use/clinicians/{clinician.key}" in text
    for outlier in summary.outliers:
        assert outlier.metric.format(outlier.value) in cells
    dist = summary.distributions["wow8"]
    row = cells[cells.index("WOW8", cells.index("Clinicians")) :][:9]
    assert row[1] == str(dist.count) and row[4] == f"{dist.median:.2f} h"
    # the engine, run directly on the same store and period, gives the same figures
    period = summary.period
    with SqlEngine("duckdb") as engine:
        tables = compute_ehr_use(
            site.app.env.repository, Period(period.start, period.end), engine=engine
        )
    for row_ in tables["clinicians"].to_pylist():
        mine = summary.clinician(str(row_["user_id"]))
        assert mine is not None
        for key in ("ehr_time8", "wow8", "inbox_time8", "note_time8"):
            assert mine.value(key) == pytest.approx(row_[key], nan_ok=True) or (
                mine.value(key) is None and row_[key] is None
            )


def test_a_physician_sees_their_own_page_only(site: WebSite) -> None:
    summary, own = _summary(site), _own(site)
    answer = _get(site, "clinician", "/ehr-use/me", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ehr-use/clinicians/{own}"
    page = _get(site, "clinician", f"/ehr-use/clinicians/{own}")
    assert page.status_code == 200
    me = summary.clinician(own)
    assert me is not None and me.value("ehr_time8") is not None
    cells = _cells(page.text)
    figures = {p.metric.label: p for p in summary.compared(own)}
    ehr = figures["EHR-Time8"]
    start = cells.index("EHR-Time8 " + ehr.metric.description)
    assert cells[start + 1] == f"{ehr.value:.2f} h"
    assert cells[start + 2] == f"{ehr.peer_median:.2f} h"
    assert ehr.percentile_rank is not None
    assert cells[start + 3] == f"{round(ehr.percentile_rank * 100)} of {ehr.peers}"
    assert "Yours" in page.text
    peer = next(c.key for c in summary.measured if c.key != own)
    for path in (f"/ehr-use/clinicians/{peer}", "/ehr-use", "/cost"):
        assert _get(site, "clinician", path).status_code == 403, path


def test_roles_and_periods(site: WebSite) -> None:
    summary = _summary(site)
    some = summary.measured[0]
    executive = _get(site, "executive", f"/ehr-use/clinicians/{some.key}")
    assert executive.status_code == 200 and some.label in html.unescape(executive.text)
    assert "/patients/" not in executive.text  # aggregates only
    assert (
        _get(site, "executive", "/ehr-use/me", follow_redirects=False)
        .headers["location"]
        .startswith("/ehr-use")
    )
    for role in ("integration-engineer", "privacy-officer"):
        assert _get(site, role, "/ehr-use").status_code == 403
        assert _get(site, role, "/ehr-use/me").status_code == 403
    bad = _get(site, "informaticist", "/ehr-use?period=2025-13")
    assert bad.status_code == 400 and 'role="alert"' in bad.text and "bad month" in bad.text
    nobody = _get(site, "informaticist", "/ehr-use/clinicians/no-such-practitioner")
    assert nobody.status_code == 200 and 'role="status"' in nobody.text
    month = summary.months[-1].key
    monthly = _get(site, "analyst", f"/ehr-use?period={month}")
    assert monthly.status_code == 200 and f'value="{month}"' in monthly.text


@pytest.mark.browser
def test_cmio_opens_a_physician_in_the_browser(site: WebSite, as_role: RolePage) -> None:
    page, watch = as_role("informaticist")
    open_page(page, site.url + "/ehr-use")
    assert page.locator(".vl-chart svg").count() == 4
    assert axe_violations(page) == []
    page.locator("section[aria-labelledby=clinicians]").get_by_role("link").first.click()
    page.wait_for_url(re.compile(r".*/ehr-use/clinicians/.*"))
    open_page(page, page.url)
    assert page.get_by_role("heading", name="Against peers").count() == 1
    assert axe_violations(page) == []
    assert watch.problems == []


@pytest.mark.browser
def test_physician_feedback_in_the_browser(site: WebSite, as_role: RolePage) -> None:
    page, watch = as_role("clinician")
    open_page(page, site.url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My EHR use").click()
    page.wait_for_url(re.compile(rf".*/ehr-use/clinicians/{_own(site)}$"))
    open_page(page, page.url)
    assert page.locator(".vl-chart svg").count() == 2
    assert axe_violations(page) == []
    assert watch.problems == []


def test_clinicians_are_paged(site: WebSite, monkeypatch: pytest.MonkeyPatch) -> None:
    from cmio.web.pages import ehr_use as page_module

    summary = _summary(site)
    size = 5
    monkeypatch.setattr(page_module, "PAGE_SIZE", size)
    ordered = sorted(summary.clinicians, key=lambda c: (c.scheduled_hours <= 0, c.label))
    pages = -(-len(ordered) // size)
    assert pages >= 2
    second = _get(site, "analyst", "/ehr-use?page=2").text
    section = second[second.index('id="clinicians"') :]
    assert f"(page 2 of {pages})" in section
    shown = re.findall(r'/ehr-use/clinicians/([^?"]+)\?', section)
    assert shown == [c.key for c in ordered[size : 2 * size]]
    assert "Previous" in section and "Next" in section
    last = _get(site, "analyst", "/ehr-use?page=999").text  # past the end: the last page
    assert f"(page {pages} of {pages})" in last
