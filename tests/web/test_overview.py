"""The executive overview: every area's headlines for a period, drill-down links,
not-available tiles, role refusals, accessibility."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest

from cmio.oversight import ReportingPeriod, areas
from cmio.oversight.areas import AREAS, Area, AreaInputs, collect
from cmio.testing.browser import axe_violations, open_page
from cmio.testing.web import WebSite
from cmio.web.pages.overview import sparkline, with_period
from tests.web.conftest import RolePage


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _default_period(site: WebSite) -> ReportingPeriod:
    return ReportingPeriod.year_of(site.app.web.ctx.data_end())


def test_overview_shows_every_area_summary(site: WebSite) -> None:
    cookies = site.session_cookies("executive")
    answer = httpx.get(site.url + "/overview", cookies=cookies, timeout=300)
    assert answer.status_code == 200
    period = _default_period(site)
    env, cache = site.app.env, site.app.web.ctx.cache
    inputs = AreaInputs(env.repository, env.terminology, env.settings.hl7_journal)
    # the summaries the page drew (the areas' own tests check them against their engines)
    results = collect(inputs, period, get=cache.get)
    text = _text(answer.text)
    assert f"at a glance for {period.label}" in text
    for result in results:
        section = answer.text.split(f'id="area-{result.area.key}"', 1)
        assert len(section) == 2, result.area.key
        body = _text(section[1].split("</section>", 1)[0])
        assert result.area.title in body
        if not result.available:
            assert "Not available" in body and _text(result.error) in body
            continue
        for headline in result.headlines:
            assert headline.label in body and headline.value in body
            href = with_period(headline.href or result.area.href, period)
            assert f'href="{href}"' in section[1].replace("&amp;", "&")
    again = httpx.get(site.url + "/overview", cookies=cookies, timeout=60)
    assert _text(again.text) == text  # same figures from the cache
    assert float(again.headers["server-timing"].split("dur=")[1]) < 300


def test_overview_refuses_a_bad_period(site: WebSite) -> None:
    cookies = site.session_cookies("administrator")
    bad = httpx.get(site.url + "/overview", params={"period": "2025-13"}, cookies=cookies)
    assert bad.status_code == 400
    assert 'role="alert"' in bad.text and "bad month" in bad.text


def test_failing_areas_are_tiles_not_errors(site: WebSite, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(area: Area, inputs: AreaInputs, period: ReportingPeriod) -> object:
        raise RuntimeError(f"{area.key} store offline")

    monkeypatch.setattr(areas, "summarize_area", broken)
    answer = httpx.get(
        site.url + "/overview",
        params={"period": "2019-Q1"},
        cookies=site.session_cookies("analyst"),
    )
    assert answer.status_code == 200
    text = _text(answer.text)
    assert text.count("Not available") == len(AREAS)
    for area in AREAS:
        assert f"{area.title}: failed (RuntimeError: {area.key} store offline)" in text
    assert site.app.web.ctx.cache.peek("quality:2019-Q1") is None  # failures are not kept


@pytest.mark.parametrize("role", ["clinician", "integration-engineer", "privacy-officer"])
def test_overview_is_refused_to_roles_outside_oversight(site: WebSite, role: str) -> None:
    answer = httpx.get(site.url + "/overview", cookies=site.session_cookies(role))
    assert answer.status_code == 403
    assert "Overview" not in re.findall(r"<nav.*?</nav>", answer.text, re.S)[0]


def test_sparkline_is_named_and_scaled() -> None:
    svg = sparkline((("2025-01", 10.0), ("2025-02", 30.0), ("2025-03", 20.0)), "Rate")
    assert 'role="img"' in svg
    assert 'aria-label="Rate trend: 10 in 2025-01 to 20 in 2025-03"' in svg
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    ys = [float(p.split(",")[1]) for p in points.group(1).split()]
    assert ys[1] == min(ys) and ys[0] == max(ys)  # the highest value is drawn at the top
    assert sparkline((("2025-01", 1.0),), "one point") == ""


def test_with_period_keeps_an_explicit_period() -> None:
    period = ReportingPeriod.parse("2025-Q2")
    assert with_period("/quality", period) == "/quality?period=2025-Q2"
    assert with_period("/cost?x=1", period) == "/cost?x=1&period=2025-Q2"
    assert with_period("/cost?period=2024", period) == "/cost?period=2024"


def test_area_names_are_unique() -> None:
    assert len({a.key for a in AREAS}) == len(AREAS)


@pytest.mark.browser
@pytest.mark.parametrize("role", ["executive", "informaticist"])
def test_overview_in_the_browser(site: WebSite, as_role: RolePage, role: str) -> None:
    page, watch = as_role(role)
    open_page(page, site.url + "/overview")
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"
    assert page.locator("section.overview-area").count() == len(AREAS)
    assert axe_violations(page) == []
    link = page.locator("section.overview-area h2 a").first
    assert link.get_attribute("href", timeout=1000) is not None
    assert watch.problems == []
