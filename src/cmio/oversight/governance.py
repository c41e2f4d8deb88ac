"""Governance in a reporting period: open change requests, artifacts in review and the
decisions taken (issue 11 items 1 and 5, issue 12 items 2 and 8).

Change requests are FHIR ``Task`` resources on a status board, governed artifacts carry
their lifecycle state as a ``meta.tag``, and every decision is a ``Provenance``
(https://hl7.org/fhir/R4/provenance.html) with an activity of the governance-action code
system; see docs/governance.md, "Lifecycle and change requests". The summary feeds the
executive overview's tiles, the governance board and the steering-committee report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from cmio.governance import ACTION_SYSTEM, GOVERNED_TYPES, LIFECYCLE_SYSTEM, Governance
from cmio.governance.lifecycle import ApprovalPolicy, canonical_of, state_of
from cmio.governance.requests import PRIORITIES, ChangeRequests
from cmio.oversight.headline import Headline
from cmio.oversight.period import ReportingPeriod
from cmio.reports import Metric, MetricRow, Paragraph, Section, Table
from cmio.store.base import Repository, SearchClause, SearchQuery

__all__ = [
    "OPEN_STATUSES",
    "REVIEW_STATES",
    "ArtifactRow",
    "DecisionRow",
    "GovernanceSummary",
    "RequestRow",
    "artifacts_in_review",
    "decision_row",
    "governance_summary",
    "headlines",
    "report_sections",
    "request_row",
]

OPEN_STATUSES = ("requested", "accepted", "in-progress")
"""Board columns of a change request still open."""
REVIEW_STATES = ("draft", "in-review", "approved")
"""Lifecycle states of an artifact version not yet active."""
_URGENT = ("urgent", "asap", "stat")
BOARD = "/workbench/governance"


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One change request (a ``Task``).

    Attributes:
        id: the Task id. description: the change asked for. rationale: the clinical
        rationale. priority: ``routine`` ... ``stat``. status: its board column.
        requester: who asked. authored: when (FHIR dateTime text). artifacts: the
        ``input`` artifact references. outputs: the artifact versions it produced.
    """

    id: str
    description: str
    rationale: str
    priority: str
    status: str
    requester: str
    authored: str
    artifacts: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ArtifactRow:
    """A governed artifact version not yet active.

    Attributes:
        type: resource type. id: resource id. title: its title or name. url, version:
        its canonical. state: lifecycle state. date: its ``date``. approvals: (approval
        capacity, user) given since it was last submitted.
    """

    type: str
    id: str
    title: str
    url: str
    version: str
    state: str
    date: str
    approvals: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One recorded decision (a ``Provenance``).

    Attributes:
        recorded: when. action: governance action or change-request status. target: the
        version reference (``Type/id/_history/n``). label: its ``url|version`` or
        reference. who: the user. capacity: the approval capacity, if any. comment: the
        reason given. provenance: the Provenance id.
    """

    recorded: str
    action: str
    target: str
    label: str
    who: str
    capacity: str
    comment: str
    provenance: str


@dataclass(frozen=True, slots=True)
class GovernanceSummary:
    """Governance at a glance for ``period``.

    Attributes:
        open_requests: open change requests, most urgent first.
        open_by_status: open change requests per board column.
        open_by_priority: open change requests per priority.
        in_review: artifact versions not yet active (draft, in review, approved).
        decisions: decisions recorded in the period, oldest first.
        closed: change requests completed or rejected in the period, by status.
        columns: every change request by board column (status), most urgent first.
    """

    period: ReportingPeriod
    open_requests: tuple[RequestRow, ...]
    open_by_status: dict[str, int]
    open_by_priority: dict[str, int]
    in_review: tuple[ArtifactRow, ...]
    decisions: tuple[DecisionRow, ...]
    closed: dict[str, int]
    columns: dict[str, tuple[RequestRow, ...]]

    @property
    def awaiting_approval(self) -> int:
        """Artifact versions in review."""
        return sum(1 for a in self.in_review if a.state == "in-review")

    @property
    def awaiting_activation(self) -> int:
        """Artifact versions approved but not active yet."""
        return sum(1 for a in self.in_review if a.state == "approved")


def request_row(task: dict[str, Any]) -> RequestRow:
    """The board card of a change request ``Task``."""

    def refs(key: str) -> tuple[str, ...]:
        return tuple(
            str((item.get("valueReference") or {}).get("reference"))
            for item in task.get(key) or []
            if (item.get("valueReference") or {}).get("reference")
        )

    return RequestRow(
        str(task.get("id")),
        str(task.get("description", "")),
        str((task.get("reasonCode") or {}).get("text", "")),
        str(task.get("priority", "routine")),
        str(task.get("status")),
        str((task.get("requester") or {}).get("display", "")),
        str(task.get("authoredOn", "")),
        refs("input"),
        refs("output"),
    )


def _coding(concept: dict[str, Any] | None, system: str) -> str | None:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("system") == system and isinstance(coding.get("code"), str):
            code: str = coding["code"]
            return code
    return None


def decision_row(provenance: dict[str, Any]) -> DecisionRow | None:
    """The decision a governance Provenance records (None for any other Provenance)."""
    action = _coding(provenance.get("activity"), ACTION_SYSTEM)
    if action is None:
        return None
    target = (provenance.get("target") or [{}])[0]
    agent = (provenance.get("agent") or [{}])[0]
    capacity = next(
        (
            c.get("code")
            for role in agent.get("role") or []
            for c in role.get("coding") or []
            if str(c.get("system", "")).endswith("/approval-capacity")
        ),
        "",
    )
    return DecisionRow(
        str(provenance.get("recorded", "")),
        action,
        str(target.get("reference", "")),
        str(target.get("display") or target.get("reference", "")),
        str((agent.get("who") or {}).get("display", "")),
        str(capacity),
        "; ".join(str(r.get("text", "")) for r in provenance.get("reason") or []),
        str(provenance.get("id", "")),
    )


def _tagged(governance: Governance, rtype: str, tags: tuple[str, ...]) -> list[dict[str, Any]]:
    """Resources of ``rtype`` with one of the ``system|code`` tags (one search; without a
    search index every resource of the type, which the caller filters)."""
    repository = governance.repository
    clauses = (SearchClause("_tag", tags),) if repository.indexer is not None else ()
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = repository.search(SearchQuery(rtype, clauses, 500, offset, total=False))
        out += [orjson.loads(s.data) for s in page.resources if s.data is not None]
        if len(page.resources) < 500:
            return out
        offset += 500


def artifacts_in_review(governance: Governance) -> list[ArtifactRow]:
    """Governed artifact versions in ``draft``, ``in-review`` or ``approved`` that carry
    the lifecycle tag (artifacts under governance), in review first."""
    rows: list[ArtifactRow] = []
    tags = tuple(f"{LIFECYCLE_SYSTEM}|{state}" for state in REVIEW_STATES)
    for rtype in sorted(GOVERNED_TYPES):
        seen: set[str] = set()
        for artifact in _tagged(governance, rtype, tags):
            rid = str(artifact.get("id"))
            tagged = any(
                t.get("system") == LIFECYCLE_SYSTEM
                for t in (artifact.get("meta") or {}).get("tag") or []
            )
            if rid in seen or not tagged or state_of(artifact) not in REVIEW_STATES:
                continue
            seen.add(rid)
            url, version = canonical_of(artifact)
            state = state_of(artifact)
            approvals = governance.approvals(rtype, rid) if state != "draft" else {}
            rows.append(
                ArtifactRow(
                    rtype,
                    rid,
                    str(artifact.get("title") or artifact.get("name") or url or rid),
                    url or "",
                    version or "",
                    state,
                    str(artifact.get("date", "")),
                    tuple(sorted(approvals.items())),
                )
            )
    order = {"in-review": 0, "approved": 1, "draft": 2}
    rows.sort(key=lambda a: (order[a.state], a.type, a.title.lower()))
    return rows


def governance_summary(
    repository: Repository, period: ReportingPeriod, policy: ApprovalPolicy | None = None
) -> GovernanceSummary:
    """Open change requests, artifacts in review and the decisions of ``period``."""
    governance = Governance(repository, policy)
    board = ChangeRequests(governance).board()
    rank = {p: i for i, p in enumerate(reversed(PRIORITIES))}
    open_rows = sorted(
        (request_row(t) for s in OPEN_STATUSES for t in board[s]),
        key=lambda r: (rank.get(r.priority, 9), r.authored),
    )
    first, last = period.start.isoformat(), period.end.isoformat()
    decisions = []
    for provenance in governance.search("Provenance", "recorded", f"ge{first}", None):
        row = decision_row(provenance)
        if row is not None and first <= row.recorded[:10] <= last:
            decisions.append(row)
    decisions.sort(key=lambda d: (d.recorded, d.provenance))
    closed: Counter[str] = Counter(
        d.action for d in decisions if d.action in ("completed", "rejected") and "Task/" in d.target
    )
    return GovernanceSummary(
        period,
        tuple(open_rows),
        {s: len(board[s]) for s in OPEN_STATUSES},
        {p: sum(1 for r in open_rows if r.priority == p) for p in PRIORITIES},
        tuple(artifacts_in_review(governance)),
        tuple(decisions),
        dict(closed),
        {status: tuple(request_row(t) for t in tasks) for status, tasks in board.items()},
    )


def _monthly(summary: GovernanceSummary) -> tuple[tuple[str, float], ...]:
    counts = Counter(d.recorded[:7] for d in summary.decisions)
    return tuple((month, float(counts.get(month, 0))) for month in summary.period.months())


def headlines(summary: GovernanceSummary) -> list[Headline]:
    """The executive overview's governance tiles (each drills down to the board)."""
    total = len(summary.open_requests)
    urgent = sum(summary.open_by_priority.get(p, 0) for p in _URGENT)
    columns = ", ".join(f"{n} {s}" for s, n in summary.open_by_status.items() if n)
    approvals = sum(1 for d in summary.decisions if d.action == "approve")
    rejections = sum(1 for d in summary.decisions if d.action == "reject")
    return [
        Headline(
            "governance",
            "Open change requests",
            str(total),
            f"{urgent} urgent · {columns}" if columns else "none open",
            "warn" if urgent else "",
            BOARD,
        ),
        Headline(
            "governance",
            "Artifacts in review",
            str(summary.awaiting_approval),
            f"{summary.awaiting_activation} approved, awaiting activation",
            "",
            BOARD + "#artifacts",
        ),
        Headline(
            "governance",
            "Governance decisions",
            str(len(summary.decisions)),
            f"{summary.period.label}: {approvals} approvals, {rejections} rejections",
            "",
            f"{BOARD}?period={summary.period.label}#decisions",
            _monthly(summary),
        ),
    ]


