"""Interface monitor (issue 12, item 7): the HL7 v2 engine's channels, message rates by
type, latency, the error queue with a replay button per message, and journal figures.

The figures come from the engine's journal (``settings.hl7_journal``, as
``/interfaces/health``), read on every request: they are live, and the queries are
indexed. Replay puts a parked message back through its channel's processor into the
FHIR store (:func:`cmio.oversight.interfaces.replay`, as ``cmio hl7 replay``); the row
is replaced by the outcome, announced in a ``role=status`` (or ``alert``) element.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmio.oversight.interfaces import (
    ErrorRow,
    error_page,
    headlines,
    interfaces_summary,
    replay,
)
from cmio.web.context import Viewer, WebContext
from cmio.web.pages import WORKBENCH, NavItem

__all__ = ["nav", "routes"]

log = logging.getLogger(__name__)

PAGE = 50
"""Parked messages per page of the error queue."""

nav = (NavItem("Interfaces", "/workbench/interfaces", "Workbench", WORKBENCH),)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "\u2014"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    return "\u2014" if value is None else f"{value:.3f} s"


def _error(row: ErrorRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "channel": row.channel,
        "control_id": row.control_id,
        "type": row.message_type or "unknown",
        "sender": row.sender,
        "received": _when(row.received_at),
        "attempts": row.attempts,
        "error": row.error,
    }


class InterfacePages:
    """The monitor's handlers over one web context."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    @property
    def journal(self) -> str | None:
        return self.ctx.env.settings.hl7_journal or None

    def monitor(self, request: Request) -> Response:
        """Channels, rates, latency, the error queue (paged) and the journal."""
        Viewer.of(request).require(*WORKBENCH)
        try:
            period = self.ctx.period(request)
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError as error:
            return self.ctx.render(
                request, "error.html", title="Interfaces", message=str(error), status=400
            )
        summary = interfaces_summary(None, period, self.journal, error_limit=PAGE, history=False)
        errors = summary.errors
        if summary.available and offset:
            errors = tuple(error_page(self.journal or "", offset, PAGE))
        spec = {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "width": "container",
            "height": 180,
            "data": {
                "values": [
                    {"channel": r.channel, "type": r.message_type, "messages": r.last_day}
                    for r in summary.rates
                ]
            },
            "mark": "bar",
            "encoding": {
                "y": {"field": "type", "type": "nominal", "title": "Message type"},
                "x": {"field": "messages", "type": "quantitative", "title": "Last 24 h"},
                "color": {"field": "channel", "type": "nominal", "title": "Channel"},
            },
        }
        return self.ctx.render(
            request,
            "workbench/interfaces.html",
            title="Interfaces",
            summary=summary,
            tiles=headlines(summary),
            channels=[
                {
                    "row": c,
                    "senders": ", ".join(c.senders),
                    "last": _when(c.last_message_at),
                    "p50": _seconds(c.latency_p50),
                    "p95": _seconds(c.latency_p95),
                }
                for c in summary.channels
            ],
            errors=[_error(e) for e in errors],
            offset=offset,
            page=PAGE,
            spec=spec,
            at=_when(summary.at),
            oldest=_when(summary.oldest),
            newest=_when(summary.newest),
        )

    def replay(self, request: Request) -> Response:
        """Replay one parked message; the row becomes the outcome."""
        Viewer.of(request).require(*WORKBENCH)
        try:
            row_id = int(request.path_params["id"])
        except ValueError:
            row_id = -1
        values: dict[str, Any] = {"id": row_id, "ok": False, "message": ""}
        if self.journal is None:
            values["message"] = "No HL7 journal is configured."
            return self._row(request, values)
        from cmio.api.hl7 import RouterSink
        from cmio.interfaces.hl7v2.engine.channels import ChannelError, load_channels

        configured = self.ctx.env.settings.hl7_channels
        try:  # the message is mapped as its channel maps it (CMIO_HL7_CHANNELS)
            channels = load_channels(configured) if configured else []
        except ChannelError as exc:
            values["message"] = f"Not replayed: the channel configuration is invalid: {exc}"
            return self._row(request, values)
        try:
            sink = RouterSink(self.ctx.router)
            (result,) = replay(self.journal, [row_id], sink, channels=channels)
        except KeyError:
            values["message"] = f"Message #{row_id} is not in the error queue."
            return self._row(request, values)
        except Exception as exc:  # the row stays as it was; say why
            log.exception("replay of journal row %s failed", row_id)
            values["message"] = f"Replay of #{row_id} failed: {exc}"
            return self._row(request, values)
        values["control_id"] = result.control_id
        if result.state == "processed":
            values.update(ok=True, message=f"Message {result.control_id} replayed: processed.")
        else:
            text = f": {result.error}" if result.error else ""
            values["message"] = f"Message {result.control_id} replayed: {result.state}{text}"
        return self._row(request, values)

    def _row(self, request: Request, values: dict[str, Any]) -> Response:
        """The replayed row (status 200 so that htmx swaps it in, refusals included)."""
        return self.ctx.render(
            request, "workbench/interfaces_replayed.html", title="Interfaces", **values
        )


def routes(ctx: WebContext) -> list[Route]:
    """The monitor's routes."""
    pages = InterfacePages(ctx)
    return [
        Route("/workbench/interfaces", pages.monitor),
        Route("/workbench/interfaces/replay/{id}", pages.replay, methods=["POST"]),
    ]
