"""Evaluate data-quality rules against one resource (http://hl7.org/fhirpath/N1/).

A rule applies to a resource when the type is in its scope, the source matches
(``meta.source`` starts with one of the scope's sources, or ``meta.tag`` holds one
written ``system|code``) and the ``applies`` precondition is true. It then passes
when its expression evaluates to ``true`` and its terminology check holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cmio.fhirpath import FhirPathEngine
from cmio.fhirpath.context import TerminologyProvider
from cmio.fhirpath.errors import FhirPathError
from cmio.rules.definition import Rule

__all__ = ["Finding", "RuleEngine"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule not satisfied by one resource."""

    rule: str
    version: str
    severity: str
    message: str
    resource_type: str
    resource_id: str | None
    path: str
    source: str

    @property
    def resource(self) -> str:
        """``Type/id`` of the resource."""
        return f"{self.resource_type}/{self.resource_id}"


def _source(resource: Mapping[str, Any]) -> str:
    meta = resource.get("meta") or {}
    return str(meta.get("source") or "")


def _in_scope(rule: Rule, resource: Mapping[str, Any]) -> bool:
    if rule.resource_types and resource.get("resourceType") not in rule.resource_types:
        return False
    if not rule.sources:
        return True
    source = _source(resource)
    tags = {
        f"{t.get('system', '')}|{t.get('code', '')}"
        for t in (resource.get("meta") or {}).get("tag", [])
    }
    return any((source and source.startswith(s)) or s in tags for s in rule.sources)


def _codings(values: Iterable[Any]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for value in values:
        if isinstance(value, Mapping):
            if "coding" in value:  # a CodeableConcept
                out.extend(c for c in value.get("coding", []) if isinstance(c, Mapping))
            else:
                out.append(value)
    return out


class RuleEngine:
    """Compiles rule expressions once (per engine) and evaluates rules on resources.

    Args:
        fhirpath: the FHIRPath engine (its compiled-expression cache is reused).
        terminology: ValueSet membership for terminology checks and ``memberOf()``
            (:class:`cmio.terminology.providers.ServiceTerminology`).
    """

    def __init__(self, fhirpath: FhirPathEngine, terminology: TerminologyProvider | None = None):
        self.fhirpath = fhirpath
        self.terminology = terminology

    def _true(self, expression: str, resource: Mapping[str, Any]) -> bool:
        result = self.fhirpath.compile(expression).evaluate(
            dict(resource), terminology=self.terminology
        )
        return result == [True]

    def _terminology_ok(self, rule: Rule, resource: Mapping[str, Any]) -> bool:
        check = rule.terminology
        if check is None:
            return True
        codings = _codings(self.fhirpath.compile(check.path).evaluate(dict(resource)))
        if check.systems and any(c.get("system") in check.systems for c in codings):
            return True
        if check.value_set and self.terminology is not None:
            for coding in codings:
                if self.terminology.member_of(coding, check.value_set):
                    return True
        return False

    def check(self, rule: Rule, resource: Mapping[str, Any]) -> Finding | None:
        """The finding of ``rule`` on ``resource`` (None: out of scope or satisfied).

        An expression that fails to evaluate (a FHIRPath error) is a finding too.
        """
        if not _in_scope(rule, resource):
            return None
        message = rule.message
        try:
            if rule.applies and not self._true(rule.applies, resource):
                return None
            passed = (
                rule.expression is None or self._true(rule.expression, resource)
            ) and self._terminology_ok(rule, resource)
        except FhirPathError as exc:
            passed, message = False, f"{rule.message} (evaluation error: {exc})"
        if passed:
            return None
        rtype = str(resource.get("resourceType"))
        where = rule.path or (rule.terminology.path if rule.terminology else rule.expression)
        return Finding(
            rule.id,
            rule.version,
            rule.severity,
            message,
            rtype,
            resource.get("id"),
            f"{rtype}.{where}" if where else rtype,
            _source(resource),
        )

    def evaluate(self, rules: Sequence[Rule], resource: Mapping[str, Any]) -> list[Finding]:
        """Every finding of ``rules`` on ``resource``, in rule order."""
        found = (self.check(rule, resource) for rule in rules)
        return [f for f in found if f is not None]
