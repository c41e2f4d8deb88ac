"""Cost of care for a reporting period, joined to quality: per member per month (PMPM)
trend, service lines, departments and clinicians, and cost against outcome for each
clinician's and department's attributed patients.

Built on :mod:`cmio.measures.cost` (allowed amounts of adjudicated
ExplanationOfBenefits, member months from Coverage: see ``docs/measures.md``, "Cost")
and the quality-measure framework (:func:`cmio.measures.runner.evaluate_measures`):

* **Service line**: the ``Encounter.class`` of the claim's encounter (ambulatory,
  emergency, inpatient ...); its PMPM is its allowed amount over all member months, so
  the lines add up to the total PMPM.
* **Panels**: every patient is attributed to a clinician and department by the measure
  framework's own attribution (``docs/measures.md``, "Attribution and stratifiers":
  the practitioner of the most recent finished encounter in the period, else the
  general practitioner), through an auxiliary measure whose initial population is every
  patient. A panel's PMPM is its patients' allowed amount over their member months
  (:func:`cmio.measures.cost.cost_of_care` with the panel as population).
* **Outcome**: across the built-in eCQMs, a patient's *opportunity* is a measure whose
  denominator they are in (not excluded or excepted); it is *met* when they have no
  open care gap (for the inverse CMS122, when not in poor control). A panel's met rate
  is met / opportunities; CMS122 poor control is shown beside it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cmio.measures.cost import cost_of_care, read_cost
from cmio.measures.definition import MeasureDefinition, builtin_measures, measure_from_yaml
from cmio.measures.ehr_use import SqlEngine
from cmio.measures.ehr_use.engine import Period
from cmio.measures.runner import MeasureResult, evaluate_measures
from cmio.measures.sql import Period as MeasurePeriod
from cmio.oversight.ehr_use import practitioner_names
from cmio.oversight.period import ReportingPeriod

if TYPE_CHECKING:
    from cmio.oversight.headline import Headline
    from cmio.oversight.shared import SharedWork
    from cmio.reports.model import Section
    from cmio.terminology.service import TerminologyService

__all__ = [
    "SERVICE_LINES",
    "CostLine",
    "CostSummary",
    "MonthCost",
    "Panel",
    "cost_summary",
    "headlines",
    "panel_measure",
    "report_sections",
]

SERVICE_LINES: Mapping[str, str] = {
    "AMB": "Ambulatory", "EMER": "Emergency", "IMP": "Inpatient", "ACUTE": "Inpatient acute",
    "NONAC": "Inpatient non-acute", "OBSENC": "Observation", "PRENC": "Pre-admission",
    "SS": "Short stay", "VR": "Virtual", "HH": "Home health", "FLD": "Field",
}  # fmt: skip
"""Labels of the HL7 v3 ActEncounterCode classes (https://terminology.hl7.org/ValueSet-v3-ActEncounterCode.html)."""
_UNLINKED = "(no encounter)"


def panel_measure() -> MeasureDefinition:
    """The auxiliary measure that attributes every patient (clinician and department
    stratifiers of the common library; nobody is in its numerator)."""
    return measure_from_yaml(
        {
            "id": "PANEL",
            "title": "Attributed patients",
            "scoring": "proportion",
            "stratifiers": ["clinician", "department"],
            "populations": {
                "initial-population": "SELECT patient_id FROM mp_patient",
                "denominator": "SELECT patient_id FROM initial_population",
                "numerator": "SELECT patient_id FROM denominator WHERE 1 = 0",
            },
        }
    )


@dataclass(frozen=True, slots=True)
class MonthCost:
    """One month: claims, allowed dollars, member months and PMPM."""

    month: str
    claims: int
    allowed: float
    member_months: int
    pmpm: float | None


@dataclass(frozen=True, slots=True)
class CostLine:
    """One row of a breakdown (service line, encounter type, department, clinician ...).

    Attributes:
        key: the code or id. label: the name people read. claims, patients: counts.
        allowed, paid: dollars. encounters: distinct encounters (None when not counted).
        per_encounter: allowed per encounter. pmpm: allowed over all member months.
    """

    key: str
    label: str
    claims: int
    patients: int
    allowed: float
    paid: float
    encounters: int | None
    per_encounter: float | None
    pmpm: float | None


@dataclass(frozen=True, slots=True)
class Panel:
    """Cost against outcome for one clinician's or department's attributed patients.

    Attributes:
        key: ``Practitioner/<id>`` or the department name. label: the name.
        department: the clinician's department (clinicians only).
        members, member_months, allowed, pmpm: the panel's cost.
        opportunities, met: measure opportunities and those met (see the module).
        cms122_denominator, cms122_poor: CMS122 denominator less exclusions, numerator.
    """

    key: str
    label: str
    department: str
    members: int
    member_months: int
    allowed: float
    pmpm: float | None
    opportunities: int
    met: int
    cms122_denominator: int
    cms122_poor: int

    @property
    def met_rate(self) -> float | None:
        """Share of measure opportunities met (None without opportunities)."""
        return self.met / self.opportunities if self.opportunities else None

    @property
    def cms122_rate(self) -> float | None:
        """CMS122 poor-control rate (None without denominator)."""
        return self.cms122_poor / self.cms122_denominator if self.cms122_denominator else None


@dataclass(frozen=True, slots=True)
class CostSummary:
    """Cost of care over a reporting period.

    Attributes:
        period: the period. claims, patients, members, member_months: counts.
        billed, allowed, paid, patient_share: dollars. pmpm: allowed / member months.
        months: the monthly trend. service_lines, encounter_types, departments,
            clinicians, conditions: breakdowns (clinician = the encounter's performer,
            department = the billing organization). populations: PMPM of the CMS122
            populations. clinician_panels, department_panels: cost against outcome.
        measures: the measures counted as opportunities (id, title).
    """

    period: ReportingPeriod
    claims: int
    patients: int
    members: int
    member_months: int
    billed: float
    allowed: float
    paid: float
    patient_share: float
    pmpm: float | None
    months: tuple[MonthCost, ...]
    service_lines: tuple[CostLine, ...]
    encounter_types: tuple[CostLine, ...]
    departments: tuple[CostLine, ...]
    clinicians: tuple[CostLine, ...]
    conditions: tuple[CostLine, ...]
    populations: tuple[CostLine, ...]
    clinician_panels: tuple[Panel, ...]
    department_panels: tuple[Panel, ...]
    measures: tuple[tuple[str, str], ...]


def _dollars(cents: Any) -> float:
    return float(cents or 0) / 100


def _line(row: Mapping[str, Any], key: str, label: str, member_months: int) -> CostLine:
    allowed = _dollars(row.get("allowed_cents"))
    return CostLine(
        key, label, int(row.get("claims") or 0), int(row.get("patients") or 0), allowed,
        _dollars(row.get("paid_cents")), row.get("encounters"), row.get("allowed_per_encounter"),
        allowed / member_months if member_months else None,
    )  # fmt: skip


def _service_lines(rows: Sequence[Mapping[str, Any]], member_months: int) -> tuple[CostLine, ...]:
    sums: dict[str, dict[str, Any]] = {}
    for r in rows:
        code = r["class_code"] or ""
        acc = sums.setdefault(code, {"claims": 0, "allowed_cents": 0, "paid_cents": 0,
                                     "encounters": 0})  # fmt: skip
        for name in ("claims", "allowed_cents", "paid_cents", "encounters"):
            acc[name] += int(r[name] or 0)
    lines = []
    for code, acc in sums.items():
        acc["patients"] = 0  # not additive across types: left out
        acc["allowed_per_encounter"] = (
            acc["allowed_cents"] / 100 / acc["encounters"] if acc["encounters"] else None
        )
        label = SERVICE_LINES.get(code, code) if code else _UNLINKED
        lines.append(_line(acc, code, label, member_months))
    return tuple(sorted(lines, key=lambda line: -line.allowed))


def _flag(row: Mapping[str, Any], name: str) -> bool:
    return bool(row.get(name))


def _outcomes(results: Sequence[MeasureResult], field: str) -> dict[str, list[int]]:
    """Per stratum value: [opportunities, met, CMS122 denominator, CMS122 poor]."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for result in results:
        for row in result.members.to_pylist():
            eligible = (
                _flag(row, "denominator")
                and not _flag(row, "denominator_exclusion")
                and not _flag(row, "denominator_exception")
            )
            if not eligible:
                continue
            acc = out[str(row.get(field) or "unknown")]
            acc[0] += 1
            acc[1] += 0 if _flag(row, "care_gap") else 1
            if result.measure.id == "CMS122":
                acc[2] += 1
                acc[3] += 1 if _flag(row, "numerator") else 0
    return out


def _membership(panel: MeasureResult, field: str) -> pa.Table:
    rows = [(str(r["patient_id"]), r.get(field)) for r in panel.members.to_pylist()]
    kept = [(p, str(v)) for p, v in rows if v]
    return pa.table(
        {"patient_id": [p for p, _ in kept], "population": [v for _, v in kept]},
        schema=pa.schema([("patient_id", pa.string()), ("population", pa.string())]),
    )


def _cms122_membership(result: MeasureResult) -> pa.Table:
    kept: list[tuple[str, str]] = []
    for row in result.members.to_pylist():
        if _flag(row, "denominator_exclusion"):
            kept.append((str(row["patient_id"]), "CMS122 excluded"))
        elif _flag(row, "denominator"):
            poor = _flag(row, "numerator")
            label = "CMS122 poor control (> 9%)" if poor else "CMS122 controlled (<= 9%)"
            kept.append((str(row["patient_id"]), label))
    return pa.table(
        {"patient_id": [p for p, _ in kept], "population": [v for _, v in kept]},
        schema=pa.schema([("patient_id", pa.string()), ("population", pa.string())]),
    )


def _panels(
    rows: Sequence[Mapping[str, Any]],
    outcomes: Mapping[str, list[int]],
    labels: Mapping[str, str],
    departments: Mapping[str, str],
) -> tuple[Panel, ...]:
    out = []
    for r in rows:
        key = str(r["population"])
        if key == "other":
            continue
        o = outcomes.get(key, [0, 0, 0, 0])
        out.append(
            Panel(
                key,
                labels.get(key, key),
                departments.get(key, ""),
                int(r["members"] or 0),
                int(r["member_months"] or 0),
                _dollars(r["allowed_cents"]),
                r["pmpm"],
                o[0],
                o[1],
                o[2],
                o[3],
            )
        )
    return tuple(sorted(out, key=lambda p: p.label))


def cost_summary(
    repository: Any,
    period: ReportingPeriod,
    terminology: TerminologyService | None = None,
    shared: SharedWork | None = None,
) -> CostSummary:
    """Compute the period's cost summary on DuckDB (see the module for the definitions;
    https://hl7.org/fhir/R4/explanationofbenefit.html).

    Args:
        repository: the store, or any source the cost and measure engines read.
        period: the reporting period.
        terminology: the terminology service for the measures' value sets (None: the
            value sets shipped with the measures).
        shared: work shared with the other summaries (the measures over the period,
            which the quality summary evaluates too, and the cost views, which do not
            depend on the period); None: computed here.

    Returns:
        The :class:`CostSummary`.
    """
    span = Period(period.start, period.end)
    measures = [*builtin_measures().values(), panel_measure()]
    window = MeasurePeriod(period.start, period.end)
    if shared is not None and shared.repository is repository:
        results = shared.evaluate(measures, window)
        inputs = shared.once("cost:inputs", lambda: read_cost(repository))
    else:
        results = evaluate_measures(measures, window, repository, "duckdb", terminology=terminology)
        inputs = read_cost(repository)
    by_id = {r.measure.id: r for r in results}
    quality = [r for r in results if r.measure.id != "PANEL"]
    panel = by_id["PANEL"]
    with SqlEngine("duckdb") as engine:
        main = cost_of_care(inputs, span, engine, populations=_cms122_membership(by_id["CMS122"]))
        tables = {name: table.to_pylist() for name, table in main.items()}
        clinician_rows = cost_of_care(
            inputs, span, engine, populations=_membership(panel, "strat_clinician")
        )["populations"].to_pylist()
        department_rows = cost_of_care(
            inputs, span, engine, populations=_membership(panel, "strat_department")
        )["populations"].to_pylist()
    names = practitioner_names(repository)
    total = tables["totals"][0]
    mm = int(total["member_months"] or 0)
    clinician_dept = {
        str(r["strat_clinician"]): str(r["strat_department"] or "")
        for r in panel.members.to_pylist()
        if r.get("strat_clinician")
    }
    ref_names = {f"Practitioner/{k}": v for k, v in names.items()}

    def lines(name: str, key: str, label: Any) -> tuple[CostLine, ...]:
        return tuple(_line(r, str(r[key] or ""), label(r), mm) for r in tables[name])

    return CostSummary(
        period=period,
        claims=int(total["claims"] or 0), patients=int(total["patients"] or 0),
        members=int(total["members"] or 0), member_months=mm,
        billed=_dollars(total["billed_cents"]), allowed=_dollars(total["allowed_cents"]),
        paid=_dollars(total["paid_cents"]), patient_share=_dollars(total["patient_share_cents"]),
        pmpm=total["pmpm"],
        months=tuple(
            MonthCost(r["month"], int(r["claims"]), _dollars(r["allowed_cents"]),
                      int(r["member_months"]), r["pmpm"])
            for r in tables["months"]
        ),
        service_lines=_service_lines(tables["encounter_types"], mm),
        encounter_types=lines(
            "encounter_types", "type_code",
            lambda r: f"{SERVICE_LINES.get(r['class_code'] or '', r['class_code'] or _UNLINKED)}"
            f": {r['type_display'] or r['type_code'] or 'unspecified'}",
        ),
        departments=lines("departments", "department_id",
                          lambda r: r["department"] or r["department_id"] or "(unknown)"),
        clinicians=lines("clinicians", "clinician_id",
                         lambda r: names.get(r["clinician_id"] or "", r["clinician_id"] or "(unknown)")),
        conditions=lines("conditions", "dx_code",
                         lambda r: f"{r['dx_code'] or ''} {r['dx_display'] or ''}".strip() or "(none)"),
        populations=tuple(
            CostLine(str(r["population"]), str(r["population"]), 0, int(r["patients"] or 0),
                     _dollars(r["allowed_cents"]), 0.0, None, None, r["pmpm"])
            for r in tables["populations"]
        ),
        clinician_panels=_panels(clinician_rows, _outcomes(quality, "strat_clinician"),
                                 ref_names, clinician_dept),
        department_panels=_panels(department_rows, _outcomes(quality, "strat_department"), {}, {}),
        measures=tuple((r.measure.id, r.measure.title) for r in quality),
    )  # fmt: skip


def headlines(summary: CostSummary) -> list[Headline]:
    """Tiles of the executive overview: PMPM with its trend, PMPM by service line, and the
    PMPM of diabetics in poor control against those controlled (see
    :mod:`cmio.oversight.cost_report`)."""
    from cmio.oversight.cost_report import cost_headlines

    return cost_headlines(summary)


def report_sections(summary: CostSummary) -> list[Section]:
    """The steering-committee report's cost section."""
    from cmio.oversight.cost_report import cost_sections

    return cost_sections(summary)
