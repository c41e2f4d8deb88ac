"""Governance board (issue 12, item 7; issue 11, items 1, 2 and 5): change requests by
status, artifacts in review, and an artifact page with the diff against the active
version, the impact report, the approvals recorded and the lifecycle actions.

Decisions go through ``$governance-transition`` as the viewer (their token's roles), so
the governance service decides who may approve: the page offers the actions and shows
the answer, a refusal's OperationOutcome message in an alert
(https://hl7.org/fhir/uv/crmi/artifact-lifecycle.html). Change-request moves call the
service in-process with the viewer's grant.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmio.governance import GOVERNED_TYPES, GovernanceError, canonical_of, state_of
from cmio.governance.agenda import build_agenda
from cmio.governance.requests import BOARD_STATUSES, PRIORITIES, ChangeRequests
from cmio.governance.service import IMPACT_EXTENSION, Governance
from cmio.oversight import ReportingPeriod
from cmio.oversight.governance import (
    decision_row,
    governance_summary,
    headlines,
    request_row,
)
from cmio.web.context import FhirCallError, Viewer, WebContext
from cmio.web.pages import WORKBENCH, NavItem

__all__ = ["ROLES", "nav", "routes"]

ROLES = (*WORKBENCH, "clinician")
"""Who uses the board: the informatics team and the clinical leads (clinicians)."""
_NEXT = {
    "draft": ("submit",),
    "in-review": ("approve", "reject"),
    "approved": ("activate", "retire"),
    "active": ("retire",),
    "retired": (),
}
_MOVES = {
    "requested": ("accepted", "rejected"),
    "accepted": ("in-progress", "rejected"),
    "in-progress": ("completed", "rejected"),
}
_IMPACT_TYPES = ("ValueSet", "Library", "Measure")

nav = (NavItem("Governance", "/workbench/governance", "Workbench", ROLES),)


def _governance(ctx: WebContext) -> Governance:
    from cmio.api.ops.governance_transition import env_governance

    governance: Governance = env_governance(ctx.env)
    return governance


class GovernancePages:
    """The board's handlers over one web context."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    # -- the board -----------------------------------------------------------------

    def board(self, request: Request) -> Response:
        """Change requests by status, artifacts in review, the period's decisions."""
        Viewer.of(request).require(*ROLES)
        try:
            period = _period(self.ctx, request)
        except ValueError as error:
            return self.ctx.render(
                request, "error.html", title="Governance", message=str(error), status=400
            )
        governance = _governance(self.ctx)
        summary = governance_summary(self.ctx.env.repository, period, governance.policy)
        return self.ctx.render(
            request,
            "workbench/governance.html",
            title="Governance",
            period=period,
            summary=summary,
            tiles=headlines(summary),
            columns=[(s, summary.columns.get(s, ())) for s in BOARD_STATUSES],
            moves=_MOVES,
            priorities=PRIORITIES,
        )

    def move(self, request: Request) -> Response:
        """Move a change request on the board (the service checks the viewer's roles)."""
        viewer = Viewer.of(request)
        viewer.require(*ROLES)
        task_id = request.path_params["id"]
        form = _form(request)
        status, note = form.get("status", ""), form.get("note", "").strip() or None
        requests = ChangeRequests(_governance(self.ctx))
        message, ok = "", True
        try:
            requests.get(task_id)
        except GovernanceError as error:
            return self.ctx.render(
                request, "error.html", title="Change request", message=str(error), status=404
            )
        try:
            task = requests.move(task_id, status, viewer.grant, note)
            message = f"Change request Task/{task_id} is now '{status}'."
        except GovernanceError as error:
            task, message, ok = requests.get(task_id), str(error), False
        return self.ctx.render(
            request,
            "workbench/governance_card.html",
            title="Change request",
            card=request_row(task),
            moves=_MOVES,
            message=message,
            ok=ok,
        )

    def create(self, request: Request) -> Response:
        """Record a new change request asked for by the viewer (``status`` requested)."""
        viewer = Viewer.of(request)
        viewer.require(*ROLES)
        form = _form(request)
        artifacts = [a.strip() for a in form.get("artifacts", "").split(",") if a.strip()]
        try:
            task = ChangeRequests(_governance(self.ctx)).create(
                viewer.grant,
                form.get("description", ""),
                form.get("rationale", ""),
                form.get("priority", "routine"),
                artifacts,
            )
        except GovernanceError as error:
            return self.ctx.render(
                request,
                "workbench/governance_created.html",
                title="",
                card=None,
                message=str(error),
            )
        return self.ctx.render(
            request,
            "workbench/governance_created.html",
            title="",
            card=request_row(task),
            moves=_MOVES,
            message=f"Change request Task/{task['id']} recorded as 'requested'.",
            ok=True,
        )

    def agenda(self, request: Request) -> Response:
        """The steering-committee agenda and minutes of the period (HTML or Markdown)."""
        Viewer.of(request).require(*ROLES)
        try:
            period = _period(self.ctx, request)
        except ValueError as error:
            return self.ctx.render(
                request, "error.html", title="Agenda", message=str(error), status=400
            )
        from datetime import timedelta

        end = (period.end + timedelta(days=1)).isoformat()
        agenda = build_agenda(ChangeRequests(_governance(self.ctx)), period.start.isoformat(), end)
        name = f"steering-committee-{period.label.replace('/', '_')}"
        if request.query_params.get("format") == "md":
            return Response(
                agenda.to_markdown(),
                media_type="text/markdown; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="{name}.md"'},
            )
        return Response(agenda.to_html(), media_type="text/html; charset=utf-8")

    # -- one artifact --------------------------------------------------------------

    def artifact(self, request: Request) -> Response:
        """An artifact version: state, approvals, actions, diff, impact, history."""
        Viewer.of(request).require(*ROLES)
        rtype, rid = request.path_params["type"], request.path_params["id"]
        if rtype not in GOVERNED_TYPES:
            return self.ctx.render(
                request,
                "error.html",
                title="Not a governed artifact",
                message=f"{rtype} is not a governed artifact type.",
                status=404,
            )
        resource = self.ctx.fhir(request, "GET", f"{rtype}/{rid}")
        governance = _governance(self.ctx)
        active = _active_version(governance, resource)
        diff = None
        if active is not None:
            answer = self.ctx.fhir(
                request, "GET", f"{rtype}/{rid}/$diff", [("other", f"{rtype}/{active['id']}")]
            )
            diff = _diff_view(answer)
        history = governance.decisions(rtype, rid)
        impact = next(
            (
                str(e.get("valueString"))
                for p in reversed(history)
                for e in p.get("extension") or []
                if e.get("url") == IMPACT_EXTENSION
            ),
            None,
        )
        url, version = canonical_of(resource)
        return self.ctx.render(
            request,
            "workbench/governance_artifact.html",
            title=str(resource.get("title") or resource.get("name") or f"{rtype}/{rid}"),
            url=url or "",
            version=version or "",
            date=resource.get("date", ""),
            active=active,
            active_label="|".join(x or "" for x in canonical_of(active)) if active else "",
            diff=diff,
            history=[r for r in (decision_row(p) for p in history) if r is not None],
            impact=impact,
            impact_links=self._may_analyze(Viewer.of(request), rtype),
            **self._decision(governance, resource),
        )

    def _may_analyze(self, viewer: Viewer, rtype: str) -> bool:
        """Whether the viewer may open the ``$impact`` report (it reads every patient's
        data: unrestricted read and search, which clinicians do not have)."""
        if rtype not in _IMPACT_TYPES or "impact" not in self.ctx.router.operations:
            return False
        if viewer.unrestricted:
            return True
        from cmio.security.policy import Policy

        policy = Policy(viewer.grant, self.ctx.env.repository, self.ctx.env.model)
        return policy.operation("impact", rtype).allowed

    def _decision(self, governance: Governance, resource: dict[str, Any]) -> dict[str, Any]:
        rtype, rid = str(resource["resourceType"]), str(resource["id"])
        state = state_of(resource)
        given = governance.approvals(rtype, rid) if state == "in-review" else {}
        return {
            "rtype": rtype,
            "rid": rid,
            "state": state,
            "actions": _NEXT[state],
            "capacities": [
                (name, sorted(roles), given.get(name))
                for name, roles in governance.policy.approvers.items()
            ],
        }

    def transition(self, request: Request) -> Response:
        """Take a lifecycle action through ``$governance-transition`` as the viewer; the
        decision panel comes back with the outcome (an alert when refused)."""
        Viewer.of(request).require(*ROLES)
        rtype, rid = request.path_params["type"], request.path_params["id"]
        form = _form(request)
        action, comment = form.get("action", ""), form.get("comment", "").strip()
        parameters: list[dict[str, Any]] = [{"name": "action", "valueCode": action}]
        if comment:
            parameters.append({"name": "comment", "valueString": comment})
        message, ok = "", True
        try:
            answer = self.ctx.fhir(
                request,
                "POST",
                f"{rtype}/{rid}/$governance-transition",
                body={"resourceType": "Parameters", "parameter": parameters},
            )
            state = next(
                (p.get("valueCode") for p in answer.get("parameter", []) if p["name"] == "state"),
                "",
            )
            message = f"{action.capitalize()} recorded: the artifact is now '{state}'."
        except FhirCallError as error:
            message, ok = str(error), False
        resource = self.ctx.fhir(request, "GET", f"{rtype}/{rid}")
        return self.ctx.render(
            request,
            "workbench/governance_decision.html",
            title="Decision",
            message=message,
            ok=ok,
            **self._decision(_governance(self.ctx), resource),
        )


