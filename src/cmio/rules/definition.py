"""Data-quality rules as governed ``Library`` resources.

A rule is a FHIRPath expression that must be true of every resource in its scope
(http://hl7.org/fhirpath/N1/), optionally with a terminology check (the codings at an
element must come from given code systems or a ValueSet). Rules are stored as FHIR
``Library`` resources (https://hl7.org/fhir/R4/library.html) after the cmio rule profile:

* ``type`` = ``logic-library`` (http://terminology.hl7.org/CodeSystem/library-type),
* ``topic`` carries :data:`RULE_KIND` ``|data-quality`` (or ``|cds-service``),
* ``url`` + ``version`` (semantic) identify a version; a new version is a new resource,
* ``status``: ``draft``, ``active`` or ``retired``; only ``active`` rules are evaluated,
* ``content[0]`` is an ``application/vnd.cmio.rule+json`` attachment (base64 ``data``)
  holding the rule JSON: ``id``, ``expression``, ``severity``, ``message``,
  ``scope`` (``resourceTypes``, ``sources``), ``applies`` (a FHIRPath precondition),
  ``path`` (the element reported) and ``terminology`` (``path``, ``systems``,
  ``valueSet``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RULE_CONTENT_TYPE",
    "RULE_KIND",
    "SEVERITIES",
    "Rule",
    "RuleError",
    "TerminologyCheck",
    "artifact_as_library",
    "artifact_of_library",
    "rule_as_library",
    "rule_from_json",
    "rule_of_library",
    "version_key",
]

RULE_KIND = "https://cmio.dev/fhir/CodeSystem/rule-kind"
"""``Library.topic`` system: ``data-quality`` rules and ``cds-service`` definitions."""
RULE_CONTENT_TYPE = "application/vnd.cmio.rule+json"
SEVERITIES = ("information", "warning", "error")
_LIBRARY_TYPE = "http://terminology.hl7.org/CodeSystem/library-type"


class RuleError(ValueError):
    """A rule definition is invalid (the message names the field)."""


@dataclass(frozen=True, slots=True)
class TerminologyCheck:
    """The codings at ``path`` must include one from ``systems`` or member of ``value_set``."""

    path: str
    systems: tuple[str, ...] = ()
    value_set: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One data-quality rule (see the module docstring for its JSON form)."""

    id: str
    expression: str | None
    severity: str
    message: str
    version: str = "1.0.0"
    status: str = "active"
    resource_types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    applies: str | None = None
    path: str | None = None
    terminology: TerminologyCheck | None = None
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def canonical(self) -> str:
        """The canonical URL (``url`` or ``https://cmio.dev/fhir/Library/rule-<id>``)."""
        return self.url or f"https://cmio.dev/fhir/Library/rule-{self.id}"

    def to_json(self) -> dict[str, Any]:
        """The rule JSON carried in the Library content."""
        data: dict[str, Any] = {
            "id": self.id,
            "severity": self.severity,
            "message": self.message,
            "scope": {"resourceTypes": list(self.resource_types), "sources": list(self.sources)},
        }
        if self.expression is not None:
            data["expression"] = self.expression
        if self.applies:
            data["applies"] = self.applies
        if self.path:
            data["path"] = self.path
        if self.terminology is not None:
            term: dict[str, Any] = {"path": self.terminology.path}
            if self.terminology.systems:
                term["systems"] = list(self.terminology.systems)
            if self.terminology.value_set:
                term["valueSet"] = self.terminology.value_set
            data["terminology"] = term
        data.update(self.extra)
        return data


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{where} must be a list of strings")
    return tuple(value)


