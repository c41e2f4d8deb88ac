"""The interface monitor: channels, rates, error queue and journal figures equal the
journal's own rows; replay of a failed HL7 message in the browser; role refusals."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, expect

from cmio.api.env import Settings
from cmio.interfaces.hl7v2.engine.journal import Journal
from cmio.store.base import SearchQuery
from cmio.testing.browser import PageWatch, axe_violations, login, open_page
from cmio.testing.web import WebSite
from tests.oversight.test_interfaces import FAILING, fill_journal

URL = "/workbench/interfaces"
AUTHORITY = "urn:oid:2.16.840.1.113883.3.999.1"  # a made-up OID under the HL7 test arc


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebSite, Path]]:
    """A site over an empty store whose HL7 journal holds a parked message (the store
    refused it): the replay writes into this store, not the shared one."""
    folder = tmp_path_factory.mktemp("iface-site")
    journal = folder / "hl7" / "journal.db"
    fill_journal(journal)
    channels = folder / "channels"  # the ADT channel names its MRN authority's system
    channels.mkdir()
    (channels / "adt.yaml").write_text(
        f"name: adt-feed\njournal: {journal}\nmapping:\n"
        f"  authority_systems: {{HOSP: '{AUTHORITY}'}}\n",
        encoding="utf-8",
    )
    settings = Settings(
        validation="off",
        terminology_db=None,
        hl7_journal=str(journal),
        hl7_channels=str(channels),
    )
    with WebSite.start(f"sqlite:///{folder / 'cmio.db'}", folder / "keys", settings) as site:
        yield site, journal


def _rows(journal: Path) -> list[dict[str, object]]:
    book = Journal(journal)
    try:
        return book.rows()
    finally:
        book.close()


def test_monitor_figures_and_refusals(monitored: tuple[WebSite, Path]) -> None:
    site, journal = monitored
    cookies = site.session_cookies("integration-engineer")
    answer = httpx.get(site.url + URL, cookies=cookies)
    assert answer.status_code == 200
    html = answer.text
    rows = _rows(journal)
    (parked,) = [r for r in rows if r["state"] == "error"]
    assert f'id="err-{parked["id"]}"' in html and str(parked["error"]) in html
    assert f"Error queue ({sum(r['state'] == 'error' for r in rows)})" in html
    for state, n in Counter(r["state"] for r in rows).items():
        assert re.search(rf"<td>{state}</td><td class=\"num\">{n}</td>", html), state
    assert f'Total</th><td class="num">{len(rows)}</td>' in html
    for channel in ("adt-feed", "lab-feed"):
        day = sum(r["channel"] == channel and r["state"] != "duplicate" for r in rows)
        assert re.search(rf'<th scope="row">{channel}</th>.*?<td class="num">{day}</td>', html,
                         re.S)  # fmt: skip
    assert 'hx-post="/workbench/interfaces/replay/' in html
    for role in ("clinician", "executive", "analyst"):
        refused = httpx.get(site.url + URL, cookies=site.session_cookies(role))
        assert refused.status_code == 403, role
    assert httpx.get(site.url + URL, follow_redirects=False).status_code in (302, 303, 401)


def test_no_journal_configured(site: WebSite) -> None:
    answer = httpx.get(site.url + URL, cookies=site.session_cookies("informaticist"))
    assert answer.status_code == 200
    assert "No HL7 v2 journal" in answer.text


@pytest.mark.browser
def test_replay_a_failed_message(monitored: tuple[WebSite, Path], browser: Browser) -> None:
    site, journal = monitored
    (parked,) = [r for r in _rows(journal) if r["state"] == "error"]
    context = browser.new_context()
    try:
        page = context.new_page()
        name, password = site.users["informaticist"]
        login(page, site.url, name, password)
        watch = PageWatch().attach(page)
        open_page(page, site.url + URL)
        assert axe_violations(page) == []
        row = page.locator(f"#err-{parked['id']}")
        row.get_by_role("button", name=f"Replay message {parked['control_id']}").click()
        status = page.locator(f"#err-{parked['id']} [role=status]")
        expect(status).to_contain_text("processed", timeout=30_000)
        assert watch.problems == []
        assert axe_violations(page) == []
    finally:
        context.close()
    (after,) = [r for r in _rows(journal) if r["id"] == parked["id"]]
    assert after["state"] == "processed"
    repository = site.app.env.repository
    (patient,) = repository.search(SearchQuery("Patient")).resources
    # the replayed ADT created its patient, mapped with its channel's configuration
    identifiers = orjson.loads(patient.data)["identifier"]
    assert {"system": AUTHORITY, "value": FAILING} in [
        {"system": i.get("system"), "value": i.get("value")} for i in identifiers
    ]
    again = httpx.post(
        site.url + f"/workbench/interfaces/replay/{parked['id']}",
        cookies=site.session_cookies("informaticist"),
    )
    assert again.status_code == 403  # no CSRF token: refused before the handler
    html = httpx.get(site.url + URL, cookies=site.session_cookies("informaticist")).text
    assert "The error queue is empty." in html and FAILING not in html