def _period(ctx: WebContext, request: Request) -> ReportingPeriod:
    """The ``period`` parameter, else the current year: decisions are taken now, whatever
    the last day of clinical data.

    Raises:
        ValueError: a period text that does not parse.
    """
    if request.query_params.get("period"):
        return ctx.period(request)
    return ReportingPeriod.year_of(date.today())


def _form(request: Request) -> dict[str, str]:
    """The urlencoded body of an htmx POST (read on the worker thread)."""
    from urllib.parse import parse_qsl

    import anyio.from_thread

    body: bytes = anyio.from_thread.run(request.body)
    return dict(parse_qsl(body.decode("utf-8", "replace")))


def _active_version(governance: Governance, resource: dict[str, Any]) -> dict[str, Any] | None:
    """The highest active version with the artifact's canonical URL (not itself)."""
    from cmio.terminology.resources import version_key

    rtype = str(resource["resourceType"])
    url, _ = canonical_of(resource)
    if url is None:
        return None
    found = governance.search(rtype, "url" if rtype != "Basic" else None, url, None)
    active = [
        r
        for r in found
        if canonical_of(r)[0] == url
        and r.get("id") != resource.get("id")
        and state_of(r) == "active"
    ]
    active.sort(key=lambda r: version_key(canonical_of(r)[1]))
    return active[-1] if active else None


