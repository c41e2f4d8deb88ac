"""Rules (issue 12, item 7): the governed rules (data-quality rules and CDS service
definitions, stored as ``Library`` artifacts) with status, version, severity and scope,
and the findings of the latest batch run over the store (:func:`cmio.rules.run_rules`,
as ``cmio rules run``).

"Run now" starts the batch on a background thread; the run section polls its progress
(htmx ``every 1s``) until it finishes, then shows the findings per rule and per source.
A rule's findings (resource references, paged) are patient-level: only the roles that
may see patient data and use the workbench open them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmio.rules.definition import RULE_KIND, artifact_of_library, rule_of_library
from cmio.store.base import SearchClause, SearchQuery
from cmio.web.context import Viewer, WebContext
from cmio.web.pages import PATIENT_DATA, WORKBENCH, NavItem

__all__ = ["DRILL", "RuleRun", "nav", "routes"]

log = logging.getLogger(__name__)

DRILL = tuple(r for r in WORKBENCH if r in PATIENT_DATA)
"""Who opens a rule's findings (resource references: patient-level data)."""
PAGE = 50
KINDS = (("data-quality", "Data quality"), ("cds-service", "CDS service"))

nav = (NavItem("Rules", "/workbench/rules", "Workbench", WORKBENCH),)


@dataclass
class RuleRun:
    """The latest batch run: progress while it runs, then its findings.

    Attributes:
        state: ``running``, ``finished`` or ``failed``. total: resources to read.
        done: read so far. findings: one dict per finding (:data:`FINDINGS_COLUMNS`).
        rules: rules evaluated. started, seconds: when and how long. error: why it failed.
    """

    state: str = "running"
    total: int = 0
    done: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    rules: int = 0
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    error: str = ""

    def by_rule(self) -> list[tuple[str, int]]:
        """Findings per rule, most first."""
        counts = Counter(str(f["rule"]) for f in self.findings)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def by_source(self) -> list[tuple[str, int]]:
        """Findings per source system (``meta.source``; empty: unspecified), most first."""
        counts = Counter(str(f["source"] or "unspecified") for f in self.findings)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


