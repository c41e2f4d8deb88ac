"""The data-quality page: the score, by resource type and source, and the worst checks
as the oversight summary computes them (itself checked against the adherence measures
in tests/oversight/test_data_quality.py); role refusals; axe in the browser."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

from cmio.api.env import Settings
from cmio.indexing import SearchIndexer
from cmio.model import load_model
from cmio.oversight.data_quality import DataQualitySummary
from cmio.oversight.period import ReportingPeriod
from cmio.store import open_repository
from cmio.testing.browser import PageWatch, axe_violations, login, open_page
from cmio.testing.web import WebSite
from tests.oversight.test_data_quality import resources

URL = "/workbench/data-quality"


@pytest.fixture(scope="module")
def dq_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSite]:
    """A small store of patients, observations and conditions, some off-standard."""
    folder = tmp_path_factory.mktemp("dq-site")
    url = f"sqlite:///{folder / 'cmio.db'}"
    repository = open_repository(url, indexer=SearchIndexer(load_model()))
    try:
        with repository.transaction() as tx:
            for resource in resources():
                tx.create(resource, id=resource["id"])
    finally:
        repository.close()
    settings = Settings(validation="off", terminology_db=None, hl7_journal="")
    with WebSite.start(url, folder / "keys", settings) as site:
        site.app.web.ctx.compute_wait = 600.0  # the page's content, not its placeholder
        yield site
        site.app.web.ctx.cache.wait_idle(600)


def _summary(site: WebSite) -> DataQualitySummary:
    """The summary the page cached for its default period."""
    ctx = site.app.web.ctx
    period = ReportingPeriod.year_of(ctx.data_end())
    summary = ctx.cache.peek(f"data-quality:{period.label}")
    assert isinstance(summary, DataQualitySummary), "the page cached its summary"
    return summary


def test_page_shows_the_summary(dq_site: WebSite) -> None:
    site = dq_site
    answer = httpx.get(site.url + URL, cookies=site.session_cookies("analyst"), timeout=120)
    assert answer.status_code == 200
    html = answer.text
    summary = _summary(site)
    assert summary.overall.score is not None
    assert f'<span class="tile-value">{summary.overall.score:.1f}</span>' in html
    for row in summary.by_type:
        assert f'<th scope="row">{row.key}</th><td class="num">{row.resources}</td>' in html
    for row in summary.by_source:
        assert f'<th scope="row">{row.key}</th><td class="num">{row.resources}</td>' in html
    worst = summary.checks[0]
    assert f"<td>{worst.rule}</td>" in html and worst.failing > 0
    assert "Observation.code in a standard code system" in html
    for role in ("clinician", "executive"):
        refused = httpx.get(site.url + URL, cookies=site.session_cookies(role))
        assert refused.status_code == 403, role
    bad = httpx.get(site.url + URL + "?period=nonsense", cookies=site.session_cookies("analyst"))
    assert bad.status_code == 400 and 'role="alert"' in bad.text


@pytest.mark.browser
def test_page_in_the_browser(dq_site: WebSite, browser: Browser) -> None:
    site = dq_site
    context = browser.new_context()
    try:
        page = context.new_page()
        name, password = site.users["informaticist"]
        login(page, site.url, name, password)
        watch = PageWatch().attach(page)
        open_page(page, site.url + URL)
        assert page.locator(".vl-chart svg").count() == 1
        assert axe_violations(page) == []
        assert watch.problems == []
    finally:
        context.close()
