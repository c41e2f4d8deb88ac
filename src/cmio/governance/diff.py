"""Side-by-side diff of two versions of a governed artifact.

For value sets: the codes added and removed (comparing both expansions through the
terminology service, https://hl7.org/fhir/R4/valueset-operation-expand.html) and the
``compose`` changes; for rules (``Library``), ViewDefinitions and other artifacts: a
structured JSON diff of the logic (paths written like FHIRPath, e.g. ``select[0].column``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from cmio.governance.lifecycle import canonical_of, logic_of
from cmio.terminology.service import TerminologyService

__all__ = ["ArtifactDiff", "Change", "diff_artifacts", "json_diff"]


@dataclass(frozen=True, slots=True)
class Change:
    """One difference: ``op`` is ``added``, ``removed`` or ``changed``."""

    op: str
    path: str
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        """As JSON (``old``/``new`` only when present)."""
        out: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.op != "added":
            out["old"] = self.old
        if self.op != "removed":
            out["new"] = self.new
        return out


@dataclass(slots=True)
class ArtifactDiff:
    """The differences between two versions (``left`` older, ``right`` newer)."""

    left: str
    right: str
    changes: list[Change] = field(default_factory=list)
    codes_added: list[tuple[str, str]] = field(default_factory=list)
    codes_removed: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "left": self.left,
            "right": self.right,
            "codesAdded": [{"system": s, "code": c} for s, c in self.codes_added],
            "codesRemoved": [{"system": s, "code": c} for s, c in self.codes_removed],
            "changes": [c.to_json() for c in self.changes],
        }

    def to_parameters(self) -> dict[str, Any]:
        """As a FHIR ``Parameters`` resource (the answer of ``$diff``)."""
        params: list[dict[str, Any]] = [
            {"name": "left", "valueString": self.left},
            {"name": "right", "valueString": self.right},
        ]
        for name, codes in (("added", self.codes_added), ("removed", self.codes_removed)):
            params += [
                {"name": f"code-{name}", "valueCoding": {"system": s, "code": c}} for s, c in codes
            ]
        for change in self.changes:
            parts: list[dict[str, Any]] = [
                {"name": "op", "valueCode": change.op},
                {"name": "path", "valueString": change.path},
            ]
            for name in ("old", "new"):
                value = getattr(change, name)
                if value is not None:
                    parts.append({"name": name, "valueString": orjson.dumps(value).decode()})
            params.append({"name": "change", "part": parts})
        return {"resourceType": "Parameters", "parameter": params}


def json_diff(old: Any, new: Any, path: str = "") -> list[Change]:
    """The structural differences from ``old`` to ``new`` (objects by key, lists by index)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else key
            if key not in new:
                out.append(Change("removed", sub, old=old[key]))
            elif key not in old:
                out.append(Change("added", sub, new=new[key]))
            else:
                out += json_diff(old[key], new[key], sub)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for index in range(max(len(old), len(new))):
            sub = f"{path}[{index}]"
            if index >= len(new):
                out.append(Change("removed", sub, old=old[index]))
            elif index >= len(old):
                out.append(Change("added", sub, new=new[index]))
            else:
                out += json_diff(old[index], new[index], sub)
        return out
    if old != new:
        return [Change("changed", path, old=old, new=new)]
    return []


def _label(resource: dict[str, Any]) -> str:
    url, version = canonical_of(resource)
    return f"{url}|{version}" if url else f"{resource.get('resourceType')}/{resource.get('id')}"


def diff_artifacts(
    left: dict[str, Any], right: dict[str, Any], terminology: TerminologyService | None = None
) -> ArtifactDiff:
    """Compare two versions of an artifact.

    Args:
        left: the older version.
        right: the newer version.
        terminology: a :class:`cmio.terminology.service.TerminologyService`; for value sets
            both expansions are compared (None: the codes listed in ``compose`` are).
    """
    result = ArtifactDiff(_label(left), _label(right))
    if left.get("resourceType") == "ValueSet" and right.get("resourceType") == "ValueSet":
        before, after = _codes(left, terminology), _codes(right, terminology)
        result.codes_added = sorted(after - before)
        result.codes_removed = sorted(before - after)
        result.changes = json_diff(left.get("compose") or {}, right.get("compose") or {}, "compose")
        return result
    result.changes = json_diff(logic_of(left), logic_of(right))
    return result


def _codes(
    valueset: dict[str, Any], terminology: TerminologyService | None
) -> set[tuple[str, str]]:
    if terminology is not None:
        return set(terminology.expansion(valueset).members)
    return {
        (str(include.get("system")), str(concept.get("code")))
        for include in (valueset.get("compose") or {}).get("include") or []
        for concept in include.get("concept") or []
    }
