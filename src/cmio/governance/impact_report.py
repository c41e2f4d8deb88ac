"""An :class:`~cmio.governance.impact_model.ImpactReport` as a steering-committee document
(:mod:`cmio.reports`: HTML and PDF), with Vega-Lite charts
(https://vega.github.io/vega-lite/docs/bar.html) of the shifts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cmio.governance.impact_model import AlertShift, ImpactReport
from cmio.reports import Block, Chart, Metric, MetricRow, Paragraph, Report, Section, Table

__all__ = ["impact_document"]

_KIND = {
    "valueset": "value set",
    "rule": "data-quality rule",
    "cds": "CDS service",
    "measure": "measure",
}
_ROWS = 200
_POPULATIONS = ("initial_population", "denominator", "denominator_exclusion", "numerator")


def impact_document(impact: ImpactReport) -> Report:
    """The report of ``impact`` (see the module docstring)."""
    sections = [_summary(impact)]
    if impact.kind == "valueset":
        sections += _valueset(impact)
    if impact.alerts is not None:
        sections += _alerts(impact.alerts, impact)
    if impact.totals:
        sections += _measure(impact)
    if impact.notes:
        sections.append(Section("Notes", [Paragraph(n) for n in impact.notes]))
    against = (
        f"compared with the active version {impact.current}"
        if impact.current
        else ("no active version: everything is new")
    )
    return Report(
        f"Impact analysis: {_KIND.get(impact.kind, impact.kind)} {impact.proposed}",
        f"{impact.artifact}, {against}",
        impact.generated,
        sections,
    )


def _summary(impact: ImpactReport) -> Section:
    metrics: list[Metric] = []
    if impact.kind == "valueset":
        metrics = [
            Metric("Codes added", str(len(impact.codes_added))),
            Metric("Codes removed", str(len(impact.codes_removed))),
            Metric(
                "Resources newly matching",
                str(sum(r.newly for r in impact.resources)),
                f"{impact.patients.get('newly', 0)} patients",
            ),
            Metric(
                "Resources no longer matching",
                str(sum(r.no_longer for r in impact.resources)),
                f"{impact.patients.get('noLonger', 0)} patients",
            ),
            Metric("Artifacts using it", str(len(impact.usages))),
        ]
    elif impact.alerts is not None:
        a = impact.alerts
        metrics = [
            Metric("Alerts now", str(a.before), f"last {impact.days} days"),
            Metric("Alerts after", str(a.after), f"{a.evaluated} evaluated"),
            Metric("Start firing", str(a.started)),
            Metric("Stop firing", str(a.stopped)),
        ]
    elif impact.totals:
        before, after = impact.totals.get("before", {}), impact.totals.get("after", {})
        for name in _POPULATIONS:
            if name in after or name in before:
                old, new = before.get(name, 0), after.get(name, 0)
                metrics.append(Metric(_label(name), str(new), f"now {old} ({new - old:+d})"))
        moved = sum(1 for c in impact.clinicians if c.changed)
        metrics.append(Metric("Clinicians affected", str(moved), f"of {len(impact.clinicians)}"))
    blocks: list[Block] = [Paragraph(impact.summary())]
    if metrics:
        blocks.append(MetricRow(metrics))
    return Section("Summary", blocks)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _bar(title: str, description: str, rows: list[dict[str, Any]], x: str, color: str) -> Chart:
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": rows},
        "mark": "bar",
        "width": 420,
        "encoding": {
            "y": {"field": x, "type": "nominal", "title": None},
            "x": {"field": "count", "type": "quantitative", "title": "count"},
            "yOffset": {"field": color},
            "color": {"field": color, "type": "nominal", "title": None},
        },
    }
    return Chart(spec, title, description)


def _valueset(impact: ImpactReport) -> list[Section]:
    sections: list[Section] = []
    codes = [("added", s, c) for s, c in impact.codes_added]
    codes += [("removed", s, c) for s, c in impact.codes_removed]
    blocks: list[Block] = [
        Paragraph(
            f"Codes added: {len(impact.codes_added)}; codes removed: "
            f"{len(impact.codes_removed)} (the proposed expansion against the active one)."
        )
    ]
    if codes:
        shown = [list(row) for row in codes[:_ROWS]]
        caption = f"Codes added and removed ({_shown(len(codes))})"
        blocks.append(Table(["Change", "System", "Code"], shown, caption=caption))
    sections.append(Section("Codes", blocks))
    rows: list[list[str | int | None]] = [
        [r.resource_type, r.newly, r.newly_patients, r.no_longer, r.no_longer_patients,
         ", ".join(r.elements)]
        for r in impact.resources
    ]  # fmt: skip
    blocks = []
    if rows:
        blocks.append(
            Table(
                [
                    "Resource type",
                    "Newly matching",
                    "Patients",
                    "No longer matching",
                    "Patients ",
                    "Elements",
                ],
                rows,
                caption="Resources whose coded elements change membership",
            )
        )
        chart_rows = [
            {"type": r.resource_type, "change": change, "count": count}
            for r in impact.resources
            for change, count in (("newly matching", r.newly), ("no longer matching", r.no_longer))
        ]
        text = "; ".join(
            f"{r.resource_type}: {r.newly} newly, {r.no_longer} no longer" for r in impact.resources
        )
        blocks.append(
            _bar("Resources by type", f"Bar chart. {text}.", chart_rows, "type", "change")
        )
        rows_by: list[list[str | int | float | None]] = []
        for key, change, listed in (
            ("newly", "newly matching", "newly_patient_ids"),
            ("noLonger", "no longer matching", "no_longer_patient_ids"),
        ):
            for patient in impact.patient_ids.get(key, ()):
                types = [r.resource_type for r in impact.resources if patient in getattr(r, listed)]
                rows_by.append([patient, change, ", ".join(types)])
        total = impact.patients.get("newly", 0) + impact.patients.get("noLonger", 0)
        blocks.append(
            Table(
                ["Patient", "Change", "Resource types"],
                rows_by[:_ROWS],
                caption=f"Patients ({len(rows_by[:_ROWS])} listed of {total})",
            )
        )
    else:
        blocks.append(Paragraph("No resource in the store changes membership."))
    sections.append(Section("Patients and resources", blocks))
    usage_rows: list[list[str | int | None]] = []
    for usage in impact.usages:
        names = list(dict.fromkeys([*usage.before, *usage.after]))
        if not names:
            usage_rows.append(
                [usage.kind, usage.title, usage.reference, "", None, None, usage.note]
            )
        for name in names:
            old, new = usage.before.get(name, 0), usage.after.get(name, 0)
            usage_rows.append(
                [
                    usage.kind,
                    usage.title,
                    usage.reference,
                    _label(name),
                    old,
                    new,
                    f"{new - old:+d}",
                ]
            )
    blocks = [
        Table(
            ["Kind", "Artifact", "Reference", "Count", "Before", "After", "Change"],
            usage_rows,
            caption="Measures, rules, views and CDS services using the value set",
        )
        if usage_rows
        else Paragraph("No governed artifact uses this value set.")
    ]
    sections.append(Section("Artifacts using the value set", blocks))
    return sections


def _shown(total: int) -> str:
    return f"{min(total, _ROWS)} listed of {total}"


def _alerts(alerts: AlertShift, impact: ImpactReport) -> list[Section]:
    what = "findings" if impact.kind == "rule" else "cards"
    blocks: list[Block] = [
        Paragraph(
            f"{alerts.evaluated} subjects of the last {impact.days} days evaluated with both "
            f"versions: {alerts.before} {what} now, {alerts.after} with the proposal."
        ),
        _bar(
            "Alerts",
            f"Bar chart: {alerts.before} now, {alerts.after} after, {alerts.started} start "
            f"firing, {alerts.stopped} stop firing.",
            [
                {"series": "alerts", "what": name, "count": count}
                for name, count in (
                    ("now", alerts.before),
                    ("after", alerts.after),
                    ("start firing", alerts.started),
                    ("stop firing", alerts.stopped),
                )
            ],
            "what",
            "series",
        ),
    ]
    for label, count, examples in (
        ("Start firing", alerts.started, alerts.started_examples),
        ("Stop firing", alerts.stopped, alerts.stopped_examples),
    ):
        if examples:
            blocks.append(
                Table(
                    ["Subject", "Message"],
                    [list(e) for e in examples],
                    caption=f"{label}: {len(examples)} listed of {count}",
                )
            )
    if alerts.note:
        blocks.append(Paragraph(alerts.note))
    return [Section("Alerts that start and stop firing", blocks)]


def _measure(impact: ImpactReport) -> list[Section]:
    before: Mapping[str, int] = impact.totals.get("before", {})
    after: Mapping[str, int] = impact.totals.get("after", {})
    names = [n for n in dict.fromkeys([*before, *after])]
    totals: list[list[str | int | None]] = [[_label(n), before.get(n, 0), after.get(n, 0), after.get(n, 0) - before.get(n, 0)]
              for n in names]  # fmt: skip
    blocks: list[Block] = [Table(["Population", "Now", "Proposed", "Change"], totals)]
    shown = [n for n in ("denominator", "numerator") if n in names] or names[:2]
    rows: list[list[str | int | None]] = []
    chart_rows: list[dict[str, Any]] = []
    for shift in sorted(impact.clinicians, key=lambda c: (not c.changed, c.clinician)):
        label = f"{shift.name} ({shift.clinician})" if shift.name else shift.clinician
        row: list[str | int | None] = [label]
        for name in shown:
            old, new = shift.before.get(name, 0), shift.after.get(name, 0)
            row += [old, new, new - old]
            if shift.changed:
                chart_rows.append(
                    {
                        "clinician": shift.name or shift.clinician,
                        "population": name,
                        "count": new - old,
                    }
                )
        rows.append(row)
    columns = ["Clinician"]
    for name in shown:
        columns += [f"{_label(name)} now", f"{_label(name)} proposed", "Change"]
    blocks.append(Table(columns, rows[:_ROWS], caption=f"Per clinician ({_shown(len(rows))})"))
    if chart_rows:
        text = "; ".join(f"{r['clinician']} {r['population']} {r['count']:+d}" for r in chart_rows)
        blocks.append(
            _bar(
                "Shift per clinician",
                f"Bar chart of count changes: {text}.",
                chart_rows[:60],
                "clinician",
                "population",
            )
        )
    return [Section("Populations per clinician", blocks)]
