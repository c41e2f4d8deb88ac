"""The data-quality rules on the write path (:mod:`cmio.rules`, issue 11).

An ``error`` finding rejects the write with an OperationOutcome naming the rule and
the element path (https://hl7.org/fhir/R4/operationoutcome.html); warnings and
information are written into the resource's ``meta.tag`` and the write succeeds.
"""

from __future__ import annotations

from typing import Any

import orjson

from cmio.api.env import Env
from cmio.api.errors import FhirError, OutcomeIssue
from cmio.store.base import StoredResource

__all__ = ["RuleIssue", "check_rules", "rule_warnings"]


class RuleIssue:
    """An error finding in the shape ``validate_resource`` reports."""

    __slots__ = ("code", "expression", "message", "severity")

    def __init__(self, message: str, expression: str | None) -> None:
        self.severity = "error"
        self.code = "business-rule"
        self.message = message
        self.expression = expression


def check_rules(env: Env, resource: dict[str, Any]) -> list[Any]:
    """Evaluate the active rules on ``resource``; the error findings as issues.

    Raises:
        FhirError: 400 when ``resource`` is a rule Library whose rule is invalid.
    """
    from cmio.fhirpath import FhirPathError
    from cmio.rules import RuleError

    try:
        findings = env.rules.check(resource)
    except (RuleError, FhirPathError) as exc:
        raise FhirError(400, "invalid", f"Invalid rule: {exc}", expression="content") from None
    return [
        RuleIssue(f"Rule {f.rule} ({f.version}): {f.message}", f.path)
        for f in findings
        if f.severity == "error"
    ]


def rule_warnings(stored: StoredResource) -> list[OutcomeIssue]:
    """The rule findings a stored resource was annotated with, as OperationOutcome issues
    (for ``Prefer: return=OperationOutcome``)."""
    from cmio.rules import FINDING_TAG

    if stored.data is None or FINDING_TAG.encode() not in stored.data:
        return []
    meta = orjson.loads(stored.data).get("meta") or {}
    issues = []
    for tag in meta.get("tag", []):
        if tag.get("system") == FINDING_TAG:
            severity, _, text = str(tag.get("display", "")).partition(": ")
            level = "warning" if severity == "warning" else "information"
            issues.append(OutcomeIssue(level, "business-rule", f"Rule {tag.get('code')}: {text}"))
    return issues
