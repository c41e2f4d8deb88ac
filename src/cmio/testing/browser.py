"""Browser checks of the web app: Playwright driving Debian's Chromium.

Every page a test opens is watched: console errors, uncaught exceptions, failed
requests and responses of 400 or more are collected, charts are awaited, and axe-core
(https://github.com/dequelabs/axe-core) reports accessibility violations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, Request, Response

__all__ = ["CHROMIUM", "PageWatch", "axe_violations", "launch", "login", "open_page"]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


@dataclass
class PageWatch:
    """What went wrong while a page was open.

    Attributes:
        problems: console errors, page errors, failed requests and HTTP errors, as text.
        allowed_status: (url part, status) pairs a test expects (e.g. a 403 it provokes).
    """

    problems: list[str] = field(default_factory=list)
    allowed_status: list[tuple[str, int]] = field(default_factory=list)

    def attach(self, page: Page) -> PageWatch:
        """Start watching ``page``."""
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        return self

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _response(self, response: Response) -> None:
        if response.status >= 400 and not any(
            part in response.url and status == response.status
            for part, status in self.allowed_status
        ):
            self.problems.append(f"HTTP {response.status}: {response.url}")


def login(page: Page, site_url: str, name: str, password: str) -> None:
    """Sign in through the login form (the way a person does)."""
    page.goto(site_url + "/auth/login?next=/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(site_url + "/")


def open_page(page: Page, url: str, timeout_ms: float = 30_000) -> None:
    """Go to ``url`` and wait until the network is idle and every chart is drawn."""
    page.goto(url, wait_until="networkidle", timeout=timeout_ms)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.vl-chart')).every("
        "c => c.querySelector('svg') || c.textContent.trim().length > 0)",
        timeout=timeout_ms,
    )


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of the given impacts on the current page, as text."""
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    results = Axe().run(page)
    found: list[str] = []
    for violation in results.response.get("violations", []):
        if violation.get("impact") in impacts:
            targets = [str(n.get("target")) for n in violation.get("nodes", [])][:3]
            found.append(f"{violation['id']} ({violation['impact']}): {', '.join(targets)}")
    return found
