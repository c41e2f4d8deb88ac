"""The rules page: governed rules with status/version/severity/scope, a batch run in the
background ("Run now"), findings per rule and per source equal to ``run_rules`` over
the same store, the paged drill (patient-level roles only), role refusals, and the run
in the browser."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from cmio.api.env import Settings
from cmio.cds.definitions import install_starter_services
from cmio.fhirpath import FhirPathEngine
from cmio.indexing import SearchIndexer
from cmio.model import load_model
from cmio.rules import RuleEngine, active_rules, install_starter_rules, run_rules
from cmio.store import open_repository
from cmio.testing.browser import PageWatch, axe_violations, login, open_page
from cmio.testing.web import WebSite

URL = "/workbench/rules"
LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                   "code": "laboratory"}]}  # fmt: skip


def _resources() -> list[dict[str, Any]]:
    """Twelve resources from two sources; some break the starter rules."""
    out: list[dict[str, Any]] = []
    for i in range(6):
        system = "http://loinc.org" if i % 3 == 0 else "urn:local:lab"
        out.append({
            "resourceType": "Observation", "id": f"obs{i}", "status": "final",
            "meta": {"source": "lab-a" if i % 2 else "lab-b"}, "category": [LAB],
            "code": {"coding": [{"system": system, "code": f"C{i}"}]},
            "valueQuantity": {"value": i, "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                              "code": "mg/dL" if i % 2 else "milligrams"},
        })  # fmt: skip
    for i in range(4):
        system = "http://snomed.info/sct" if i % 2 else "urn:local:problem"
        out.append({
            "resourceType": "Condition", "id": f"cond{i}", "meta": {"source": "ehr"},
            "subject": {"reference": "Patient/p0"},
            "code": {"coding": [{"system": system, "code": f"P{i}"}]},
        })  # fmt: skip
    out.append({"resourceType": "Patient", "id": "p0"})
    out.append({"resourceType": "Patient", "id": "p1", "identifier": [{
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                             "code": "MR"}]}, "value": "1"}]})  # fmt: skip
    return out


@pytest.fixture(scope="module")
def rules_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSite]:
    """A small store with the starter rules and CDS services installed."""
    folder = tmp_path_factory.mktemp("rules-site")
    url = f"sqlite:///{folder / 'cmio.db'}"
    repository = open_repository(url, indexer=SearchIndexer(load_model()))
    try:
        with repository.transaction() as tx:
            for resource in _resources():
                tx.create(resource, id=resource["id"])
        install_starter_rules(repository)
        install_starter_rules(repository, "draft")  # same ids: nothing added
        install_starter_services(repository)
    finally:
        repository.close()
    settings = Settings(validation="off", terminology_db=None, hl7_journal="")
    with WebSite.start(url, folder / "keys", settings) as site:
        yield site


def _expected(site: WebSite) -> list[dict[str, Any]]:
    env = site.app.env
    rules = active_rules(env.repository)
    table = run_rules(env.repository, RuleEngine(FhirPathEngine(env.model)), rules)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _cookies(site: WebSite, role: str) -> dict[str, str]:
    jar = site.session_cookies(role)
    page = httpx.get(site.url + URL, cookies=jar)
    return {**jar, "cmio_csrf": page.cookies.get("cmio_csrf") or jar.get("cmio_csrf", "")}


def _run(site: WebSite, cookies: dict[str, str]) -> str:
    headers = {"x-csrf-token": cookies["cmio_csrf"], "origin": site.url, "hx-request": "true"}
    answer = httpx.post(site.url + URL + "/run", cookies=cookies, headers=headers)
    assert answer.status_code == 200
    deadline = time.monotonic() + 60
    while "every 1s" in answer.text and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = httpx.get(site.url + URL + "/run", cookies=cookies, headers=headers)
    assert "Finished:" in answer.text, answer.text
    return answer.text


def test_rules_listed_run_and_drill(rules_site: WebSite) -> None:
    site = rules_site
    cookies = _cookies(site, "informaticist")
    html = httpx.get(site.url + URL, cookies=cookies).text
    rules = active_rules(site.app.env.repository)
    for rule in rules:
        assert f"({rule.id})" in html and rule.severity in html
    assert "CDS service" in html and "No run since the server started." in html
    expected = _expected(site)
    assert expected, "the store was built to break some rules"
    text = _run(site, cookies)
    assert f"{len(expected)} findings" in text
    for rule, n in Counter(f["rule"] for f in expected).items():
        assert f'findings">{rule}</a></td><td class="num">{n}</td>' in text, rule
    for source, n in Counter(f["source"] or "unspecified" for f in expected).items():
        assert f'<td>{source}</td><td class="num">{n}</td>' in text, source
    rule = Counter(f["rule"] for f in expected).most_common(1)[0][0]
    drill = httpx.get(site.url + f"{URL}/{rule}/findings", cookies=cookies).text
    for f in expected:
        if f["rule"] == rule:
            assert f"<td>{f['resource']}</td>" in drill
    page = httpx.get(site.url + f"{URL}/{rule}/findings?offset=50", cookies=cookies).text
    assert "No findings." in page
    engineer = site.session_cookies("integration-engineer")
    assert httpx.get(site.url + URL, cookies=engineer).status_code == 200
    assert httpx.get(site.url + f"{URL}/{rule}/findings", cookies=engineer).status_code == 403
    for role in ("clinician", "executive", "analyst"):
        assert httpx.get(site.url + URL, cookies=site.session_cookies(role)).status_code == 403


@pytest.mark.browser
def test_run_now_in_the_browser(rules_site: WebSite, browser: Browser) -> None:
    site = rules_site
    context = browser.new_context()
    try:
        page = context.new_page()
        name, password = site.users["administrator"]
        login(page, site.url, name, password)
        watch = PageWatch().attach(page)
        open_page(page, site.url + URL)
        assert axe_violations(page) == []
        page.get_by_role("button", name="Run now").click()
        expect(page.locator("#rule-run [role=status]")).to_contain_text("Finished", timeout=60_000)
        expected = _expected(site)
        expect(page.locator("#rule-run")).to_contain_text(f"{len(expected)} findings")
        assert axe_violations(page) == []
        page.locator("#rule-run a").first.click()
        page.wait_for_url("**/findings")
        assert page.locator("tbody tr").count() >= 1
        assert axe_violations(page) == []
        assert watch.problems == []
    finally:
        context.close()