def _diff_view(answer: dict[str, Any]) -> dict[str, Any]:
    """The parts of a ``$diff`` answer the side-by-side view shows."""
    added: list[tuple[str, str]] = []
    removed: list[tuple[str, str]] = []
    changes: list[tuple[str, str, str, str]] = []
    for p in answer.get("parameter", []):
        coding = p.get("valueCoding") or {}
        if p["name"] == "code-added":
            added.append((str(coding.get("system")), str(coding.get("code"))))
        elif p["name"] == "code-removed":
            removed.append((str(coding.get("system")), str(coding.get("code"))))
        elif p["name"] == "change":
            parts = {x["name"]: x.get("valueString", x.get("valueCode", "")) for x in p["part"]}
            changes.append(
                (
                    parts.get("op", ""),
                    parts.get("path", ""),
                    _pretty(parts.get("old")),
                    _pretty(parts.get("new")),
                )
            )
    return {"added": added, "removed": removed, "changes": changes}


def _pretty(text: str | None) -> str:
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=1, ensure_ascii=False)
    except ValueError:
        return text


def routes(ctx: WebContext) -> list[Route]:
    """The board's routes."""
    pages = GovernancePages(ctx)
    return [
        Route("/workbench/governance", pages.board),
        Route("/workbench/governance/agenda", pages.agenda),
        Route("/workbench/governance/request", pages.create, methods=["POST"]),
        Route("/workbench/governance/request/{id}/move", pages.move, methods=["POST"]),
        Route("/workbench/governance/artifact/{type}/{id}", pages.artifact),
        Route(
            "/workbench/governance/artifact/{type}/{id}/transition",
            pages.transition,
            methods=["POST"],
        ),
    ]