def report_sections(summary: GovernanceSummary) -> list[Section]:
    """The steering-committee report's governance section: the period's decisions, the
    open change requests and the artifacts awaiting a decision."""
    label = summary.period.label
    metrics = MetricRow(
        [
            Metric("Decisions", str(len(summary.decisions)), label),
            Metric("Open change requests", str(len(summary.open_requests))),
            Metric("Awaiting approval", str(summary.awaiting_approval)),
            Metric("Approved, not yet active", str(summary.awaiting_activation)),
        ]
    )
    blocks: list[Any] = [metrics]
    if summary.decisions:
        blocks.append(
            Table(
                ["When", "Decision", "On", "By", "Capacity", "Comment"],
                [
                    [
                        d.recorded[:16].replace("T", " "),
                        d.action,
                        d.label,
                        d.who,
                        d.capacity,
                        d.comment,
                    ]
                    for d in summary.decisions
                ],
                f"Decisions recorded in {label}",
            )
        )
    else:
        blocks.append(Paragraph(f"No governance decisions were recorded in {label}."))
    if summary.open_requests:
        blocks.append(
            Table(
                ["Request", "Priority", "Status", "Change", "Requester", "Artifacts"],
                [
                    [
                        f"Task/{r.id}",
                        r.priority,
                        r.status,
                        r.description,
                        r.requester,
                        ", ".join(r.artifacts),
                    ]
                    for r in summary.open_requests
                ],
                "Open change requests",
            )
        )
    pending = [a for a in summary.in_review if a.state != "draft"]
    if pending:
        blocks.append(
            Table(
                ["Artifact", "Version", "State", "Approvals"],
                [
                    [
                        f"{a.title} ({a.type}/{a.id})",
                        a.version,
                        a.state,
                        ", ".join(f"{c}: {u}" for c, u in a.approvals),
                    ]
                    for a in pending
                ],
                "Artifacts awaiting a decision",
            )
        )
    return [Section("Governance decisions", blocks)]
