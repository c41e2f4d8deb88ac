"""The terminology browser: search, concept pages, expansion and membership, checked
against the terminology service's own answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cmio.api.http import FhirRequest
from cmio.terminology.lookup import lookup
from cmio.terminology.service import ExpandRequest, TerminologyService
from cmio.testing.browser import axe_violations, open_page
from cmio.testing.web import WebSite
from tests.web.conftest import RolePage

SYSTEM = "https://cmio.dev/test/CodeSystem/icd10cm-fragment"
VALUESET = "https://cmio.dev/test/ValueSet/diabetes-type-2"

# A small ICD-10-CM-shaped hierarchy (codes and displays from ICD-10-CM chapter 4).
CODESYSTEM: dict[str, Any] = {
    "resourceType": "CodeSystem",
    "id": "w4-icd10cm-fragment",
    "url": SYSTEM,
    "version": "2026",
    "name": "ICD10CMFragment",
    "title": "ICD-10-CM fragment (test)",
    "status": "active",
    "content": "fragment",
    "hierarchyMeaning": "is-a",
    "concept": [
        {
            "code": "E08-E13",
            "display": "Diabetes mellitus",
            "concept": [
                {
                    "code": "E10",
                    "display": "Type 1 diabetes mellitus",
                    "concept": [
                        {
                            "code": "E10.9",
                            "display": "Type 1 diabetes mellitus without complications",
                        }
                    ],
                },
                {
                    "code": "E11",
                    "display": "Type 2 diabetes mellitus",
                    "concept": [
                        {
                            "code": "E11.9",
                            "display": "Type 2 diabetes mellitus without complications",
                        },
                        {
                            "code": "E11.65",
                            "display": "Type 2 diabetes mellitus with hyperglycemia",
                        },
                    ],
                },
            ],
        },
        {"code": "I10", "display": "Essential (primary) hypertension"},
    ],
}
VALUESET_RESOURCE: dict[str, Any] = {
    "resourceType": "ValueSet",
    "id": "w4-diabetes-type-2",
    "url": VALUESET,
    "version": "1.0.0",
    "name": "DiabetesType2",
    "title": "Type 2 diabetes (test)",
    "status": "active",
    "compose": {
        "include": [
            {"system": SYSTEM, "filter": [{"property": "concept", "op": "is-a", "value": "E11"}]}
        ]
    },
}


def _put(site: WebSite, resource: dict[str, Any]) -> None:
    path = f"{resource['resourceType']}/{resource['id']}"
    answer = site.app.web.ctx.router.handle(
        FhirRequest(
            "PUT",
            path,
            [],
            {"content-type": "application/fhir+json", "accept": "application/fhir+json"},
            json.dumps(resource).encode(),
        )
    )
    assert answer.status in (200, 201), answer.body


@pytest.fixture(scope="module")
def content(site: WebSite) -> Iterator[TerminologyService]:
    """The test code system and value set, stored; the server's terminology service."""
    _put(site, CODESYSTEM)
    _put(site, VALUESET_RESOURCE)
    service = site.app.env.terminology
    assert service is not None
    yield service


def _get(site: WebSite, role: str, path: str, params: dict[str, str]) -> httpx.Response:
    return httpx.get(site.url + path, params=params, cookies=site.session_cookies(role), timeout=60)


def _concept_links(html: str) -> list[tuple[str, str]]:
    """(system, code) of the concept links of a page, in order."""
    out = []
    for href in re.findall(r'href="(/workbench/terminology/concept\?[^"]+)"', html):
        query = parse_qs(urlsplit(href.replace("&amp;", "&")).query)
        out.append((query["system"][0], query["code"][0]))
    return out


def _service_filter(service: TerminologyService, system: str, text: str) -> list[str]:
    answer = service.expand(ExpandRequest(url=f"{system}?fhir_vs", filter=text))
    return [m["code"] for m in answer["expansion"].get("contains", [])]


