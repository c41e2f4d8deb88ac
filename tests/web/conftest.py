"""The web app's test site: a small synthetic health system served with authentication
on, one user per role, and a Chromium browser (session-wide: built once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from cmio.testing.browser import CHROMIUM, PageWatch, launch, login
from cmio.testing.web import WebSite, build_store


@pytest.fixture(scope="session")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """80 synthetic patients with a year of care (about 9,000 resources)."""
    return build_store(tmp_path_factory.mktemp("web-store"))


@pytest.fixture(scope="session")
def site(web_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSite]:
    """The running site (auth on, audit off: pages are tested, not the audit trail).

    Pages wait for their summaries here (as long as a test allows), so the tests of
    page content see the figures; tests/web/test_pending.py tests the *computing*
    placeholder that answers at once in production (a short ``compute_wait``)."""
    with WebSite.start(web_store, tmp_path_factory.mktemp("web-keys")) as running:
        running.app.web.ctx.compute_wait = 600.0
        yield running
        # background computations left by the tests finish before the store closes (a
        # DuckDB query still running at interpreter exit aborts the process)
        running.app.web.ctx.cache.wait_idle(600)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def role_states(
    site: WebSite, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A signed-in browser storage state per role (each role logs in once, by the form)."""
    folder = tmp_path_factory.mktemp("web-states")
    states: dict[str, str] = {}
    for role, (name, password) in site.users.items():
        context = browser.new_context()
        page = context.new_page()
        login(page, site.url, name, password)
        path = folder / f"{role}.json"
        context.storage_state(path=str(path))
        context.close()
        states[role] = str(path)
    return states


class RolePage:
    """Opens pages as a role's user with a :class:`PageWatch` attached."""

    def __init__(self, browser: Browser, states: dict[str, str], site: WebSite) -> None:
        self.browser = browser
        self.states = states
        self.site = site
        self.contexts: list[object] = []

    def __call__(self, role: str | None) -> tuple[Page, PageWatch]:
        state = self.states[role] if role is not None else None
        context = self.browser.new_context(storage_state=state)
        self.contexts.append(context)
        page = context.new_page()
        return page, PageWatch().attach(page)

    def close(self) -> None:
        for context in self.contexts:
            context.close()  # type: ignore[attr-defined]


@pytest.fixture
def as_role(browser: Browser, role_states: dict[str, str], site: WebSite) -> Iterator[RolePage]:
    """``page, watch = as_role("clinician")``: a fresh signed-in page per call."""
    opener = RolePage(browser, role_states, site)
    yield opener
    opener.close()
