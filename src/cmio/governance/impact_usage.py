"""Value-set change: the governed artifacts that use the value set, counted with the active
and with the proposed expansion.

* measures (stored ``Measure`` resources with SQL criteria and the measures shipped with
  cmio) whose population SQL names the value set (by computable ``name``, whose ``url``
  is the changed one): run with each expansion, population counts before and after
  (https://hl7.org/fhir/R4/measure-definitions.html#Measure.group.population.code);
* active data-quality rules whose ``terminology.valueSet``, ``expression`` or ``applies``
  names the value set (``memberOf()``): findings over the store with each expansion;
* ViewDefinitions (active ``Basic`` artifacts) calling ``memberOf()`` on it: row counts;
* active CDS services whose definition names it: listed (the starter CDS logic reads codes,
  not value sets, so there is nothing to count).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cmio.governance.impact_model import UsageImpact
from cmio.governance.impact_valueset import Members, PinnedTerminology
from cmio.governance.lifecycle import canonical_of, state_of
from cmio.measures import MeasureDefinition, MeasureRunner, Period, builtin_measures
from cmio.measures.definition import MeasureDefinitionError, measure_from_resource
from cmio.measures.engines import open_engine
from cmio.measures.valuesets import builtin_valuesets
from cmio.model import Model
from cmio.store.base import Repository, SearchQuery
from cmio.terminology.providers import ServiceTerminology
from cmio.terminology.service import TerminologyService

__all__ = ["measures_in_store", "usages", "valueset_library"]


def _mentions(text: str | None, url: str) -> bool:
    return bool(text) and url in str(text)


def _all(repository: Repository, rtype: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = repository.search(SearchQuery(rtype, (), count=500, offset=offset, total=False))
        out += [orjson.loads(s.data) for s in page.resources if s.data is not None]
        if len(page.resources) < 500:
            return out
        offset += 500


def measures_in_store(repository: Repository) -> list[tuple[str, MeasureDefinition]]:
    """``(Measure/id, definition)`` of the active stored Measures with SQL criteria."""
    found = []
    for resource in _all(repository, "Measure"):
        if state_of(resource) != "active":
            continue
        try:
            found.append((f"Measure/{resource.get('id')}", measure_from_resource(resource)))
        except MeasureDefinitionError:
            continue  # a Measure of another kind (CQL, no SQL criteria): not runnable here
    return found


def valueset_library(repository: Repository) -> dict[str, dict[str, Any]]:
    """The value sets measures may name: the ones shipped with cmio, overridden by the
    active ValueSets of the store with a computable ``name`` (highest version wins)."""
    from cmio.rules.definition import version_key

    library = builtin_valuesets()
    stored = [v for v in _all(repository, "ValueSet") if state_of(v) == "active"]
    stored.sort(key=lambda v: version_key(str(v.get("version") or "0")))
    for valueset in stored:
        if isinstance(valueset.get("name"), str):
            library[str(valueset["name"])] = valueset
    return library


def usages(
    repository: Repository,
    model: Model,
    service: TerminologyService,
    proposed: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    old: Members,
    new: Members,
    *,
    period: Period,
    include_builtin: bool = True,
) -> tuple[list[UsageImpact], list[str]]:
    """The artifacts using the value set ``proposed`` replaces ``current`` with, and notes.

    Args:
        repository: the store.
        model: the FHIR model (FHIRPath for rules).
        service: the terminology service (other value sets).
        proposed: the proposed ValueSet.
        current: the active ValueSet (None: none).
        old: the active expansion.
        new: the proposed expansion.
        period: the measurement period the measures are run for.
        include_builtin: also the measures shipped with cmio.
    """
    url = str(proposed.get("url") or "")
    fallback = ServiceTerminology(service)
    before = PinnedTerminology(url, old, fallback)
    after = PinnedTerminology(url, new, fallback)
    found: list[UsageImpact] = []
    notes: list[str] = []
    found += _measure_usages(repository, service, proposed, current, period, include_builtin, notes)
    found += _rule_usages(repository, model, url, before, after)
    found += _view_usages(repository, model, url, before, after, notes)
    found += _cds_usages(repository, url)
    return found, notes


def _measure_usages(
    repository: Repository,
    service: TerminologyService,
    proposed: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    period: Period,
    include_builtin: bool,
    notes: list[str],
) -> list[UsageImpact]:
    url = proposed.get("url")
    library = valueset_library(repository)
    names = {name for name, vs in library.items() if vs.get("url") == url}
    for valueset in (proposed, current):
        if valueset is not None and isinstance(valueset.get("name"), str):
            names.add(str(valueset["name"]))
    if not names:
        return []
    candidates: dict[str, tuple[str, MeasureDefinition]] = {}
    if include_builtin:
        for mid, measure in builtin_measures().items():
            candidates[measure.canonical] = (f"builtin:{mid}", measure)
    for reference, measure in measures_in_store(repository):
        candidates[measure.canonical] = (reference, measure)
    engine = open_engine("duckdb", threads=1)
    try:
        runner = MeasureRunner(engine, valuesets=library, terminology=service)
        using: list[tuple[str, MeasureDefinition]] = []
        for reference, measure in sorted(candidates.values(), key=lambda c: c[0]):
            try:
                compiled = runner.compile(measure, period)
            except MeasureDefinitionError as error:
                notes.append(f"{reference}: not compiled ({error})")
                continue
            if names & set(compiled.valuesets):
                using.append((reference, measure))
        if not using:
            return []
        results = []
        for valueset in (current, proposed):
            lib = dict(library)
            for name in names:
                if valueset is None:
                    lib[name] = {**proposed, "name": name, "compose": {"include": []}}
                else:
                    lib[name] = {**valueset, "name": name}
            runner.valuesets = lib
            results.append(runner.evaluate([m for _, m in using], period, repository))
    finally:
        engine.close()
    return [
        UsageImpact(
            "measure",
            reference,
            f"{measure.id} {measure.title}".strip(),
            dict(old.counts),
            dict(new.counts),
        )
        for (reference, measure), old, new in zip(using, results[0], results[1], strict=True)
    ]


def _rule_usages(
    repository: Repository,
    model: Model,
    url: str,
    before: PinnedTerminology,
    after: PinnedTerminology,
) -> list[UsageImpact]:
    from cmio.fhirpath import FhirPathEngine
    from cmio.rules import RuleEngine, active_rules, run_rules

    rules = [
        r
        for r in active_rules(repository)
        if (r.terminology is not None and _mentions(r.terminology.value_set, url))
        or _mentions(r.expression, url)
        or _mentions(r.applies, url)
    ]
    if not rules:
        return []
    fhirpath = FhirPathEngine(model)
    out = []
    for rule in rules:
        counts = [
            run_rules(repository, RuleEngine(fhirpath, pinned), [rule]).num_rows
            for pinned in (before, after)
        ]
        out.append(
            UsageImpact(
                "rule",
                f"Library/rule-{rule.id}",
                f"{rule.canonical}|{rule.version}",
                {"findings": counts[0]},
                {"findings": counts[1]},
            )
        )
    return out


def _view_usages(
    repository: Repository,
    model: Model,
    url: str,
    before: PinnedTerminology,
    after: PinnedTerminology,
    notes: list[str],
) -> list[UsageImpact]:
    from cmio.governance.lifecycle import logic_of
    from cmio.views import run as run_view
    from cmio.views.parse import ViewDefinitionError

    out = []
    for basic in _all(repository, "Basic"):
        if state_of(basic) != "active":
            continue
        view = logic_of(basic)
        if not isinstance(view, dict) or view.get("resourceType") != "ViewDefinition":
            continue
        if url not in orjson.dumps(view).decode():
            continue
        vurl, version = canonical_of(basic)
        reference = f"Basic/{basic.get('id')}"
        try:
            rows = [
                run_view(view, repository, "duckdb", model=model, terminology=t).num_rows
                for t in (before, after)
            ]
        except ViewDefinitionError as error:
            notes.append(f"{reference}: the view could not run ({error})")
            continue
        out.append(
            UsageImpact(
                "view",
                reference,
                f"{vurl}|{version}" if vurl else str(view.get("name") or reference),
                {"rows": rows[0]},
                {"rows": rows[1]},
            )
        )
    return out


def _cds_usages(repository: Repository, url: str) -> list[UsageImpact]:
    from cmio.cds import active_services

    return [
        UsageImpact(
            "cds",
            f"cds-services/{service.id}",
            f"{service.title} ({service.version})",
            note="names the value set; the CDS logic is not re-run for a value-set change",
        )
        for service in active_services(repository).values()
        if url in orjson.dumps(service.to_json()).decode()
    ]
