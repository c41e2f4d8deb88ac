"""Steering-committee agenda and minutes: open change requests and the period's decisions.

The agenda lists the change requests still open (requested, accepted, in progress) by
priority; the minutes list every decision recorded as a Provenance
(https://hl7.org/fhir/R4/provenance.html) in the period: artifact transitions (submit,
approve, reject, activate, retire, revise) and change-request status changes, with who,
when, on what and why. Exported as Markdown or HTML.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from cmio.governance.requests import ChangeRequests

__all__ = ["Agenda", "build_agenda"]

_OPEN = ("requested", "accepted", "in-progress")


@dataclass(slots=True)
class Agenda:
    """The agenda of a meeting covering ``[start, end)`` (FHIR instants or dates)."""

    start: str
    end: str
    open_requests: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def rows(self) -> tuple[list[list[str]], list[list[str]]]:
        """The table rows: open requests and decisions, as text cells."""
        requests = [
            [
                f"Task/{t.get('id')}",
                str(t.get("priority", "")),
                str(t.get("status", "")),
                str(t.get("description", "")),
                str((t.get("reasonCode") or {}).get("text", "")),
                str((t.get("requester") or {}).get("display", "")),
                ", ".join(
                    str((o.get("valueReference") or {}).get("reference"))
                    for o in t.get("output") or []
                ),
            ]
            for t in self.open_requests
        ]
        decisions = [
            [
                str(p.get("recorded", "")),
                next(
                    (str(c.get("code")) for c in (p.get("activity") or {}).get("coding") or []),
                    "",
                ),
                " ".join(
                    str(x)
                    for x in (
                        (p.get("target") or [{}])[0].get("reference"),
                        f"({(p.get('target') or [{}])[0].get('display')})",
                    )
                ),
                ", ".join(str((a.get("who") or {}).get("display")) for a in p.get("agent") or []),
                "; ".join(str(r.get("text", "")) for r in p.get("reason") or []),
                f"Provenance/{p.get('id')}",
            ]
            for p in self.decisions
        ]
        return requests, decisions

    def to_markdown(self) -> str:
        """The agenda and minutes as Markdown."""
        requests, decisions = self.rows()
        out = [f"# Steering committee: {self.start} to {self.end}", ""]
        out += [f"## Open change requests ({len(requests)})", ""]
        out += _md_table(
            ["Request", "Priority", "Status", "Change", "Rationale", "Requester", "Outputs"],
            requests,
        )
        out += ["", f"## Decisions ({len(decisions)})", ""]
        out += _md_table(["When", "Decision", "On", "By", "Comment", "Record"], decisions)
        return "\n".join(out) + "\n"

    def to_html(self) -> str:
        """The agenda and minutes as a standalone HTML page (all text escaped)."""
        requests, decisions = self.rows()
        title = html.escape(f"Steering committee: {self.start} to {self.end}")
        parts = [
            "<!DOCTYPE html>",
            f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head><body>',
            f"<h1>{title}</h1>",
            f"<h2>Open change requests ({len(requests)})</h2>",
            _html_table(
                ["Request", "Priority", "Status", "Change", "Rationale", "Requester", "Outputs"],
                requests,
            ),
            f"<h2>Decisions ({len(decisions)})</h2>",
            _html_table(["When", "Decision", "On", "By", "Comment", "Record"], decisions),
            "</body></html>",
        ]
        return "\n".join(parts) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["(none)"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return out


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def build_agenda(requests: ChangeRequests, start: str, end: str) -> Agenda:
    """The agenda for ``[start, end)``: every open change request, and the decisions
    (Provenance) recorded in the period, oldest first."""
    board = requests.board()
    agenda = Agenda(start, end, [t for s in _OPEN for t in board[s]])
    governance = requests.governance
    found = governance.search("Provenance", "recorded", f"ge{start}", None)
    agenda.decisions = sorted(
        (p for p in found if start <= str(p.get("recorded", "")) < end),
        key=lambda p: (str(p.get("recorded")), str(p.get("id"))),
    )
    return agenda
