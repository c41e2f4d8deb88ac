"""Rule change: the alerts that would start or stop firing over the last N days.

A resource is in the window when it was last updated within it and its clinical date
(``effective[x]``, ``onset[x]``, ``authoredOn``, ``period.start``, ``recordedDate``,
``occurrence[x]``, ``performed[x]``, ``issued``, ``date``), when it has one, is within it
too. Data-quality rules (:mod:`cmio.rules`) are evaluated with the active and the proposed
version on those resources; CDS services (https://cds-hooks.hl7.org/2.0/) are replayed:
``patient-view`` once per patient with a resource in the window, ``order-select`` /
``order-sign`` once per MedicationRequest in the window (sent as the draft order), with
the service's prefetch resolved by ``fetcher`` and both versions' logic run on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from cmio.cds import LOGIC, CdsService, HookInput, PrefetchError, resolve_prefetch
from cmio.cds.prefetch import Fetcher
from cmio.governance.impact_model import AlertShift
from cmio.indexing.compartments import COMPARTMENT_PARAM, CompartmentIndexer
from cmio.model import Model
from cmio.rules import Rule, RuleEngine
from cmio.store.base import Repository

__all__ = ["cds_change", "clinical_day", "rule_change", "window_resources"]

_DATES = (
    "effectiveDateTime", "effectiveInstant", "effectivePeriod", "onsetDateTime", "onsetPeriod",
    "authoredOn", "period", "recordedDate", "occurrenceDateTime", "occurrencePeriod",
    "performedDateTime", "performedPeriod", "issued", "date",
)  # fmt: skip


def clinical_day(resource: Mapping[str, Any]) -> date | None:
    """The first clinical date of a resource (see the module docstring), None: none."""
    for name in _DATES:
        value = resource.get(name)
        if isinstance(value, Mapping):
            value = value.get("start") or value.get("end")
        if isinstance(value, str) and len(value) >= 10:
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                continue
    return None


def window_resources(
    repository: Repository, types: list[str] | None, days: int, today: date
) -> Iterator[dict[str, Any]]:
    """The current resources (of ``types``) in the window of the last ``days`` days."""
    cutoff = today - timedelta(days=days)
    since = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
    instant = since.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for stored in repository.iter_current(types, since=instant):
        if stored.data is None:
            continue
        resource = orjson.loads(stored.data)
        day = clinical_day(resource)
        if day is None or day >= cutoff:
            yield resource


def _shift(
    before: dict[str, str], after: dict[str, str], evaluated: int, limit: int, note: str = ""
) -> AlertShift:
    started = sorted(set(after) - set(before))
    stopped = sorted(set(before) - set(after))
    return AlertShift(
        evaluated,
        len(before),
        len(after),
        len(started),
        len(stopped),
        tuple((s, after[s]) for s in started[:limit]),
        tuple((s, before[s]) for s in stopped[:limit]),
        note,
    )


def rule_change(
    repository: Repository,
    engine: RuleEngine,
    old: Rule | None,
    new: Rule,
    *,
    days: int,
    today: date,
    limit: int = 50,
) -> AlertShift:
    """Findings of the active (``old``) and proposed (``new``) data-quality rule per
    resource in the window; a resource is a subject (``Type/id``)."""
    rules = [r for r in (old, new) if r is not None]
    types: list[str] | None = None
    if all(r.resource_types for r in rules):
        types = sorted({t for r in rules for t in r.resource_types})
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    evaluated = 0
    for resource in window_resources(repository, types, days, today):
        evaluated += 1
        subject = f"{resource.get('resourceType')}/{resource.get('id')}"
        if old is not None and (finding := engine.check(old, resource)) is not None:
            before[subject] = finding.message
        if (finding := engine.check(new, resource)) is not None:
            after[subject] = finding.message
    return _shift(before, after, evaluated, limit)


def cds_change(
    repository: Repository,
    model: Model,
    old: CdsService | None,
    new: CdsService,
    fetcher: Fetcher | None,
    *,
    days: int,
    today: date,
    limit: int = 50,
    ingredients: Any = None,
    care_gaps: Callable[[str, Sequence[str]], list[dict[str, Any]]] | None = None,
) -> AlertShift:
    """Cards of the active (``old``) and proposed (``new``) CDS service, replayed (see the
    module docstring). A subject is ``Patient/id`` (``patient-view``) or
    ``MedicationRequest/id`` (order hooks)."""
    if fetcher is None:
        return _shift({}, {}, 0, limit, "not replayed: no FHIR server to resolve the prefetch")
    requests = list(_hook_requests(repository, model, new.hook, days, today))
    cache = _CachingFetcher(fetcher)
    counts: list[dict[str, str]] = []
    failed: set[str] = set()
    for service in (old, new):
        fired: dict[str, str] = {}
        logic = LOGIC.get(service.logic) if service is not None else None
        if service is not None and logic is not None and service.hook == new.hook:
            for subject, request in requests:
                try:
                    prefetch = resolve_prefetch(service.prefetch, request, cache)
                except PrefetchError:
                    failed.add(subject)
                    continue
                extra = {"ingredients": ingredients} if ingredients is not None else {}
                hook = HookInput(service, request, prefetch, today, care_gaps, **extra)
                cards = logic(hook)
                if cards:
                    fired[subject] = "; ".join(str(c.get("summary")) for c in cards)
        counts.append(fired)
    notes = []
    if care_gaps is None and "cancer-screening" in (new.logic, old.logic if old else ""):
        notes.append("care gaps are not recomputed in the replay")
    if failed:
        notes.append(f"{len(failed)} subjects skipped: their prefetch could not be resolved")
    return _shift(counts[0], counts[1], len(requests), limit, "; ".join(notes))


class _CachingFetcher:
    def __init__(self, inner: Fetcher) -> None:
        self.inner = inner
        self.cache: dict[str, dict[str, Any] | None] = {}

    def get(self, url: str) -> dict[str, Any] | None:
        if url not in self.cache:
            self.cache[url] = self.inner.get(url)
        return self.cache[url]


def _hook_requests(
    repository: Repository, model: Model, hook: str, days: int, today: date
) -> Iterator[tuple[str, dict[str, Any]]]:
    user = "Practitioner/impact-analysis"
    if hook == "patient-view":
        compartments = CompartmentIndexer(model)
        patients: set[str] = set()
        for resource in window_resources(repository, None, days, today):
            for row in compartments.rows(resource):
                if row.param == COMPARTMENT_PARAM and isinstance(row.value, str):
                    patients.add(row.value)
        for pid in sorted(patients):
            yield f"Patient/{pid}", _request(hook, {"userId": user, "patientId": pid})
        return
    for order in window_resources(repository, ["MedicationRequest"], days, today):
        reference = str((order.get("subject") or {}).get("reference") or "")
        draft = {**order, "status": "draft"}
        context: dict[str, Any] = {
            "userId": user,
            "patientId": reference.removeprefix("Patient/"),
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": draft}],
            },
        }
        if hook == "order-select":
            context["selections"] = [f"MedicationRequest/{order.get('id')}"]
        yield f"MedicationRequest/{order.get('id')}", _request(hook, context)


def _request(hook: str, context: dict[str, Any]) -> dict[str, Any]:
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
