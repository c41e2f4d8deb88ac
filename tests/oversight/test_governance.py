"""The governance summary of a period: open change requests, artifacts in review and the
decisions taken, checked against the stored Tasks and Provenance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.governance import ACTION_SYSTEM, Governance
from cmio.governance.requests import ChangeRequests
from cmio.indexing.extract import SearchIndexer
from cmio.model import load_model
from cmio.oversight import ReportingPeriod
from cmio.oversight.governance import governance_summary, headlines, report_sections
from cmio.reports import Report, Table, render_html, render_pdf
from cmio.security.grant import AccessGrant
from cmio.store import open_repository
from cmio.store.base import Repository, SearchQuery


def _user(name: str, *roles: str) -> AccessGrant:
    return AccessGrant(name, "user", frozenset({"user/*.cruds"}), roles=frozenset(roles))


AUTHOR = _user("ana", "informaticist")
CLINICAL = _user("dr-chen", "clinician")
TECHNICAL = _user("tom", "informaticist")


class Clock:
    """A settable clock for the governance service; each reading is a second later."""

    def __init__(self) -> None:
        self.now = "2026-01-01T00:00:00.000Z"
        self.ticks = 0

    def __call__(self) -> str:
        self.ticks += 1
        day, _, _ = self.now.partition("T")
        hour = int(self.now[11:13])
        return f"{day}T{hour:02d}:{self.ticks // 60 % 60:02d}:{self.ticks % 60:02d}.000Z"


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Repository]:
    repo = open_repository(f"sqlite:///{tmp_path / 'gov.db'}", indexer=SearchIndexer(load_model()))
    yield repo
    repo.close()


def _valueset(governance: Governance, rid: str, title: str, codes: list[str]) -> None:
    governance.edit(
        {
            "resourceType": "ValueSet",
            "id": rid,
            "url": f"https://example.org/fhir/ValueSet/{rid}",
            "version": "1.0.0",
            "title": title,
            "status": "draft",
            "compose": {
                "include": [{"system": "http://loinc.org", "concept": [{"code": c} for c in codes]}]
            },
        },
        AUTHOR,
    )


def _stored(repository: Repository, rtype: str) -> list[dict[str, Any]]:
    page = repository.search(SearchQuery(rtype, (), 1000, 0, total=False))
    return [orjson.loads(s.data) for s in page.resources if s.data]


def test_summary_matches_the_stored_requests_and_decisions(repository: Repository) -> None:
    clock = Clock()
    governance = Governance(repository, clock=clock)
    requests = ChangeRequests(governance)
    clock.now = "2025-12-20T09:00:00.000Z"  # before the period
    _valueset(governance, "vs-a1c", "HbA1c tests", ["4548-4"])
    _valueset(governance, "vs-ldl", "LDL tests", ["13457-7"])
    _valueset(governance, "vs-bp", "Blood pressure", ["85354-9"])
    governance.transition("ValueSet", "vs-a1c", "submit", AUTHOR)
    old = requests.create(CLINICAL, "Old request", "Because", "routine", ["ValueSet/vs-a1c"])
    clock.now = "2026-02-03T10:00:00.000Z"  # inside 2026-Q1
    governance.transition("ValueSet", "vs-a1c", "approve", TECHNICAL, "Looks right")
    governance.transition("ValueSet", "vs-ldl", "submit", AUTHOR)
    governance.transition("ValueSet", "vs-ldl", "approve", CLINICAL)
    governance.transition("ValueSet", "vs-ldl", "approve", TECHNICAL)
    urgent = requests.create(
        CLINICAL, "Add LDL", "Statin therapy review", "urgent", ["ValueSet/vs-ldl"]
    )
    requests.move(str(urgent["id"]), "accepted", CLINICAL)
    done = requests.create(CLINICAL, "Fix BP", "Wrong panel", "asap")
    requests.move(str(done["id"]), "rejected", TECHNICAL, "Duplicate of another request")
    clock.now = "2026-04-02T08:00:00.000Z"  # after the period
    governance.transition("ValueSet", "vs-bp", "submit", AUTHOR)

    period = ReportingPeriod.parse("2026-Q1")
    summary = governance_summary(repository, period)

    tasks = _stored(repository, "Task")
    open_tasks = [t for t in tasks if t["status"] in ("requested", "accepted", "in-progress")]
    assert [r.id for r in summary.open_requests] == [urgent["id"], old["id"]]  # urgent first
    assert len(summary.open_requests) == len(open_tasks) == 2
    assert summary.open_by_status == {"requested": 1, "accepted": 1, "in-progress": 0}
    assert summary.open_by_priority["urgent"] == 1 and summary.open_by_priority["routine"] == 1
    assert summary.open_requests[0].artifacts == ("ValueSet/vs-ldl",)

    in_period = [
        p
        for p in _stored(repository, "Provenance")
        if "2026-01-01" <= p["recorded"][:10] <= "2026-03-31"
        and p["activity"]["coding"][0]["system"] == ACTION_SYSTEM
    ]
    assert len(summary.decisions) == len(in_period) == 8
    assert [d.recorded for d in summary.decisions] == sorted(p["recorded"] for p in in_period)
    approval = next(d for d in summary.decisions if d.action == "approve" and "a1c" in d.label)
    assert approval.comment == "Looks right" and approval.capacity == "technical-lead"
    assert summary.closed == {"rejected": 1}

    states = {a.id: a.state for a in summary.in_review}
    assert states == {"vs-a1c": "in-review", "vs-ldl": "approved", "vs-bp": "in-review"}
    a1c = next(a for a in summary.in_review if a.id == "vs-a1c")
    assert a1c.approvals == (("technical-lead", "tom"),) and a1c.version == "1.0.0"
    assert summary.awaiting_approval == 2 and summary.awaiting_activation == 1

    tiles = {h.label: h for h in headlines(summary)}
    assert tiles["Open change requests"].value == "2"
    assert tiles["Open change requests"].status == "warn"  # an urgent one is open
    assert tiles["Artifacts in review"].value == "2"
    decisions = tiles["Governance decisions"]
    assert decisions.value == "8" and decisions.href.startswith("/workbench/governance")
    assert dict(decisions.trend) == {"2026-01": 0.0, "2026-02": 8.0, "2026-03": 0.0}


def test_report_section_renders(repository: Repository) -> None:
    clock = Clock()
    governance = Governance(repository, clock=clock)
    clock.now = "2026-10-05T12:00:00.000Z"
    _valueset(governance, "vs-x", "Codes <x>", ["1-8"])
    governance.transition("ValueSet", "vs-x", "submit", AUTHOR, "Please review")
    summary = governance_summary(repository, ReportingPeriod.parse("2026-10"))
    sections = report_sections(summary)
    assert [s.heading for s in sections] == ["Governance decisions"]
    tables = [b for b in sections[0].blocks if isinstance(b, Table)]
    assert tables[0].rows[0][1:4] == [
        "submit",
        "https://example.org/fhir/ValueSet/vs-x|1.0.0",
        "ana",
    ]
    from datetime import UTC, datetime

    report = Report("Steering committee", "2026-10", datetime(2026, 11, 1, tzinfo=UTC), sections)
    html = render_html(report)
    assert "Codes &lt;x&gt;" in html and "Please review" in html
    assert render_pdf(report).startswith(b"%PDF")
    empty = governance_summary(repository, ReportingPeriod.parse("2025"))
    assert "No governance decisions were recorded in 2025" in render_html(
        Report("r", "", datetime(2026, 1, 1, tzinfo=UTC), report_sections(empty))
    )
