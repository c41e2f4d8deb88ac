"""Every page of the web app, for every role: the pages a role's navigation offers load
in the browser with no console errors and no failed requests, and pass axe (serious and
critical); the pages it does not offer are refused (403). Plus the flow that spans
pages: sign in, open a measure, drill to a patient, open the chart."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request

from cmio.testing.browser import PageWatch, axe_violations, login, open_page
from cmio.testing.web import WebSite
from cmio.web.pages import NavItem

SLOW_PAGE_MS = 600_000  # a page's first visit may compute its period's summaries
QUIET_S = 0.1  # no request in flight for this long: the page is settled


class Settled:
    """Opens pages and waits until they are settled: loaded, every chart drawn and no
    request in flight for :data:`QUIET_S` (Playwright's ``networkidle`` waits 500 ms of
    quiet on every page; this page-by-page walk opens dozens)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.pending: set[Request] = set()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request: Request) -> None:
        self.pending.add(request)

    def _ended(self, request: Request) -> None:
        self.pending.discard(request)

    def open(self, url: str) -> None:
        page = self.page
        page.goto(url, wait_until="load", timeout=SLOW_PAGE_MS)
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.vl-chart')).every("
            "c => c.querySelector('svg') || c.textContent.trim().length > 0)"
            " && !document.querySelector('.htmx-request')",
            timeout=SLOW_PAGE_MS,
        )
        deadline = time.monotonic() + SLOW_PAGE_MS / 1000
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            page.wait_for_timeout(20)  # lets Playwright deliver the request events
            if self.pending:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_S:
                return
        raise AssertionError(
            f"{url}: requests still in flight: {sorted(r.url for r in self.pending)}"
        )


def _visible(site: WebSite, role: str) -> list[NavItem]:
    return [item for item in site.app.web.ctx.nav if role in item.roles]


def test_navigation_matches_the_roles(site: WebSite) -> None:
    nav = site.app.web.ctx.nav
    assert nav and nav[0].path == "/overview"
    assert len({item.path for item in nav}) == len(nav)
    for role in site.users:
        page = httpx.get(site.url + "/", cookies=site.session_cookies(role))
        assert page.status_code == 200
        menu = page.text.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
        for item in nav:
            assert (f'href="{item.path}"' in menu) == (role in item.roles), (role, item.path)


@pytest.mark.parametrize("role", ["clinician", "executive", "integration-engineer",
                                  "privacy-officer", "analyst"])  # fmt: skip
def test_pages_outside_a_role_are_refused(site: WebSite, role: str) -> None:
    """Refused with 403, or sent on (303) to a page the role's navigation offers."""
    cookies = site.session_cookies(role)
    offered = {item.path for item in _visible(site, role)}
    for item in site.app.web.ctx.nav:
        if item.path in offered:
            continue
        answer = httpx.get(site.url + item.path, cookies=cookies, timeout=120)
        if answer.status_code == 303:
            target = answer.headers["location"].split("?", 1)[0]
            assert target in offered, (role, item.path, target)
            continue
        assert answer.status_code == 403, (role, item.path, answer.status_code)
        assert 'role="alert"' in answer.text


@pytest.mark.browser
@pytest.mark.slow
def test_every_page_for_every_role_in_the_browser(
    site: WebSite, browser: Browser, role_states: dict[str, str]
) -> None:
    checked: set[str] = set()  # axe once per page (the content is the same; the menu varies)
    problems: list[str] = []
    for role in site.users:
        context = browser.new_context(storage_state=role_states[role])
        try:
            page = context.new_page()
            watch = PageWatch().attach(page)
            settled = Settled(page)
            for item in _visible(site, role):
                settled.open(site.url + item.path)
                heading = page.get_by_role("heading", level=1).inner_text()
                if heading in ("Not for your role", "Not allowed", "Page not found"):
                    problems.append(f"{role} {item.path}: {heading}")
                if item.path not in checked:
                    checked.add(item.path)
                    problems += [f"{role} {item.path}: {v}" for v in axe_violations(page)]
                problems += [f"{role} {item.path}: {p}" for p in watch.problems]
                watch.problems.clear()
        finally:
            context.close()
    assert problems == []
    assert checked == {item.path for item in site.app.web.ctx.nav}


@pytest.mark.browser
def test_sign_in_open_a_measure_drill_to_a_patient_chart(site: WebSite, browser: Browser) -> None:
    paths = {item.path for item in site.app.web.ctx.nav}
    if not {"/quality", "/patients"} <= paths:
        pytest.fail(f"the quality and patient pages are not registered: {sorted(paths)}")
    context = browser.new_context()
    try:
        page = context.new_page()
        watch = PageWatch().attach(page)
        login(page, site.url, *site.users["administrator"])  # by the form
        open_page(page, site.url + "/quality", timeout_ms=SLOW_PAGE_MS)
        page.locator("main a[href^='/quality/CMS']").first.click()
        page.wait_for_load_state("networkidle")
        assert page.url.split("?")[0].startswith(site.url + "/quality/CMS")
        page.locator("main a[href*='/gaps']").first.click()
        page.wait_for_load_state("networkidle")
        assert "/gaps" in page.url
        patient = page.locator("main a[href^='/patients/']").first
        href = patient.get_attribute("href")
        assert href is not None
        patient.click()
        page.wait_for_load_state("networkidle")
        assert page.url.startswith(site.url + href.split("?")[0])
        assert page.get_by_role("heading", level=1).inner_text() not in ("Not allowed", "")
        assert watch.problems == []
    finally:
        context.close()
