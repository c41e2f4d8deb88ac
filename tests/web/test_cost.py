"""The cost page: its figures are the summary's and agree with the cost engine run here
on the same store; roles without oversight get 403; it is accessible in the browser."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest

from cmio.measures.cost import cost_of_care, read_cost
from cmio.measures.ehr_use import Period, SqlEngine
from cmio.oversight.cost import CostSummary
from cmio.oversight.period import ReportingPeriod
from cmio.testing.browser import axe_violations, open_page
from cmio.testing.web import WebSite
from tests.web.conftest import RolePage


def _get(site: WebSite, role: str, path: str, **options: Any) -> httpx.Response:
    return httpx.get(site.url + path, cookies=site.session_cookies(role), timeout=300, **options)


def _text(answer: httpx.Response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", answer.text))


def test_cost_page_shows_the_summary_and_the_engine_agrees(site: WebSite) -> None:
    period = ReportingPeriod.year_of(site.app.web.ctx.data_end())
    answer = _get(site, "executive", "/cost")
    assert answer.status_code == 200
    summary = site.app.web.ctx.cache.peek(f"cost:{period.label}")
    assert isinstance(summary, CostSummary)
    text = _text(answer)
    assert f"${summary.pmpm:,.2f}" in text
    for line in summary.service_lines:
        assert line.label in text and f"${line.pmpm:,.2f}" in text
    for panel in summary.department_panels:
        assert panel.label in text
    for population in summary.populations:
        assert population.label in text
    assert "/patients/" not in answer.text  # aggregates only
    with SqlEngine("duckdb") as engine:
        tables = cost_of_care(
            read_cost(site.app.env.repository), Period(period.start, period.end), engine
        )
    total = tables["totals"].to_pylist()[0]
    assert summary.pmpm == pytest.approx(total["pmpm"])
    assert summary.claims == total["claims"]
    months = tables["months"].to_pylist()
    assert [(m.month, m.claims) for m in summary.months] == [
        (r["month"], r["claims"]) for r in months
    ]


def test_cost_roles_and_periods(site: WebSite) -> None:
    for role in ("clinician", "integration-engineer", "privacy-officer"):
        assert _get(site, role, "/cost").status_code == 403, role
    bad = _get(site, "analyst", "/cost?period=last-year")
    assert bad.status_code == 400 and 'role="alert"' in bad.text


@pytest.mark.browser
def test_cost_page_in_the_browser(site: WebSite, as_role: RolePage) -> None:
    page, watch = as_role("executive")
    open_page(page, site.url + "/cost")
    assert page.locator(".vl-chart svg").count() == 5
    assert page.get_by_role("heading", name="Cost against outcome").count() == 1
    assert axe_violations(page) == []
    assert watch.problems == []
