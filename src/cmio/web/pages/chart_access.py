"""Break-the-glass access to a chart from the web app.

The API grants it per request: ``X-Break-Glass: <reason>`` from a role allowed to break
the glass (:func:`cmio.api.authorize.policy_for`), recorded on every audited read. The
web app keeps the reason a clinician gave for one patient in a cookie scoped to that
chart (``Path=/patients/{id}``, HttpOnly, SameSite=Strict, one hour) and sends it with the
chart's reads. The cookie only carries what the user asserted: the API checks the role
on every request, and the reason lands in the audit trail each time, so a forged cookie
gives nothing the user could not ask the API for directly; it is bound to the user name
and the patient so another user of the same browser does not inherit it.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cmio.web.context import Viewer

__all__ = ["COOKIE", "GlassAccess"]

COOKIE = "cmio_glass"


class GlassAccess:
    """Reads and grants the break-the-glass cookie.

    Args:
        seconds: how long the access lasts.
    """

    def __init__(self, seconds: int = 3600) -> None:
        self.seconds = seconds

    def reason(self, request: Request, viewer: Viewer, patient_id: str) -> str | None:
        """The reason of the viewer's unexpired break-the-glass access to the patient."""
        raw = request.cookies.get(COOKIE)
        if not raw or viewer.unrestricted:
            return None
        try:
            data: Any = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        fresh = isinstance(data.get("e"), (int, float)) and data["e"] > time.time()
        mine = data.get("u") == viewer.name and data.get("p") == patient_id
        reason = data.get("r")
        return reason if fresh and mine and isinstance(reason, str) and reason else None

    def grant(
        self, response: Response, request: Request, viewer: Viewer, patient_id: str, reason: str
    ) -> None:
        """Set the cookie on ``response`` (the reason was accepted by the API)."""
        data = {"u": viewer.name, "p": patient_id, "r": reason, "e": time.time() + self.seconds}
        value = base64.urlsafe_b64encode(json.dumps(data).encode("utf-8")).decode().rstrip("=")
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.seconds,
            path=f"/patients/{patient_id}",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