def test_search_in_one_system_is_the_services_filter(
    site: WebSite, content: TerminologyService
) -> None:
    for text in ("diabetes", "type 2", "hyper", "E11"):
        page = _get(
            site, "informaticist", "/workbench/terminology/results", {"q": text, "system": SYSTEM}
        )
        assert page.status_code == 200
        shown = [code for system, code in _concept_links(page.text) if system == SYSTEM]
        expected = _service_filter(content, SYSTEM, text)
        exact = [text] if text in expected else []  # an exact code comes first
        assert shown == exact + [c for c in expected if c not in exact], text


def test_search_across_systems(site: WebSite, content: TerminologyService) -> None:
    page = _get(site, "analyst", "/workbench/terminology", {"q": "male"})
    assert page.status_code == 200
    links = _concept_links(page.text)
    systems = {s for s, _ in links}
    assert "http://hl7.org/fhir/administrative-gender" in systems
    assert links[0][1] == "male"  # exact codes first
    for system in systems:  # every hit is what the service's filter finds, none missing
        expected = set(_service_filter(content, system, "male"))
        assert {c for s, c in links if s == system} == expected, system
    code = _get(site, "analyst", "/workbench/terminology", {"q": "E11.65"})
    assert _concept_links(code.text)[0] == (SYSTEM, "E11.65")
    unit = _get(site, "analyst", "/workbench/terminology/results", {"q": "mg/dL"})
    assert "unit expression" in unit.text and "UCUM" in unit.text
    empty = _get(site, "analyst", "/workbench/terminology/results", {"q": "qqqzzzx"})
    assert "No codes found" in empty.text


def test_concept_page_shows_lookup_and_hierarchy(
    site: WebSite, content: TerminologyService
) -> None:
    page = _get(
        site, "clinician", "/workbench/terminology/concept", {"system": SYSTEM, "code": "E11"}
    )
    assert page.status_code == 200
    answer = lookup(content.resources, SYSTEM, "E11")
    display = next(p["valueString"] for p in answer["parameter"] if p["name"] == "display")
    assert display in page.text
    related = [
        next(x["valueCode"] for x in p["part"] if x["name"] == "value")
        for p in answer["parameter"]
        if p["name"] == "property" and p["part"][0]["valueCode"] in ("parent", "child")
    ]
    assert [c for _, c in _concept_links(page.text)] == related == ["E08-E13", "E11.9", "E11.65"]
    assert "Parents (1)" in page.text and "Children (2)" in page.text
    missing = _get(
        site, "clinician", "/workbench/terminology/concept", {"system": SYSTEM, "code": "X99"}
    )
    assert missing.status_code == 404
    assert 'role="alert"' in missing.text and "X99" in missing.text


def test_value_set_expansion_matches_expand(site: WebSite, content: TerminologyService) -> None:
    page = _get(site, "informaticist", "/workbench/terminology/valueset", {"url": VALUESET})
    assert page.status_code == 200
    expected = content.expand(ExpandRequest(url=VALUESET, count=50))["expansion"]
    assert [c for _, c in _concept_links(page.text)] == [m["code"] for m in expected["contains"]]
    assert f"{expected['total']} codes" in page.text
    core = "http://hl7.org/fhir/ValueSet/resource-types"
    paged = _get(
        site, "informaticist", "/workbench/terminology/valueset", {"url": core, "offset": "50"}
    )
    second = content.expand(ExpandRequest(url=core, count=50, offset=50))["expansion"]
    assert [c for _, c in _concept_links(paged.text)] == [m["code"] for m in second["contains"]]
    assert f"{second['total']} codes" in paged.text and "Previous page" in paged.text
    filtered = _get(
        site, "informaticist", "/workbench/terminology/valueset", {"url": core, "filter": "pat"}
    )
    narrow = content.expand(ExpandRequest(url=core, count=50, filter="pat"))["expansion"]
    assert [c for _, c in _concept_links(filtered.text)] == [m["code"] for m in narrow["contains"]]
    listing = _get(site, "informaticist", "/workbench/terminology/valuesets", {"q": "type 2 diab"})
    assert "Type 2 diabetes (test)" in listing.text and "1 value sets" in listing.text


