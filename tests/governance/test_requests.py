"""Change requests: the board, outputs linked to artifact versions, agenda and minutes."""

from __future__ import annotations

import itertools

import pytest

from cmio.governance import Governance, GovernanceError
from cmio.governance.agenda import build_agenda
from cmio.governance.requests import ChangeRequests
from cmio.store.base import Repository
from tests.governance.conftest import user, valueset

CLIN = user("dr-house", "clinician")
TECH = user("ada", "informaticist")
ANALYST = user("bob", "analyst")


@pytest.fixture
def clocked(repository: Repository) -> Governance:
    ticks = itertools.count()
    return Governance(repository, clock=lambda: f"2026-03-01T10:{next(ticks):02d}:00.000Z")


def test_board_moves_and_roles(clocked: Governance) -> None:
    requests = ChangeRequests(clocked)
    a1c = requests.create(
        CLIN,
        "Add HbA1c IFCC code",
        "IFCC results are missed by the diabetes measure",
        "urgent",
        artifacts=["ValueSet/vs-a1c"],
    )
    other = requests.create(TECH, "Rename view column", "analysts asked", "routine")
    third = requests.create(CLIN, "New sepsis order set", "audit finding", "stat")
    board = requests.board()
    assert [t["id"] for t in board["requested"]] == [third["id"], a1c["id"], other["id"]]
    assert a1c["reasonCode"]["text"].startswith("IFCC")
    assert a1c["input"][0]["valueReference"]["reference"] == "ValueSet/vs-a1c"
    with pytest.raises(GovernanceError, match="may not mark") as denied:
        requests.move(a1c["id"], "accepted", ANALYST)
    assert denied.value.status == 403
    with pytest.raises(GovernanceError, match="cannot become 'completed'"):
        requests.move(a1c["id"], "completed", CLIN)
    with pytest.raises(GovernanceError, match="needs a note"):
        requests.move(other["id"], "rejected", TECH)
    requests.move(a1c["id"], "accepted", CLIN, note="steering 2026-03")
    requests.move(a1c["id"], "in-progress", TECH)
    requests.move(other["id"], "rejected", TECH, note="out of scope")
    board = requests.board()
    assert [t["id"] for t in board["in-progress"]] == [a1c["id"]]
    assert [t["id"] for t in board["rejected"]] == [other["id"]]
    assert board["rejected"][0]["note"][0]["text"] == "out of scope"
    with pytest.raises(GovernanceError, match="No change request"):
        requests.move("nope", "accepted", CLIN)
    with pytest.raises(GovernanceError, match="priority must be"):
        requests.create(CLIN, "x", "y", "whenever")
    with pytest.raises(GovernanceError, match="clinical rationale") as missing:
        requests.create(CLIN, "x", " ")
    assert missing.value.expression == "Task.reasonCode"


def test_output_links_artifact_version_and_agenda(
    repository: Repository, clocked: Governance
) -> None:
    requests = ChangeRequests(clocked)
    task = requests.create(CLIN, "Add HbA1c IFCC code", "IFCC results missed", "urgent")
    requests.move(task["id"], "accepted", CLIN)
    requests.move(task["id"], "in-progress", TECH)
    clocked.edit(valueset(["4548-4"]), TECH)
    clocked.transition("ValueSet", "vs-a1c", "submit", TECH)
    clocked.transition("ValueSet", "vs-a1c", "approve", CLIN)
    decision = clocked.transition("ValueSet", "vs-a1c", "approve", TECH)
    version = decision.provenance["target"][0]["reference"]
    with pytest.raises(GovernanceError, match="artifact version"):
        requests.link_output(task["id"], "ValueSet/vs-a1c", TECH)
    linked = requests.link_output(task["id"], version, TECH)
    assert linked["output"][0]["valueReference"]["reference"] == version
    requests.move(task["id"], "completed", TECH)
    open_task = requests.create(TECH, "Retire old lab view", "duplicate <view> & co", "routine")

    agenda = build_agenda(requests, "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z")
    assert [t["id"] for t in agenda.open_requests] == [open_task["id"]]
    recorded = [p["recorded"] for p in agenda.decisions]
    assert recorded == sorted(recorded)
    actions = [p["activity"]["coding"][0]["code"] for p in agenda.decisions]
    assert actions == [
        "requested",
        "accepted",
        "in-progress",
        "submit",
        "approve",
        "approve",
        "completed",
        "requested",
    ]
    markdown = agenda.to_markdown()
    assert "## Open change requests (1)" in markdown and "## Decisions (8)" in markdown
    assert f"{version} (https://example.org/fhir/ValueSet/a1c\\|1.0.0)" in markdown  # cell-escaped
    for prov in agenda.decisions:
        assert f"Provenance/{prov['id']}" in markdown
    page = agenda.to_html()
    assert "duplicate &lt;view&gt; &amp; co" in page and "<view>" not in page
    assert page.count("<tr>") == 1 + 1 + 1 + 8

    # a narrower period keeps only the decisions recorded in it
    start, end = recorded[3], recorded[6]
    window = build_agenda(requests, start, end)
    assert [p["activity"]["coding"][0]["code"] for p in window.decisions] == [
        "submit",
        "approve",
        "approve",
    ]