def rule_from_json(
    data: Mapping[str, Any],
    *,
    version: str = "1.0.0",
    status: str = "active",
    url: str | None = None,
) -> Rule:
    """Parse and check a rule's JSON form.

    Raises:
        RuleError: a missing or malformed field (named in the message).
    """
    rid = data.get("id")
    if not isinstance(rid, str) or not rid:
        raise RuleError("rule.id is required")
    severity = data.get("severity")
    if severity not in SEVERITIES:
        raise RuleError(f"rule.severity must be one of {', '.join(SEVERITIES)} (rule {rid})")
    message = data.get("message")
    if not isinstance(message, str) or not message:
        raise RuleError(f"rule.message is required (rule {rid})")
    expression = data.get("expression")
    if expression is not None and not isinstance(expression, str):
        raise RuleError(f"rule.expression must be a string (rule {rid})")
    term = data.get("terminology")
    check = None
    if term is not None:
        if not isinstance(term, dict) or not isinstance(term.get("path"), str):
            raise RuleError(f"rule.terminology.path is required (rule {rid})")
        check = TerminologyCheck(
            term["path"],
            _strings(term.get("systems"), "rule.terminology.systems"),
            term.get("valueSet") if isinstance(term.get("valueSet"), str) else None,
        )
        if not check.systems and not check.value_set:
            raise RuleError(f"rule.terminology needs systems or valueSet (rule {rid})")
    if expression is None and check is None:
        raise RuleError(f"rule.expression or rule.terminology is required (rule {rid})")
    scope = data.get("scope") or {}
    known = {"id", "severity", "message", "expression", "terminology", "scope", "applies", "path"}
    return Rule(
        id=rid,
        expression=expression,
        severity=str(severity),
        message=message,
        version=version,
        status=status,
        resource_types=_strings(scope.get("resourceTypes"), "rule.scope.resourceTypes"),
        sources=_strings(scope.get("sources"), "rule.scope.sources"),
        applies=data.get("applies") if isinstance(data.get("applies"), str) else None,
        path=data.get("path") if isinstance(data.get("path"), str) else None,
        terminology=check,
        url=url,
        extra={k: v for k, v in data.items() if k not in known},
    )


def artifact_as_library(
    kind: str, data: Mapping[str, Any], *, url: str, version: str, status: str, title: str
) -> dict[str, Any]:
    """Wrap an artifact's JSON (a rule, a CDS service) in a ``Library`` of the cmio profile."""
    lid = f"{data['id']}-{version}".replace(".", "-").replace("_", "-")[:64]
    return {
        "resourceType": "Library",
        "id": lid,
        "url": url,
        "version": version,
        "name": "".join(p.capitalize() for p in str(data["id"]).replace("_", "-").split("-")),
        "title": title,
        "status": status,
        "type": {"coding": [{"system": _LIBRARY_TYPE, "code": "logic-library"}]},
        "topic": [{"coding": [{"system": RULE_KIND, "code": kind}]}],
        "content": [
            {
                "contentType": RULE_CONTENT_TYPE,
                "data": base64.b64encode(json.dumps(dict(data)).encode()).decode("ascii"),
            }
        ],
    }


def artifact_of_library(library: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """The artifact JSON of a ``Library`` of the cmio profile and ``kind`` (None: not one)."""
    topics = library.get("topic") or []
    if not any(
        c.get("system") == RULE_KIND and c.get("code") == kind
        for t in topics
        for c in t.get("coding", [])
    ):
        return None
    for content in library.get("content") or []:
        if content.get("contentType") == RULE_CONTENT_TYPE and isinstance(content.get("data"), str):
            try:
                data = json.loads(base64.b64decode(content["data"]))
            except ValueError as exc:
                raise RuleError(f"Library.content.data is not rule JSON: {exc}") from None
            if not isinstance(data, dict):
                raise RuleError("Library.content.data must hold a JSON object")
            return data
    raise RuleError(f"Library.content needs a {RULE_CONTENT_TYPE} attachment")


def rule_as_library(rule: Rule) -> dict[str, Any]:
    """The ``Library`` resource storing ``rule``."""
    return artifact_as_library(
        "data-quality",
        rule.to_json(),
        url=rule.canonical,
        version=rule.version,
        status=rule.status,
        title=rule.message,
    )


def rule_of_library(library: Mapping[str, Any]) -> Rule | None:
    """The rule a ``Library`` stores (None: the Library is not a data-quality rule)."""
    data = artifact_of_library(library, "data-quality")
    if data is None:
        return None
    return rule_from_json(
        data,
        version=str(library.get("version") or "0"),
        status=str(library.get("status") or "draft"),
        url=library.get("url"),
    )


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Sort key of a semantic version (``1.10.0`` after ``1.9.2``)."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in version.split("."))
