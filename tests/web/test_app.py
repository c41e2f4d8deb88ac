"""The web app's frame: sign-in, the start page, CSRF, assets and the chart script."""

from __future__ import annotations

import httpx
import pytest

from cmio.testing.browser import axe_violations, open_page
from cmio.testing.web import WebSite
from tests.web.conftest import RolePage


def test_pages_need_a_session(site: WebSite) -> None:
    answer = httpx.get(site.url + "/", headers={"accept": "text/html"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/auth/login")


def test_start_page_for_a_signed_in_user(site: WebSite) -> None:
    cookies = site.session_cookies("analyst")
    answer = httpx.get(site.url + "/", cookies=cookies)
    assert answer.status_code == 200
    assert "Patient database" in answer.text
    assert "web-analyst" in answer.text
    assert answer.headers["server-timing"].startswith("render;dur=")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert "cmio_csrf" in answer.cookies


def test_unsafe_methods_need_the_csrf_token(site: WebSite) -> None:
    cookies = site.session_cookies("administrator")
    first = httpx.get(site.url + "/", cookies=cookies)
    token = first.cookies["cmio_csrf"]
    jar = {**cookies, "cmio_csrf": token}
    refused = httpx.post(site.url + "/", cookies=jar)
    assert refused.status_code == 403
    wrong = httpx.post(site.url + "/", cookies=jar, headers={"x-csrf-token": "x" * 43})
    assert wrong.status_code == 403
    other_site = httpx.post(
        site.url + "/",
        cookies=jar,
        headers={"x-csrf-token": token, "origin": "http://evil.example"},
    )
    assert other_site.status_code == 403
    admitted = httpx.post(
        site.url + "/", cookies=jar, headers={"x-csrf-token": token, "origin": site.url}
    )
    assert admitted.status_code == 405  # past the check; "/" has no POST


def test_fhir_writes_still_need_a_bearer_token(site: WebSite) -> None:
    cookies = site.session_cookies("administrator")
    answer = httpx.post(
        site.url + "/fhir/Patient",
        cookies=cookies,
        json={"resourceType": "Patient"},
        headers={"content-type": "application/fhir+json"},
    )
    assert answer.status_code == 401


def test_assets_are_served_and_cached(site: WebSite) -> None:
    cookies = site.session_cookies("analyst")
    css = httpx.get(site.url + "/static/cmio.css", cookies=cookies)
    assert css.status_code == 200 and "--accent" in css.text
    htmx = httpx.get(site.url + "/static/htmx.min.js", cookies=cookies)
    assert htmx.status_code == 200 and "htmx" in htmx.text
    vega = httpx.get(site.url + "/static/vega.js", cookies=cookies, timeout=60)
    assert vega.status_code == 200 and "vegaEmbed" in vega.text
    again = httpx.get(
        site.url + "/static/vega.js",
        cookies=cookies,
        headers={"if-none-match": vega.headers["etag"]},
    )
    assert again.status_code == 304


def test_unknown_page_is_a_404_page(site: WebSite) -> None:
    answer = httpx.get(site.url + "/no-such-page", cookies=site.session_cookies("analyst"))
    assert answer.status_code == 404
    assert "There is no page at /no-such-page" in answer.text


@pytest.mark.browser
@pytest.mark.parametrize("role", ["executive", "clinician", "informaticist"])
def test_start_page_in_the_browser(site: WebSite, as_role: RolePage, role: str) -> None:
    page, watch = as_role(role)
    open_page(page, site.url + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "cmio"
    chart = page.locator(".vl-chart svg")
    assert chart.count() == 1  # drawn by Vega under the strict CSP (no eval)
    assert axe_violations(page) == []
    assert watch.problems == []


@pytest.mark.browser
def test_keyboard_reaches_the_content(site: WebSite, as_role: RolePage) -> None:
    page, watch = as_role("analyst")
    open_page(page, site.url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert watch.problems == []