class RulePages:
    """The rules page's handlers and its latest run (one per web app)."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()
        self.run: RuleRun | None = None

    # -- the rules -------------------------------------------------------------------

    def governed(self) -> list[dict[str, Any]]:
        """Every rule and CDS Library (all versions and statuses), by kind and URL."""
        out: list[dict[str, Any]] = []
        repository = self.ctx.env.repository
        for kind, label in KINDS:
            clause = SearchClause("topic", (f"{RULE_KIND}|{kind}",))
            offset = 0
            while True:
                page = repository.search(
                    SearchQuery("Library", (clause,), count=500, offset=offset, total=False)
                )
                for stored in page.resources:
                    library = json.loads(stored.data or b"{}")
                    out.append(_describe(library, kind, label))
                if len(page.resources) < 500:
                    break
                offset += 500
        return sorted(out, key=lambda r: (r["kind"], r["name"], r["version"]))

    def page(self, request: Request) -> Response:
        """The governed rules and the latest run."""
        viewer = Viewer.of(request)
        viewer.require(*WORKBENCH)
        rules = self.governed()
        return self.ctx.render(
            request,
            "workbench/rules.html",
            title="Rules",
            rules=rules,
            active=sum(1 for r in rules if r["status"] == "active"),
            **self._run_values(viewer),
        )

    # -- runs ------------------------------------------------------------------------

    def _run_values(self, viewer: Viewer) -> dict[str, Any]:
        run = self.run
        return {
            "run": run,
            "by_rule": run.by_rule() if run else [],
            "by_source": run.by_source() if run else [],
            "drill": viewer.has_role(*DRILL),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(run.started)) if run else "",
        }

    def start(self, request: Request) -> Response:
        """Start a batch run (unless one is running) and answer with its progress."""
        viewer = Viewer.of(request)
        viewer.require(*WORKBENCH)
        with self.lock:
            if self.run is None or self.run.state != "running":
                run = RuleRun()
                self.run = run
                threading.Thread(
                    target=self._execute, args=(run,), name="cmio-web-rules", daemon=True
                ).start()
        return self.status(request)

    def status(self, request: Request) -> Response:
        """The run section (polled while the run goes on)."""
        viewer = Viewer.of(request)
        viewer.require(*WORKBENCH)
        return self.ctx.render(
            request, "workbench/rules_run.html", title="Rules", **self._run_values(viewer)
        )

    def _execute(self, run: RuleRun) -> None:
        from cmio.fhirpath import FhirPathEngine
        from cmio.rules import RuleEngine, active_rules, run_rules
        from cmio.terminology.providers import ServiceTerminology

        started = time.perf_counter()
        env = self.ctx.env
        try:
            rules = active_rules(env.repository)
            terminology = None if env.terminology is None else ServiceTerminology(env.terminology)
            engine = RuleEngine(FhirPathEngine(env.model), terminology)
            types = sorted({t for r in rules for t in r.resource_types})
            if rules and all(r.resource_types for r in rules):
                scoped: list[str | None] = list(types)
            else:
                scoped = [None]
            run.total = sum(
                env.repository.search(SearchQuery(t, count=0)).total or 0 for t in scoped
            )
            run.rules = len(rules)

            def advance(n: int) -> None:
                run.done += n

            table = run_rules(env.repository, engine, rules, progress=advance) if rules else None
            run.findings = table.to_pylist() if table is not None else []
            run.state = "finished"
        except Exception as exc:  # shown on the page; the next run starts afresh
            log.exception("rule batch run failed")
            run.error = f"{type(exc).__name__}: {exc}"[:500]
            run.state = "failed"
        run.seconds = time.perf_counter() - started

    # -- a rule's findings -----------------------------------------------------------

    def findings(self, request: Request) -> Response:
        """A rule's findings in the latest run, paged (patient-level: :data:`DRILL`)."""
        Viewer.of(request).require(*DRILL)
        rule = request.path_params["rule"]
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError:
            offset = 0
        run = self.run
        rows = [f for f in (run.findings if run else []) if f["rule"] == rule]
        return self.ctx.render(
            request,
            "workbench/rules_findings.html",
            title=f"Findings of rule {rule}",
            rule=rule,
            run=run,
            total=len(rows),
            rows=rows[offset : offset + PAGE],
            offset=offset,
            page=PAGE,
        )


def _describe(library: dict[str, Any], kind: str, label: str) -> dict[str, Any]:
    """One Library as a row: name, URL, version, status, severity, scope."""
    values: dict[str, Any] = {
        "kind": label,
        "id": library.get("id", ""),
        "name": library.get("title") or library.get("name") or library.get("id", ""),
        "url": library.get("url", ""),
        "version": str(library.get("version") or ""),
        "status": str(library.get("status") or ""),
        "severity": "",
        "scope": "",
        "rule": "",
    }
    if kind == "data-quality":
        try:
            rule = rule_of_library(library)
        except ValueError:
            rule = None
        if rule is not None:
            scope = ", ".join(rule.resource_types) or "every type"
            if rule.sources:
                scope += " from " + ", ".join(rule.sources)
            values.update(severity=rule.severity, scope=scope, rule=rule.id)
            values["name"] = rule.message if values["name"] == values["id"] else values["name"]
    else:
        data = artifact_of_library(library, kind) or {}
        values["scope"] = str(data.get("hook") or "")
    return values


def routes(ctx: WebContext) -> list[Route]:
    """The rules page's routes."""
    pages = RulePages(ctx)
    return [
        Route("/workbench/rules", pages.page),
        Route("/workbench/rules/run", pages.start, methods=["POST"]),
        Route("/workbench/rules/run", pages.status, methods=["GET"]),
        Route("/workbench/rules/{rule}/findings", pages.findings),
    ]
