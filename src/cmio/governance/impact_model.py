"""The result of an impact analysis (issue 11, item 2): what a proposed artifact version
would change on the live data, compared with the active version.

:class:`ImpactReport` holds the figures; :meth:`ImpactReport.to_json` is the JSON answer
of ``$impact`` and :meth:`ImpactReport.to_report` the steering-committee document
(:mod:`cmio.reports`, HTML and PDF). See docs/governance.md, "Impact analysis".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cmio.reports import Report

__all__ = [
    "AlertShift",
    "ClinicianShift",
    "ImpactReport",
    "ResourceShift",
    "UsageImpact",
]


@dataclass(frozen=True, slots=True)
class ResourceShift:
    """Resources of one type whose coded elements newly match / no longer match a value set.

    Lists are bounded (the analysis's ``limit``); the counts are exact totals.
    """

    resource_type: str
    newly: int
    no_longer: int
    newly_patients: int
    no_longer_patients: int
    newly_patient_ids: tuple[str, ...] = ()
    no_longer_patient_ids: tuple[str, ...] = ()
    newly_examples: tuple[str, ...] = ()
    no_longer_examples: tuple[str, ...] = ()
    elements: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "resourceType": self.resource_type,
            "elements": list(self.elements),
            "newlyMatching": {
                "resources": self.newly,
                "patients": self.newly_patients,
                "patientIds": list(self.newly_patient_ids),
                "examples": list(self.newly_examples),
            },
            "noLongerMatching": {
                "resources": self.no_longer,
                "patients": self.no_longer_patients,
                "patientIds": list(self.no_longer_patient_ids),
                "examples": list(self.no_longer_examples),
            },
        }


@dataclass(frozen=True, slots=True)
class UsageImpact:
    """A governed artifact that uses the changed value set, with its counts before and after.

    Attributes:
        kind: ``measure``, ``rule``, ``view`` or ``cds``.
        reference: ``Type/id`` (or ``builtin:<id>`` for a measure shipped with cmio).
        title: a human label (``url|version``, the measure id ...).
        before: named counts with the active value set (e.g. ``denominator``).
        after: the same counts with the proposed value set.
        note: why counts are missing, when they are.
    """

    kind: str
    reference: str
    title: str
    before: Mapping[str, int] = field(default_factory=dict)
    after: Mapping[str, int] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """As JSON."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "reference": self.reference,
            "title": self.title,
            "before": dict(self.before),
            "after": dict(self.after),
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class AlertShift:
    """Findings (data-quality rule) or cards (CDS service) before and after a rule change.

    ``subjects`` are what an alert is about: a resource for a data-quality rule, a patient
    (and an order, for order hooks) for a CDS service.
    """

    evaluated: int
    before: int
    after: int
    started: int
    stopped: int
    started_examples: tuple[tuple[str, str], ...] = ()
    stopped_examples: tuple[tuple[str, str], ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """As JSON."""
        out: dict[str, Any] = {
            "evaluated": self.evaluated,
            "before": self.before,
            "after": self.after,
            "startFiring": {
                "count": self.started,
                "examples": [{"subject": s, "message": m} for s, m in self.started_examples],
            },
            "stopFiring": {
                "count": self.stopped,
                "examples": [{"subject": s, "message": m} for s, m in self.stopped_examples],
            },
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class ClinicianShift:
    """One clinician's population counts (the measure's ``clinician`` stratifier)."""

    clinician: str
    before: Mapping[str, int]
    after: Mapping[str, int]
    name: str = ""

    @property
    def changed(self) -> bool:
        """Whether any count differs."""
        keys = set(self.before) | set(self.after)
        return any(self.before.get(k, 0) != self.after.get(k, 0) for k in keys)

    def to_json(self) -> dict[str, Any]:
        """As JSON."""
        out: dict[str, Any] = {"clinician": self.clinician}
        if self.name:
            out["name"] = self.name
        return {**out, "before": dict(self.before), "after": dict(self.after)}


@dataclass(frozen=True, slots=True)
class ImpactReport:
    """What approving ``proposed`` instead of ``current`` would change on the live data.

    Attributes:
        artifact: ``Type/id`` of the proposed version.
        kind: ``valueset``, ``rule`` (data-quality), ``cds`` or ``measure``.
        proposed: ``url|version`` of the proposed version.
        current: ``url|version`` of the active version it is compared with (None: there is
            none, the proposal is new).
        generated: when the analysis ran.
        days: the window of a rule change (resources of the last ``days`` days).
        codes_added / codes_removed: a value set's expansion difference.
        resources: per resource type, newly and no longer matching resources.
        patients: distinct patients across types, ``newly`` and ``noLonger`` matching.
        patient_ids: those patients (``Patient/id``), bounded lists.
        usages: the artifacts using a value set, with their counts before and after.
        alerts: a rule or CDS change: alerts that start or stop firing.
        totals: a measure change: population counts before/after (``before``/``after``).
        clinicians: a measure change: counts per clinician before and after.
        notes: caveats (what was not evaluated, and why).
    """

    artifact: str
    kind: str
    proposed: str
    current: str | None
    generated: datetime
    days: int | None = None
    codes_added: tuple[tuple[str, str], ...] = ()
    codes_removed: tuple[tuple[str, str], ...] = ()
    resources: tuple[ResourceShift, ...] = ()
    patients: Mapping[str, int] = field(default_factory=dict)
    patient_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    usages: tuple[UsageImpact, ...] = ()
    alerts: AlertShift | None = None
    totals: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    clinicians: tuple[ClinicianShift, ...] = ()
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for a Provenance or a log: the headline numbers."""
        against = f"against {self.current}" if self.current else "(no active version)"
        parts = [f"Impact of {self.proposed} {against}"]
        if self.kind == "valueset":
            newly = sum(r.newly for r in self.resources)
            gone = sum(r.no_longer for r in self.resources)
            parts.append(
                f"codes added {len(self.codes_added)}, removed {len(self.codes_removed)}; "
                f"resources newly matching {newly}, no longer matching {gone}; "
                f"artifacts using it {len(self.usages)}"
            )
        if self.alerts is not None:
            parts.append(
                f"alerts over the last {self.days} days {self.alerts.before} -> "
                f"{self.alerts.after}: start firing {self.alerts.started}, stop firing "
                f"{self.alerts.stopped}"
            )
        if self.totals:
            shown = ", ".join(
                f"{name.replace('_', ' ')} {self.totals['before'].get(name, 0)} -> {count}"
                for name, count in self.totals.get("after", {}).items()
            )
            moved = sum(1 for c in self.clinicians if c.changed)
            parts.append(f"{shown}; clinicians with a change {moved} of {len(self.clinicians)}")
        return ": ".join(parts[:1]) + (": " + "; ".join(parts[1:]) if parts[1:] else "")

    def to_json(self) -> dict[str, Any]:
        """The JSON document ``$impact`` answers with (``_format=json``)."""
        out: dict[str, Any] = {
            "artifact": self.artifact,
            "kind": self.kind,
            "proposed": self.proposed,
            "current": self.current,
            "generated": self.generated.isoformat(timespec="seconds"),
            "summary": self.summary(),
        }
        if self.days is not None:
            out["days"] = self.days
        if self.kind == "valueset":
            out["codesAdded"] = [{"system": s, "code": c} for s, c in self.codes_added]
            out["codesRemoved"] = [{"system": s, "code": c} for s, c in self.codes_removed]
            out["resources"] = [r.to_json() for r in self.resources]
            out["patients"] = {
                key: {
                    "count": self.patients.get(key, 0),
                    "ids": list(self.patient_ids.get(key, ())),
                }
                for key in ("newly", "noLonger")
            }
            out["usages"] = [u.to_json() for u in self.usages]
        if self.alerts is not None:
            out["alerts"] = self.alerts.to_json()
        if self.totals:
            out["totals"] = {k: dict(v) for k, v in self.totals.items()}
            out["clinicians"] = [c.to_json() for c in self.clinicians]
        out["notes"] = list(self.notes)
        return out

    def to_report(self) -> Report:
        """The steering-committee report (render with :func:`cmio.reports.render_html` or
        :func:`cmio.reports.render_pdf`)."""
        from cmio.governance.impact_report import impact_document

        return impact_document(self)
