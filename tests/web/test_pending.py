"""Pages never wait for a computation: a summary not yet in the cache answers with a calm
*computing* placeholder at once, the cache computes it in the background, and the
placeholder (htmx, polling with backoff) is replaced by the content when it is ready."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from cmio.oversight.areas import AREAS
from cmio.oversight.period import ReportingPeriod
from cmio.testing.browser import axe_violations
from cmio.testing.web import WebSite
from tests.web.conftest import RolePage

POLL = {"hx-request": "true", "hx-target": "main"}  # what the placeholder's htmx sends


@pytest.fixture(scope="module")
def fresh(site: WebSite) -> str:
    """A month of the data no other test asks for (its summaries are not cached)."""
    end = site.app.web.ctx.data_end()
    year, month = divmod(end.year * 12 + end.month - 1 - 2, 12)
    label = f"{year}-{month + 1:02d}"
    assert site.app.web.ctx.cache.peek(f"quality:{label}") is None
    return label


@pytest.fixture
def at_once(site: WebSite, fresh: str) -> Iterator[WebSite]:
    """The site with pages that do not wait at all (the production default waits 0.2 s),
    and no summary of the fresh month in the cache (each test starts cold; the measure
    results the shared work keeps make the later computations cheap)."""
    ctx = site.app.web.ctx
    ctx.cache.wait_idle(600)
    for area in AREAS:
        ctx.cache.invalidate(area.cache_key(ReportingPeriod.parse(fresh)))
    before, ctx.compute_wait = ctx.compute_wait, 0.0
    yield site
    ctx.compute_wait = before


def _until_ready(client: httpx.Client, path: str, marker: str) -> httpx.Response:
    for attempt in range(1, 400):
        answer = client.get(path, headers={**POLL, "x-cmio-poll": str(attempt)})
        assert answer.status_code == 200
        if marker in answer.text:
            return answer
        assert 'class="pending"' in answer.text
        time.sleep(0.5)
    raise AssertionError(f"{path} never filled in")


def test_a_cold_page_answers_with_a_placeholder_then_the_content(
    at_once: WebSite, fresh: str
) -> None:
    site, label = at_once, fresh
    with httpx.Client(base_url=site.url, cookies=site.session_cookies("executive")) as client:
        started = time.perf_counter()
        cold = client.get("/quality", params={"period": label})
        assert time.perf_counter() - started < 5  # no measure evaluation in the request
        assert cold.status_code == 200 and 'class="pending"' in cold.text
        assert 'role="status"' in cold.text and f"/quality?period={label}" in cold.text
        assert 'hx-trigger="load delay:0.5s"' in cold.text and "<nav" in cold.text
        ready = _until_ready(client, f"/quality?period={label}", "tile-value")
        # the content of <main> only (htmx swaps it in), with its heading
        assert "<nav" not in ready.text and "<h1>Quality</h1>" in ready.text
        summary = site.app.web.ctx.cache.peek(f"quality:{label}")
        assert summary is not None and summary.period == ReportingPeriod.parse(label)
        # backoff: later attempts wait longer
        again = client.get("/cost", params={"period": label}, headers={**POLL, "x-cmio-poll": "9"})
        assert "tile" in again.text or 'hx-trigger="load delay:5.0s"' in again.text


def test_overview_areas_fill_in_one_by_one(at_once: WebSite, fresh: str) -> None:
    site, label = at_once, fresh
    with httpx.Client(base_url=site.url, cookies=site.session_cookies("executive")) as client:
        page = client.get("/overview", params={"period": label})
        assert page.status_code == 200
        pending = page.text.count('class="pending"')
        assert pending >= 1  # at least the quality measures are being computed
        assert f'hx-get="/overview/area/quality?period={label}"' in page.text
        section = client.get(f"/overview/area/quality?period={label}")
        assert section.status_code == 200 and 'aria-labelledby="area-quality"' in section.text
        for _ in range(400):
            section = client.get(
                f"/overview/area/quality?period={label}", headers={"hx-request": "true"}
            )
            if 'class="pending"' not in section.text:
                break
            time.sleep(0.5)
        assert "tile-value" in section.text and "hx-get" not in section.text
        assert client.get("/overview/area/nothing").status_code == 404
    refused = httpx.get(
        site.url + "/overview/area/quality", cookies=site.session_cookies("clinician")
    )
    assert refused.status_code == 403


@pytest.mark.browser
def test_the_placeholder_is_replaced_in_the_browser(
    at_once: WebSite, fresh: str, as_role: RolePage
) -> None:
    site, label = at_once, fresh
    page, watch = as_role("executive")
    first = page.goto(f"{site.url}/quality?period={label}", wait_until="domcontentloaded")
    assert first is not None and 'class="pending"' in first.text()  # what the browser got
    if page.locator(".pending").count():  # not replaced yet: the placeholder passes axe
        assert axe_violations(page) == []
    page.locator(".tile-value").first.wait_for(timeout=300_000)  # swapped in by htmx
    page.locator(".vl-chart svg").first.wait_for(timeout=60_000)  # charts drawn after it
    assert page.locator(".pending").count() == 0
    assert page.locator("h1").count() == 1
    assert axe_violations(page) == []
    assert watch.problems == []
