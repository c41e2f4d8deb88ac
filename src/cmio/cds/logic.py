"""The starter CDS logic: each function turns a hook request and its prefetch into cards.

Services name their logic (:attr:`cmio.cds.definitions.CdsService.logic`); the table
:data:`LOGIC` maps those names to functions (an immutable mapping, not a registry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any

from cmio.cds.cards import action, card, override_reasons
from cmio.cds.definitions import CdsService
from cmio.cds.ingredients import CodingIngredients, IngredientResolver

__all__ = ["LOGIC", "CareGaps", "HookInput", "resources_of"]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CareGaps = Callable[[str, Sequence[str]], list[dict[str, Any]]]
"""``(patient id, measure ids) -> open gaps`` (rows of ``cmio.measures.CARE_GAP_SCHEMA``)."""


@dataclass(frozen=True, slots=True)
class HookInput:
    """What a logic function sees: the service, the request, the prefetched data."""

    service: CdsService
    request: Mapping[str, Any]
    prefetch: Mapping[str, Any]
    today: date
    care_gaps: CareGaps | None = None
    ingredients: IngredientResolver = field(default_factory=CodingIngredients)

    @property
    def context(self) -> Mapping[str, Any]:
        """The hook's ``context``."""
        value = self.request.get("context")
        return value if isinstance(value, Mapping) else {}

    def param(self, name: str, default: Any) -> Any:
        """A service parameter."""
        return self.service.parameters.get(name, default)


def resources_of(value: Any) -> list[dict[str, Any]]:
    """The resources in a prefetch value: a Bundle's entries or one resource."""
    if not isinstance(value, Mapping):
        return []
    if value.get("resourceType") == "Bundle":
        return [
            e["resource"]
            for e in value.get("entry", [])
            if isinstance(e, Mapping) and isinstance(e.get("resource"), dict)
        ]
    return [dict(value)] if "resourceType" in value else []


def _day(resource: Mapping[str, Any]) -> date | None:
    period = resource.get("effectivePeriod") or {}
    for value in (
        resource.get("effectiveDateTime"),
        period.get("start") if isinstance(period, Mapping) else None,
        resource.get("issued"),
        resource.get("authoredOn"),
    ):
        if isinstance(value, str) and len(value) >= 10:
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                continue
    return None


def _codings(concept: Any) -> list[Mapping[str, Any]]:
    if not isinstance(concept, Mapping):
        return []
    return [c for c in concept.get("coding", []) if isinstance(c, Mapping)]


def _has(concept: Any, system: str, codes: Iterable[str]) -> bool:
    wanted = set(codes)
    return any(c.get("system") == system and c.get("code") in wanted for c in _codings(concept))


def _name(concept: Any) -> str:
    if not isinstance(concept, Mapping):
        return "medication"
    text = concept.get("text")
    for coding in _codings(concept):
        text = text or coding.get("display") or coding.get("code")
    return str(text or "medication")


_DIABETES_SNOMED = ("44054006", "46635009", "73211009")
_INACTIVE = ("inactive", "resolved", "remission")


def _diabetic(conditions: Iterable[Mapping[str, Any]]) -> bool:
    for condition in conditions:
        status = [c.get("code") for c in _codings(condition.get("clinicalStatus"))]
        if any(s in _INACTIVE for s in status):
            continue
        codes = _codings(condition.get("code"))
        if _has(condition.get("code"), SNOMED, _DIABETES_SNOMED) or any(
            c.get("system") == ICD10CM and str(c.get("code", ""))[:3] in ("E10", "E11", "E13")
            for c in codes
        ):
            return True
    return False


def diabetes_a1c(hook: HookInput) -> list[dict[str, Any]]:
    """A diabetic patient without an HbA1c in the last ``months`` months."""
    if not _diabetic(resources_of(hook.prefetch.get("conditions"))):
        return []
    months = int(hook.param("months", 6))
    since = hook.today - timedelta(days=round(months * 30.44))
    days = [
        d
        for o in resources_of(hook.prefetch.get("a1c"))
        if o.get("status") not in ("entered-in-error", "cancelled")
        and _has(o.get("code"), LOINC, ("4548-4", "17856-6", "4549-2"))
        and (d := _day(o)) is not None
    ]
    last = max(days, default=None)
    if last is not None and last >= since:
        return []
    patient = str(hook.context.get("patientId", ""))
    order = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {"coding": [{"system": LOINC, "code": "4548-4", "display": "Hemoglobin A1c"}]},
        "subject": {"reference": f"Patient/{patient}"},
    }
    when = f"last on {last.isoformat()}" if last else "none on record"
    return [
        card(
            f"Diabetes: no HbA1c in the last {months} months ({when})",
            "warning",
            detail="Guidelines recommend an HbA1c at least every 6 months when not at goal.",
            suggestions=[("Order an HbA1c", [action("create", "Order HbA1c", order)])],
            links=[("ADA Standards of Care", "https://diabetesjournals.org/care", "absolute")],
            reasons=override_reasons(("recent-external", "Recent result from an outside lab")),
            service=hook.service.id,
        )
    ]


