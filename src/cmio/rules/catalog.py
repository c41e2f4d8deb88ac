"""Rules loaded from the store, and the write-time check (``Settings``-free, per server).

:func:`active_artifacts` reads the ``Library`` resources of a kind (by ``topic``) and
keeps, per canonical URL, the highest ``active`` version. :class:`WriteRules` is what
the FHIR write path calls (https://hl7.org/fhir/R4/http.html#create): it caches the
active rules for ``ttl`` seconds and reloads early after a rule itself is written.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from cmio.fhirpath.context import TerminologyProvider
from cmio.model import Model
from cmio.rules.definition import (
    RULE_KIND,
    Rule,
    RuleError,
    artifact_of_library,
    rule_of_library,
    version_key,
)
from cmio.rules.engine import Finding, RuleEngine
from cmio.store.base import Repository, SearchClause, SearchQuery

__all__ = ["FINDING_TAG", "WriteRules", "active_artifacts", "active_rules", "annotate"]

FINDING_TAG = "https://cmio.dev/fhir/CodeSystem/rule-finding"
"""``meta.tag`` system of the warnings a write was annotated with (code: the rule id)."""


def active_artifacts(repository: Repository, kind: str) -> list[tuple[dict[str, Any], Any]]:
    """``(Library, artifact JSON)`` of the highest active version per canonical URL."""
    query = SearchQuery("Library", (SearchClause("topic", (f"{RULE_KIND}|{kind}",)),), count=1000)
    best: dict[str, tuple[dict[str, Any], Any]] = {}
    offset = 0
    while True:
        page = repository.search(
            SearchQuery(query.type, query.clauses, count=query.count, offset=offset, total=False)
        )
        for stored in page.resources:
            if stored.data is None:
                continue
            library = json.loads(stored.data)
            if library.get("status") != "active":
                continue
            data = artifact_of_library(library, kind)
            if data is None:
                continue
            url = str(library.get("url") or stored.id)
            held = best.get(url)
            version = str(library.get("version") or "0")
            if held is None or version_key(version) > version_key(str(held[0].get("version"))):
                best[url] = (library, data)
        if len(page.resources) < query.count:
            break
        offset += query.count
    return [best[url] for url in sorted(best)]


def active_rules(repository: Repository) -> list[Rule]:
    """The active data-quality rules in the store (highest version per URL)."""
    rules = []
    for library, _ in active_artifacts(repository, "data-quality"):
        rule = rule_of_library(library)
        if rule is not None:
            rules.append(rule)
    return rules


def annotate(resource: dict[str, Any], findings: list[Finding]) -> None:
    """Replace the rule-finding ``meta.tag`` entries of ``resource`` with ``findings``."""
    meta = resource.get("meta")
    tags = [t for t in (meta or {}).get("tag", []) if t.get("system") != FINDING_TAG]
    tags += [
        {"system": FINDING_TAG, "code": f.rule, "display": f"{f.severity}: {f.message}"[:200]}
        for f in findings
    ]
    if tags:
        resource["meta"] = {**(meta or {}), "tag": tags}
    elif meta is not None and "tag" in meta:
        resource["meta"] = {k: v for k, v in meta.items() if k != "tag"}


def _is_rule_library(resource: Mapping[str, Any]) -> bool:
    return resource.get("resourceType") == "Library" and any(
        c.get("system") == RULE_KIND
        for t in resource.get("topic") or []
        for c in t.get("coding", [])
    )


class WriteRules:
    """The rules evaluated on every create/update (error rejects, warning annotates).

    Args:
        repository: where the rule Libraries live.
        model: the FHIR model (for the FHIRPath engine, built on first use).
        terminology: ValueSet membership for terminology checks.
        ttl: seconds the active rules are reused before they are read again.
        clock: monotonic clock (tests).
    """

    def __init__(
        self,
        repository: Repository,
        model: Model,
        terminology: TerminologyProvider | None = None,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repository = repository
        self.model = model
        self.terminology = terminology
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._rules: list[Rule] | None = None
        self._loaded = 0.0
        self._fresh_until = 0.0
        self._engine: RuleEngine | None = None

    @property
    def engine(self) -> RuleEngine:
        """The rule engine (its FHIRPath engine built on first use)."""
        if self._engine is None:
            from cmio.fhirpath import FhirPathEngine

            self._engine = RuleEngine(FhirPathEngine(self.model), self.terminology)
        return self._engine

    def invalidate(self) -> None:
        """Read the rules again on the next check (and for the next second)."""
        with self._lock:
            self._fresh_until = self.clock() + 1.0

    def rules(self) -> list[Rule]:
        """The active rules (cached; never read inside an open store transaction)."""
        now = self.clock()
        with self._lock:
            stale = self._rules is None or now - self._loaded > self.ttl or now < self._fresh_until
            if not stale or (self._rules is not None and self.repository.in_transaction()):
                return self._rules or []
        try:
            rules = active_rules(self.repository)
        except RuleError:
            rules = self._rules or []
        with self._lock:
            self._rules, self._loaded = rules, now
        return rules

    def check(self, resource: dict[str, Any]) -> list[Finding]:
        """Evaluate the active rules on a resource about to be written.

        Warnings and information are written into ``meta.tag`` (:data:`FINDING_TAG`);
        the findings are returned and the caller rejects the write when one is an error.
        A write of a rule Library itself is checked for validity and reloads the rules.

        Raises:
            RuleError: a rule Library whose rule JSON is invalid.
        """
        if _is_rule_library(resource):
            artifact = artifact_of_library(resource, "data-quality")
            if artifact is not None:
                rule = rule_of_library(resource)
                if rule is not None:
                    for expression in (rule.expression, rule.applies):
                        if expression:
                            self.engine.fhirpath.compile(expression)
            self.invalidate()
        rules = self.rules()
        if not rules:
            if (resource.get("meta") or {}).get("tag"):
                annotate(resource, [])
            return []
        findings = self.engine.evaluate(rules, resource)
        annotate(resource, [f for f in findings if f.severity != "error"])
        return findings