def _validate(site: WebSite, url: str, system: str, code: str) -> dict[str, Any]:
    answer = site.app.web.ctx.router.handle(
        FhirRequest(
            "GET",
            "ValueSet/$validate-code",
            [("url", url), ("system", system), ("code", code)],
            {"accept": "application/fhir+json"},
        )
    )
    return {
        p["name"]: next(v for k, v in p.items() if k.startswith("value"))
        for p in json.loads(answer.body)["parameter"]
        if p["name"] in ("result", "message")
    }


def test_membership_check_matches_validate_code(site: WebSite, content: TerminologyService) -> None:
    for code, member in (("E11.9", True), ("E10.9", False)):
        page = _get(
            site,
            "clinician",
            "/workbench/terminology/valueset/check",
            {"url": VALUESET, "system": SYSTEM, "code": code},
        )
        assert page.status_code == 200
        expected = _validate(site, VALUESET, SYSTEM, code)
        assert expected["result"] is member
        assert ("Member:" in page.text) is member
        assert ("Not a member:" in page.text) is not member
        if "message" in expected:
            assert expected["message"].replace("'", "&#39;") in page.text
    partial = httpx.get(
        site.url + "/workbench/terminology/valueset/check",
        params={"url": "https://nowhere.example/vs", "code": "x"},
        headers={"hx-request": "true"},
        cookies=site.session_cookies("clinician"),
    )
    assert partial.status_code == 200 and 'role="alert"' in partial.text
    assert "<main" not in partial.text


@pytest.mark.parametrize("role", ["executive", "privacy-officer"])
def test_other_roles_are_refused(site: WebSite, role: str) -> None:
    page = _get(site, role, "/workbench/terminology", {})
    assert page.status_code == 403
    assert "Terminology" not in page.text.split("<main", 1)[0]  # not in their navigation


@pytest.mark.browser
def test_browse_search_concept_and_membership(
    site: WebSite, as_role: RolePage, content: TerminologyService
) -> None:
    page, watch = as_role("informaticist")
    open_page(page, site.url + "/workbench/terminology")
    assert axe_violations(page) == []
    page.get_by_label("System").select_option(SYSTEM)
    page.get_by_label("Code or words").fill("type 2")  # live search, debounced
    row = page.locator("#results").get_by_role("link", name="E11", exact=True)
    row.wait_for()
    page.wait_for_load_state("networkidle")
    row.click()
    page.wait_for_url("**/concept?**code=E11")
    page.get_by_role("link", name="E11.65").click()
    page.get_by_role("heading", name="Parents (1)").wait_for()
    assert page.get_by_role("link", name="E11", exact=True).count() == 1
    assert axe_violations(page) == []
    open_page(page, site.url + f"/workbench/terminology/valueset?url={VALUESET}")
    page.get_by_label("System", exact=True).fill(SYSTEM)
    page.get_by_label("Code", exact=True).fill("E10.9")
    page.get_by_role("button", name="Check ($validate-code)").click()
    status = page.locator("#check-result [role=status]")
    status.wait_for()
    assert "Not a member" in status.inner_text()
    assert axe_violations(page) == []
    assert watch.problems == []


@pytest.mark.browser
def test_clinician_opens_the_browser(site: WebSite, as_role: RolePage) -> None:
    page, watch = as_role("clinician")
    open_page(page, site.url + "/workbench/terminology?q=final")
    assert page.locator("#results tbody tr").count() > 0
    assert page.get_by_role("link", name="Terminology").get_attribute("aria-current") == "page"
    assert axe_violations(page) == []
    open_page(page, site.url + "/workbench/terminology/valuesets")
    page.get_by_label("Title or URL contains").fill("administrativegender")
    page.get_by_role("link", name="AdministrativeGender", exact=True).wait_for()  # live filter
    assert axe_violations(page) == []
    assert watch.problems == []