_ANTIHYPERTENSIVES = {
    "29046": "lisinopril", "3827": "enalapril", "35296": "ramipril", "17767": "amlodipine",
    "52175": "losartan", "69749": "valsartan", "5487": "hydrochlorothiazide",
    "2409": "chlorthalidone", "6918": "metoprolol", "1202": "atenolol", "20352": "carvedilol",
    "83818": "irbesartan", "33910": "benazepril", "4603": "furosemide", "17128": "lercanidipine",
}  # fmt: skip


def _reading(o: Mapping[str, Any]) -> tuple[float | None, float | None]:
    def value(element: Mapping[str, Any]) -> float | None:
        q = element.get("valueQuantity")
        return float(q["value"]) if isinstance(q, Mapping) and "value" in q else None

    systolic = diastolic = None
    parts = [o, *[c for c in o.get("component", []) if isinstance(c, Mapping)]]
    for part in parts:
        if _has(part.get("code"), LOINC, ("8480-6",)):
            systolic = value(part)
        elif _has(part.get("code"), LOINC, ("8462-4",)):
            diastolic = value(part)
    return systolic, diastolic


def _antihypertensive(request: Mapping[str, Any], hook: HookInput) -> bool:
    concept = request.get("medicationCodeableConcept")
    names = {n for _, n in _ingredients_of(request, hook)} | {_name(concept).lower()}
    codes = {c for c, _ in _ingredients_of(request, hook)}
    return bool(codes & set(_ANTIHYPERTENSIVES)) or any(
        drug in name.lower() for name in names for drug in _ANTIHYPERTENSIVES.values()
    )


def bp_above_target(hook: HookInput) -> list[dict[str, Any]]:
    """Latest blood pressure above target and no antihypertensive change in ``days`` days."""
    by_day: dict[date, tuple[float | None, float | None]] = {}
    for obs in resources_of(hook.prefetch.get("bp")):
        day = _day(obs)
        if day is None or obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        systolic, diastolic = _reading(obs)
        held = by_day.get(day, (None, None))
        by_day[day] = (systolic or held[0], diastolic or held[1])
    if not by_day:
        return []
    day = max(by_day)
    systolic, diastolic = by_day[day]
    top_s, top_d = float(hook.param("systolic", 140)), float(hook.param("diastolic", 90))
    if not ((systolic or 0) > top_s or (diastolic or 0) > top_d):
        return []
    window = hook.today - timedelta(days=int(hook.param("days", 90)))
    for request in resources_of(hook.prefetch.get("medications")):
        authored = _day(request)
        if authored is not None and authored >= window and _antihypertensive(request, hook):
            return []
    shown = f"{systolic or '?':g}/{diastolic or '?':g}" if systolic and diastolic else "high"
    return [
        card(
            f"BP {shown} mmHg on {day.isoformat()} above {top_s:g}/{top_d:g}; "
            f"no antihypertensive change in {int(hook.param('days', 90))} days",
            "warning",
            detail="Consider intensifying therapy or confirming with home readings.",
            links=[
                (
                    "ACC/AHA hypertension guideline",
                    "https://www.ahajournals.org/doi/10.1161/HYP.0000000000000065",
                    "absolute",
                )
            ],
            reasons=override_reasons(
                ("home-readings-at-goal", "Home readings at goal"),
                ("patient-declined", "Patient declined a change"),
            ),
            service=hook.service.id,
        )
    ]


def cancer_screening(hook: HookInput) -> list[dict[str, Any]]:
    """Open care gaps of the cancer-screening measures (:mod:`cmio.measures.caregaps`)."""
    patient = hook.context.get("patientId")
    if hook.care_gaps is None or not isinstance(patient, str):
        return []
    measures = list(hook.param("measures", ["CMS125", "CMS130"]))
    cards = []
    for gap in hook.care_gaps(patient, measures):
        since = f" (last: {gap['since']})" if gap.get("since") else " (never done)"
        cards.append(
            card(
                f"Overdue {gap['measure']} screening{since}",
                "info",
                detail=f"Missing: {gap.get('missing') or gap['measure']}",
                links=[
                    (
                        "eCQI measure",
                        f"https://ecqi.healthit.gov/ecqm/ec/2024/{str(gap['measure']).lower()}v12",
                        "absolute",
                    )
                ],
                reasons=override_reasons(("done-elsewhere", "Done elsewhere")),
                service=hook.service.id,
            )
        )
    return cards


