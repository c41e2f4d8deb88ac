"""The governance board: change requests, artifacts in review, the artifact page (diff,
approvals, actions) and the two-lead approval flow in the browser."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import orjson
import pytest
from playwright.sync_api import Browser

from cmio.governance import Governance, diff_artifacts, state_of
from cmio.governance.requests import ChangeRequests
from cmio.security.grant import AccessGrant
from cmio.testing.browser import PageWatch, axe_violations, login, open_page
from cmio.testing.web import WebSite

GENDER = "http://hl7.org/fhir/administrative-gender"
YEAR = str(date.today().year)


def _grant(name: str, *roles: str) -> AccessGrant:
    return AccessGrant(name, "user", frozenset({"user/*.cruds"}), roles=frozenset(roles))


AUTHOR = _grant("w4-author", "informaticist")


@dataclass
class Users:
    """Users added for these tests: role label -> (name, password)."""

    accounts: dict[str, tuple[str, str]]

    def cookies(self, site: WebSite, label: str) -> dict[str, str]:
        name, password = self.accounts[label]
        answer = httpx.post(
            site.url + "/auth/login",
            data={"username": name, "password": password, "next": "/"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        jar = dict(answer.cookies)
        page = httpx.get(site.url + "/workbench/governance", cookies=jar)
        return {**jar, "cmio_csrf": page.cookies["cmio_csrf"]}


@pytest.fixture(scope="module")
def users(site: WebSite) -> Users:
    """A clinical lead (clinician), two technical leads and an analyst."""
    assert site.app.auth is not None
    store = site.app.auth.server.users
    accounts: dict[str, tuple[str, str]] = {}
    for label, role in (
        ("clinical", "clinician"),
        ("technical", "informaticist"),
        ("engineer", "integration-engineer"),
    ):
        name, password = f"w4-{label}-lead", secrets.token_urlsafe(12)
        if store.get(name) is None:
            store.add(name, password, [role])
        else:
            store.set_password(name, password)
        accounts[label] = (name, password)
    return Users(accounts)


@dataclass
class Governed:
    """An active value set, its new draft version and a change request about it."""

    active: dict[str, Any]
    draft: dict[str, Any]
    task: dict[str, Any]


@pytest.fixture
def governed(site: WebSite) -> Iterator[Governed]:
    """v1.0.0 active (male, female), v1.1.0 draft adding ``other``, a change request."""
    repository = site.app.env.repository
    url = f"https://cmio.dev/test/ValueSet/w4-{uuid.uuid4().hex[:8]}"
    governance = Governance(repository)
    first = {
        "resourceType": "ValueSet",
        "url": url,
        "version": "1.0.0",
        "name": "W4Genders",
        "title": "Genders recorded (test)",
        "status": "active",
        "compose": {
            "include": [{"system": GENDER, "concept": [{"code": "male"}, {"code": "female"}]}]
        },
    }
    with repository.transaction() as tx:
        stored = tx.create(first)
    active = orjson.loads(stored.data or b"{}")
    draft = governance.new_version("ValueSet", active["id"], "1.1.0", AUTHOR).artifact
    draft["compose"]["include"][0]["concept"].append({"code": "other"})
    governance.edit(draft, AUTHOR)
    task = ChangeRequests(governance).create(
        AUTHOR,
        f"Record 'other' gender ({url})",
        "Patients who identify as neither are miscoded today",
        "urgent",
        [f"ValueSet/{draft['id']}"],
    )
    yield Governed(active, draft, task)


def _post(
    site: WebSite, cookies: dict[str, str], path: str, data: dict[str, str]
) -> httpx.Response:
    return httpx.post(
        site.url + path,
        data=data,
        cookies=cookies,
        headers={"x-csrf-token": cookies["cmio_csrf"], "origin": site.url, "hx-request": "true"},
        timeout=120,
    )


def test_board_lists_requests_artifacts_and_decisions(
    site: WebSite, users: Users, governed: Governed
) -> None:
    cookies = users.cookies(site, "technical")
    page = httpx.get(site.url + "/workbench/governance", params={"period": YEAR}, cookies=cookies)
    assert page.status_code == 200
    text = page.text
    assert governed.task["description"].replace("'", "&#39;") in text
    assert f'id="card-{governed.task["id"]}"' in text
    assert f"/workbench/governance/artifact/ValueSet/{governed.draft['id']}" in text
    # the requested column counts what the service's board holds
    board = ChangeRequests(Governance(site.app.env.repository)).board()
    assert f"Requested ({len(board['requested'])})" in text
    assert "agenda?period=" in text
    default = httpx.get(site.url + "/workbench/governance", cookies=cookies)  # decisions: now
    assert f"Decisions in {YEAR} (" in default.text
    agenda = httpx.get(
        site.url + "/workbench/governance/agenda",
        params={"period": YEAR, "format": "md"},
        cookies=cookies,
    )
    assert agenda.status_code == 200 and f"Task/{governed.task['id']}" in agenda.text


def test_artifact_page_shows_the_diff_against_the_active_version(
    site: WebSite, users: Users, governed: Governed
) -> None:
    cookies = users.cookies(site, "clinical")
    page = httpx.get(
        site.url + f"/workbench/governance/artifact/ValueSet/{governed.draft['id']}",
        cookies=cookies,
    )
    assert page.status_code == 200
    diff = diff_artifacts(governed.active, governed.draft, site.app.env.terminology)
    assert diff.codes_added == [(GENDER, "other")] and diff.codes_removed == []
    assert "codes added (1)" in page.text and "codes removed (0)" in page.text
    assert "code=other" in page.text
    assert f"Changes to the definition ({len(diff.changes)})" in page.text
    assert 'Lifecycle state: <span class="status" id="gov-state">draft</span>' in page.text
    assert ">Submit</button>" in page.text


def test_two_leads_approve_and_a_wrong_role_is_refused(
    site: WebSite, users: Users, governed: Governed
) -> None:
    rid = governed.draft["id"]
    path = f"/workbench/governance/artifact/ValueSet/{rid}/transition"
    technical = users.cookies(site, "technical")
    clinical = users.cookies(site, "clinical")
    engineer = users.cookies(site, "engineer")
    submitted = _post(site, technical, path, {"action": "submit"})
    assert submitted.status_code == 200 and 'role="status"' in submitted.text
    assert "now &#39;in-review&#39;" in submitted.text
    early = _post(site, technical, path, {"action": "activate"})  # not approved yet
    assert 'role="alert"' in early.text and "Cannot activate an artifact in state" in early.text
    first = _post(site, technical, path, {"action": "approve"})
    assert "technical-lead" in first.text and "now &#39;in-review&#39;" in first.text
    second_tech = _post(site, engineer, path, {"action": "approve"})  # capacity already given
    assert 'role="alert"' in second_tech.text and "already given" in second_tech.text
    final = _post(site, clinical, path, {"action": "approve"})
    assert "now &#39;approved&#39;" in final.text
    stored = orjson.loads(site.app.env.repository.read("ValueSet", rid).data or b"{}")
    assert state_of(stored) == "approved"
    page = httpx.get(site.url + f"/workbench/governance/artifact/ValueSet/{rid}", cookies=clinical)
    assert "Impact of https://cmio.dev/test/ValueSet/" in page.text  # recorded at approval
    assert "w4-technical-lead" in page.text and "w4-clinical-lead" in page.text  # the record
    link = f"/fhir/ValueSet/{rid}/$impact?_format=pdf"
    assert link not in page.text  # $impact reads every patient: not for clinicians
    page = httpx.get(site.url + f"/workbench/governance/artifact/ValueSet/{rid}", cookies=technical)
    assert link in page.text
    pdf = httpx.get(site.url + link, cookies=technical, timeout=120)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    refused = _post(site, clinical, path, {"action": "activate"})  # clinicians may not activate
    assert refused.status_code == 200 and 'role="alert"' in refused.text
    assert "may not activate" in refused.text
    approvals = Governance(site.app.env.repository).approvals("ValueSet", rid)
    assert approvals == {"technical-lead": "w4-technical-lead", "clinical-lead": "w4-clinical-lead"}
    moved = _post(
        site,
        clinical,
        f"/workbench/governance/request/{governed.task['id']}/move",
        {"status": "accepted"},
    )
    assert "now &#39;accepted&#39;" in moved.text
    assert (
        ChangeRequests(Governance(site.app.env.repository)).get(governed.task["id"])["status"]
        == "accepted"
    )


def test_a_change_request_is_recorded_from_the_board(
    site: WebSite, users: Users, governed: Governed
) -> None:
    cookies = users.cookies(site, "clinical")
    answer = _post(
        site,
        cookies,
        "/workbench/governance/request",
        {
            "description": "Retire the old HbA1c panel",
            "rationale": "Duplicate orders",
            "priority": "asap",
            "artifacts": f"ValueSet/{governed.draft['id']}",
        },
    )
    assert answer.status_code == 200 and 'role="status"' in answer.text
    task_id = answer.text.split('id="card-', 1)[1].split('"', 1)[0]
    task = ChangeRequests(Governance(site.app.env.repository)).get(task_id)
    assert task["requester"]["display"] == "w4-clinical-lead" and task["priority"] == "asap"
    assert task["input"][0]["valueReference"]["reference"] == f"ValueSet/{governed.draft['id']}"
    refused = _post(
        site, cookies, "/workbench/governance/request", {"description": "x", "rationale": " "}
    )
    assert 'role="alert"' in refused.text and "clinical rationale" in refused.text


def test_bad_input_is_explained(site: WebSite, users: Users) -> None:
    cookies = users.cookies(site, "technical")
    period = httpx.get(
        site.url + "/workbench/governance", params={"period": "20x6"}, cookies=cookies
    )
    assert period.status_code == 400 and 'role="alert"' in period.text
    missing = _post(
        site, cookies, "/workbench/governance/request/no-such-task/move", {"status": "accepted"}
    )
    assert missing.status_code == 404 and "No change request Task/no-such-task" in missing.text
    other = httpx.get(site.url + "/workbench/governance/artifact/Patient/x", cookies=cookies)
    assert other.status_code == 404 and "not a governed artifact type" in other.text


@pytest.mark.parametrize("role", ["analyst", "executive"])
def test_other_roles_are_refused(site: WebSite, role: str) -> None:
    page = httpx.get(site.url + "/workbench/governance", cookies=site.session_cookies(role))
    assert page.status_code == 403


@pytest.mark.browser
def test_approve_a_change_in_the_browser(
    site: WebSite, browser: Browser, users: Users, governed: Governed
) -> None:
    rid = governed.draft["id"]
    url = site.url + f"/workbench/governance/artifact/ValueSet/{rid}"
    Governance(site.app.env.repository).transition("ValueSet", rid, "submit", AUTHOR)
    problems: list[str] = []
    for label, expected in (("technical", "in-review"), ("clinical", "approved")):
        context = browser.new_context()
        try:
            page = context.new_page()
            watch = PageWatch().attach(page)
            name, password = users.accounts[label]
            login(page, site.url, name, password)
            open_page(page, url)
            page.get_by_role("button", name="Approve").click()
            status = page.locator("#decision [role=status]")
            status.wait_for()
            assert f"now '{expected}'" in status.inner_text()
            assert page.locator("#gov-state").inner_text() == expected
            if label == "clinical":  # a clinical lead may not activate: the alert says why
                page.get_by_role("button", name="Activate").click()
                alert = page.locator("#decision [role=alert]")
                alert.wait_for()
                assert "may not activate" in alert.inner_text()
            assert axe_violations(page) == []
            if label == "technical":
                open_page(page, site.url + f"/workbench/governance?period={YEAR}")
                assert page.locator(f"#card-{governed.task['id']}").count() == 1
                assert axe_violations(page) == []
            problems += watch.problems
        finally:
            context.close()
    assert problems == []
