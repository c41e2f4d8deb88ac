"""The steering-committee report page and its PDF/HTML downloads."""

from __future__ import annotations

import importlib
import re
import zlib
from html import unescape

import httpx
import pytest

from cmio.oversight import ReportingPeriod
from cmio.oversight.areas import AREAS, AreaInputs, collect, summarize_area
from cmio.reports.text import latin1
from cmio.testing.browser import axe_violations, open_page
from cmio.testing.web import WebSite
from tests.web.conftest import RolePage


def _pdf_text(pdf: bytes) -> str:
    """The text shown by the PDF's (zlib-compressed) content streams."""
    shown: list[str] = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            data = zlib.decompress(match.group(1))
        except zlib.error:
            continue
        shown += [m.decode("latin-1") for m in re.findall(rb"\((.*?)(?<!\\)\)\s*Tj", data)]
    return re.sub(r"\\([()\\])", r"\1", "\n".join(shown))


def _period(site: WebSite) -> ReportingPeriod:
    return ReportingPeriod.year_of(site.app.web.ctx.data_end())


def _inputs(site: WebSite) -> AreaInputs:
    env = site.app.env
    return AreaInputs(env.repository, env.terminology, env.settings.hl7_journal)


def test_reports_page_offers_the_downloads(site: WebSite) -> None:
    answer = httpx.get(site.url + "/reports", cookies=site.session_cookies("executive"))
    assert answer.status_code == 200
    period = _period(site)
    assert f'href="/reports/steering.pdf?period={period.label}"' in answer.text
    assert f'href="/reports/steering.html?period={period.label}"' in answer.text
    for area in AREAS:
        assert area.title in answer.text
    ranged = httpx.get(
        site.url + "/reports",
        params={"period": "2025-01/2025-06"},
        cookies=site.session_cookies("analyst"),
    )
    assert "steering.pdf?period=2025-01/2025-06" in ranged.text
    bad = httpx.get(
        site.url + "/reports/steering.pdf",
        params={"period": "last year"},
        cookies=site.session_cookies("analyst"),
    )
    assert bad.status_code == 400 and 'role="alert"' in bad.text


@pytest.mark.parametrize("role", ["clinician", "integration-engineer", "privacy-officer"])
def test_reports_are_refused_outside_oversight(site: WebSite, role: str) -> None:
    cookies = site.session_cookies(role)
    assert httpx.get(site.url + "/reports", cookies=cookies).status_code == 403
    pdf = httpx.get(site.url + "/reports/steering.pdf", cookies=cookies)
    assert pdf.status_code == 403 and not pdf.content.startswith(b"%PDF")


@pytest.mark.slow
def test_report_downloads_carry_every_area(site: WebSite) -> None:
    cookies = site.session_cookies("informaticist")
    period = _period(site)
    query = {"period": period.label}
    pdf = httpx.get(site.url + "/reports/steering.pdf", params=query, cookies=cookies, timeout=600)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert f'filename="steering-{period.label}.pdf"' in pdf.headers["content-disposition"]
    assert pdf.content.startswith(b"%PDF-") and pdf.content.rstrip().endswith(b"%%EOF")
    html = httpx.get(site.url + "/reports/steering.html", params=query, cookies=cookies)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    pdf_text, html_text = _pdf_text(pdf.content), unescape(html.text)
    # the figures the report drew on: the summaries the dashboards cache
    results = collect(_inputs(site), period, get=site.app.web.ctx.cache.get, sections=True)
    for text, form in ((pdf_text, latin1), (html_text, str)):
        assert "Executive summary" in text and period.label in text
        for result in results:
            if not result.available:
                assert result.area.title in text
                continue
            for section in result.sections:
                assert form(section.heading) in text
            for headline in result.headlines:
                assert form(headline.value) in text
    # one area recomputed from the store, outside the cache: the same figures
    # (areas other tests change through the shared site, governance and interfaces, can
    # differ from the figures cached earlier: compare one the web tests never write to)
    ready = [r for r in results if r.available and r.area.key in ("ehr-use", "cost", "quality")]
    if ready:
        cheapest = min(ready, key=lambda r: r.seconds)
        direct = summarize_area(cheapest.area, _inputs(site), period)
        module = importlib.import_module(cheapest.area.module)
        values = [h.value for h in module.headlines(direct)]
        assert values == [h.value for h in cheapest.headlines]
        assert all(latin1(value) in pdf_text for value in values)


@pytest.mark.browser
def test_reports_page_in_the_browser(site: WebSite, as_role: RolePage) -> None:
    page, watch = as_role("analyst")
    open_page(page, site.url + "/reports")
    assert page.get_by_role("link", name="Download PDF").get_attribute("href") is not None
    assert axe_violations(page) == []
    assert watch.problems == []