def _ingredients_of(request: Mapping[str, Any], hook: HookInput) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for coding in _codings(request.get("medicationCodeableConcept")):
        out |= hook.ingredients.ingredients(coding)
    for contained in request.get("contained", []):
        if isinstance(contained, Mapping) and contained.get("resourceType") == "Medication":
            for coding in _codings(contained.get("code")):
                out |= hook.ingredients.ingredients(coding)
            for part in contained.get("ingredient", []):
                for coding in _codings(part.get("itemCodeableConcept")):
                    out |= hook.ingredients.ingredients(coding)
    return out


def _orders(hook: HookInput) -> list[dict[str, Any]]:
    orders = [
        r
        for r in resources_of(hook.context.get("draftOrders"))
        if r.get("resourceType") == "MedicationRequest"
    ]
    selections = hook.context.get("selections")
    if hook.service.hook == "order-select" and isinstance(selections, list):
        chosen = set(selections)
        orders = [o for o in orders if f"MedicationRequest/{o.get('id')}" in chosen]
    return orders


def duplicate_therapy(hook: HookInput) -> list[dict[str, Any]]:
    """A draft medication order sharing an ingredient with another active or draft order."""
    drafts = [
        r
        for r in resources_of(hook.context.get("draftOrders"))
        if r.get("resourceType") == "MedicationRequest"
    ]
    active = [
        r
        for r in resources_of(hook.prefetch.get("medications"))
        if r.get("status") in ("active", "on-hold", None)
    ]
    cards = []
    for order in _orders(hook):
        mine = _ingredients_of(order, hook)
        for other in active + drafts:
            if other is order or other.get("id") == order.get("id"):
                continue
            shared = {n for c, n in mine if c in {oc for oc, _ in _ingredients_of(other, hook)}}
            if not shared:
                continue
            label = _name(order.get("medicationCodeableConcept"))
            existing = _name(other.get("medicationCodeableConcept"))
            cards.append(
                card(
                    f"Duplicate therapy: {label} and {existing} share {', '.join(sorted(shared))}",
                    "warning",
                    suggestions=[
                        (
                            f"Remove the order for {label}",
                            [
                                action(
                                    "delete",
                                    f"Remove {label}",
                                    f"MedicationRequest/{order.get('id')}",
                                )
                            ],
                        )
                    ],
                    reasons=override_reasons(("intended", "Intended combination or taper")),
                    service=hook.service.id,
                )
            )
            break
    return cards


def drug_allergy(hook: HookInput) -> list[dict[str, Any]]:
    """A medication order containing an ingredient the patient is allergic to."""
    allergies = [
        a
        for a in resources_of(hook.prefetch.get("allergies"))
        if not any(
            c.get("code") in ("entered-in-error", "refuted")
            for c in _codings(a.get("verificationStatus"))
        )
    ]
    cards = []
    for order in _orders(hook):
        mine = _ingredients_of(order, hook)
        codes, names = {c for c, _ in mine}, {n.lower() for _, n in mine}
        for allergy in allergies:
            substances = [allergy.get("code")] + [
                r.get("substance") for r in allergy.get("reaction", []) if isinstance(r, Mapping)
            ]
            hit = False
            for substance in substances:
                found: set[tuple[str, str]] = set()
                for coding in _codings(substance):
                    found |= hook.ingredients.ingredients(coding)
                text = _name(substance).lower() if substance else ""
                if {c for c, _ in found} & codes or (text and text in names):
                    hit = True
            if not hit:
                continue
            label = _name(order.get("medicationCodeableConcept"))
            cards.append(
                card(
                    f"Allergy: patient is allergic to {_name(allergy.get('code'))}; "
                    f"{label} contains it",
                    "critical",
                    suggestions=[
                        (
                            f"Cancel the order for {label}",
                            [
                                action(
                                    "delete",
                                    f"Remove {label}",
                                    f"MedicationRequest/{order.get('id')}",
                                )
                            ],
                        )
                    ],
                    reasons=override_reasons(
                        ("tolerated-before", "Patient has tolerated this before"),
                        ("benefit-outweighs-risk", "Benefit outweighs risk"),
                    ),
                    service=hook.service.id,
                )
            )
            break
    return cards


LOGIC: Mapping[str, Callable[[HookInput], list[dict[str, Any]]]] = MappingProxyType(
    {
        "diabetes-a1c": diabetes_a1c,
        "bp-above-target": bp_above_target,
        "cancer-screening": cancer_screening,
        "duplicate-therapy": duplicate_therapy,
        "drug-allergy": drug_allergy,
    }
)
