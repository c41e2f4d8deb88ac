"""``$impact``: the impact analysis of a proposed artifact version (issue 11, item 2).

``POST [base]/[type]/[id]/$impact`` (or ``GET``) on a ValueSet, a data-quality or CDS
``Library`` or a ``Measure`` compares that (draft, in-review or approved) version with the
active version of the same canonical URL on the live store
(:class:`cmio.governance.impact.ImpactAnalyzer`). Parameters (query or a ``Parameters``
body): ``days`` (the window of a rule change, default 90), ``periodStart``/``periodEnd``
(the measurement period, default the 365 days to today) and ``_format``: ``json``
(default; a plain JSON document, ``application/json``, see
:meth:`~cmio.governance.impact_model.ImpactReport.to_json`), ``html`` or ``pdf`` (the
steering-committee report). See docs/governance.md, "Impact analysis".
"""

from __future__ import annotations

from typing import Any

import orjson

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.evaluate_measure import measure_period, operation_params
from cmio.api.ops.governance_transition import governance_error
from cmio.governance.lifecycle import GovernanceError

__all__ = ["FORMATS", "env_analyzer", "governance_impact"]

FORMATS = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}
"""``_format`` values and their media types."""


def env_analyzer(env: Env, request: FhirRequest | None = None) -> Any:
    """The impact analyzer of a server: its store, model and terminology service, with CDS
    prefetch resolved in-process through the FHIR router (as the caller, when there is one)."""
    from cmio.governance.impact import ImpactAnalyzer
    from cmio.terminology.factory import open_terminology

    terminology = env.terminology or open_terminology(env.repository, None, core=False)
    grant = request.context.grant if request is not None else None
    base = request.base_url if request is not None else "http://localhost/fhir"
    fetcher = _LazyFetcher(env, base, grant)
    return ImpactAnalyzer(env.repository, env.model, terminology, fetcher=fetcher)


class _LazyFetcher:
    """CDS prefetch through the FHIR router, built on the first query (only CDS replays
    query)."""

    def __init__(self, env: Env, base: str, grant: Any) -> None:
        self.env, self.base, self.grant = env, base, grant
        self._inner: Any = None

    def get(self, url: str) -> dict[str, Any] | None:
        """GET a relative FHIR URL in-process (:class:`cmio.api.cds_hooks.RouterFetcher`)."""
        if self._inner is None:
            from cmio.api.cds_hooks import RouterFetcher
            from cmio.api.router import FhirRouter

            self._inner = RouterFetcher(FhirRouter(self.env), self.base, self.grant)
        found: dict[str, Any] | None = self._inner.get(url)
        return found


def governance_impact(
    env: Env, request: FhirRequest, rtype: str | None, rid: str | None
) -> FhirResponse:
    """Handle ``$impact`` (see the module docstring)."""
    if rtype is None or rid is None:
        raise FhirError(404, "not-supported", "$impact is an instance operation")
    values = operation_params(request)
    fmt = _single(values, "_format") or "json"
    if fmt not in FORMATS:
        raise FhirError(
            400,
            "invalid",
            f"_format {fmt!r}: use one of {', '.join(FORMATS)}",
            expression="_format",
        )
    text = _single(values, "days") or "90"
    if not text.isdigit() or int(text) < 1:
        raise FhirError(
            400, "invalid", f"days must be a positive integer, not {text!r}", expression="days"
        )
    period = None
    if values.get("periodStart") or values.get("periodEnd"):
        period = measure_period(values)
    try:
        report = env_analyzer(env, request).analyze(rtype, rid, days=int(text), period=period)
    except GovernanceError as error:
        raise governance_error(error) from None
    if fmt == "json":
        body = orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2)
    else:
        from cmio.reports import render_html, render_pdf

        document = report.to_report()
        body = render_pdf(document) if fmt == "pdf" else render_html(document).encode()
    headers = [("content-type", FORMATS[fmt])]
    if fmt == "pdf":
        headers.append(("content-disposition", f'attachment; filename="impact-{rtype}-{rid}.pdf"'))
    return FhirResponse(200, body, headers)


def _single(values: dict[str, list[str]], name: str) -> str | None:
    found = values.get(name) or []
    if len(found) > 1:
        raise FhirError(400, "invalid", f"{name} may be given once", expression=name)
    return found[0] if found else None
