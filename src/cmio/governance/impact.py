"""Impact analysis before approval (issue 11, item 2), computed on the live store.

:class:`ImpactAnalyzer` compares a proposed (draft, in-review or approved) version of a
governed artifact with the active version of the same canonical URL
(https://hl7.org/fhir/uv/crmi/artifact-lifecycle.html):

* a ``ValueSet``: codes added and removed (both expansions), the resources that newly
  match / no longer match (:mod:`cmio.governance.impact_valueset`) and the measures,
  rules, views and CDS services using it with their counts before and after
  (:mod:`cmio.governance.impact_usage`);
* a data-quality rule or CDS service ``Library``: alerts that would start or stop
  firing over the last ``days`` days (:mod:`cmio.governance.impact_rules`);
* a ``Measure``: population counts per clinician before and after
  (:mod:`cmio.governance.impact_measure`).

The result is an :class:`~cmio.governance.impact_model.ImpactReport`; see
docs/governance.md, "Impact analysis". The impact modules run the rules, measures, views
and CDS packages, so they sit above them (none of those imports :mod:`cmio.governance`);
the lifecycle modules (``lifecycle``, ``service``, ``guard``) do not import them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from cmio.governance.impact_model import ImpactReport
from cmio.governance.impact_valueset import CLINICAL_TYPES, expand_members, resource_shifts
from cmio.governance.lifecycle import GovernanceError, canonical_of, state_of
from cmio.measures import Period
from cmio.model import Model
from cmio.rules.definition import RuleError, artifact_of_library, version_key
from cmio.store.base import GoneError, Repository, SearchClause, SearchQuery
from cmio.terminology.errors import TerminologyError
from cmio.terminology.service import TerminologyService

__all__ = ["ImpactAnalyzer", "default_period"]


def default_period(today: date) -> Period:
    """The measurement period used by default: the 365 days ending ``today``."""
    return Period(today - timedelta(days=364), today)


class ImpactAnalyzer:
    """Computes impact reports on one store.

    Args:
        repository: the FHIR store (with its search index).
        model: the FHIR model.
        terminology: the terminology service expanding value sets.
        fetcher: resolves CDS prefetch queries (:class:`cmio.cds.prefetch.Fetcher`, e.g.
            the API's in-process router); None: CDS changes are not replayed.
        today: the day the analysis is for (tests pin it).
        limit: at most this many patients and examples per list.
        types: the resource types searched for coded elements.
        include_builtin_measures: value-set changes also run the measures shipped with cmio.
        ingredients: the RxNorm ingredient resolver of CDS replays (default: codings).
    """

    def __init__(
        self,
        repository: Repository,
        model: Model,
        terminology: TerminologyService,
        *,
        fetcher: Any = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        limit: int = 50,
        types: Sequence[str] = CLINICAL_TYPES,
        include_builtin_measures: bool = True,
        ingredients: Any = None,
    ) -> None:
        self.repository = repository
        self.model = model
        self.terminology = terminology
        self.fetcher = fetcher
        self.today = today
        self.limit = limit
        self.types = tuple(types)
        self.include_builtin_measures = include_builtin_measures
        self.ingredients = ingredients

    # -- lookup ----------------------------------------------------------------------

    def read(self, rtype: str, rid: str) -> dict[str, Any]:
        """The stored artifact.

        Raises:
            NotFoundError, GoneError: no such resource.
        """
        stored = self.repository.read(rtype, rid)
        if stored.data is None:
            raise GoneError(f"{rtype}/{rid} is deleted")
        resource: dict[str, Any] = orjson.loads(stored.data)
        return resource

    def active_version(self, proposed: Mapping[str, Any]) -> dict[str, Any] | None:
        """The active version with the canonical URL of ``proposed`` (the highest, when
        several are active), None: there is none."""
        rtype = str(proposed.get("resourceType"))
        url, _ = canonical_of(proposed)
        if url is None:
            return None
        clauses = (SearchClause("url", (url,)),) if rtype != "Basic" else ()
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.repository.search(
                SearchQuery(rtype, clauses, count=500, offset=offset, total=False)
            )
            found += [orjson.loads(s.data) for s in page.resources if s.data is not None]
            if len(page.resources) < 500:
                break
            offset += 500
        active = [
            r
            for r in found
            if canonical_of(r)[0] == url
            and r.get("id") != proposed.get("id")
            and state_of(r) == "active"
        ]
        active.sort(key=lambda r: version_key(canonical_of(r)[1] or "0"))
        return active[-1] if active else None

    # -- analysis --------------------------------------------------------------------

    def summary_for(self, rtype: str, rid: str) -> str | None:
        """The one-line summary of :meth:`analyze` for the lifecycle's Provenance
        (:class:`cmio.governance.Governance` ``impact``); None for an artifact type without
        impact analysis. A failed analysis is summarised as such rather than blocking the
        decision: the approvers see that it failed and why."""
        try:
            return self.analyze(rtype, rid).summary()
        except GovernanceError as error:
            if error.code == "not-supported":
                return None
            return f"Impact analysis failed: {error}"
        except Exception as error:  # the decision still goes through, with the failure noted
            return f"Impact analysis failed: {type(error).__name__}: {error}"

    def analyze(
        self, rtype: str, rid: str, *, days: int = 90, period: Period | None = None
    ) -> ImpactReport:
        """The impact of approving ``rtype/rid`` instead of the active version.

        Args:
            rtype: ``ValueSet``, ``Library`` (data-quality rule or CDS service) or
                ``Measure``.
            rid: the proposed version's id.
            days: the window of a rule change.
            period: the measurement period of measures (default: the 12 months to today).

        Raises:
            GovernanceError: 400 for an artifact type or Library kind without impact
                analysis, or ``days`` < 1; 422 for a value set that cannot be expanded or a
                rule or measure that cannot be read.
            NotFoundError, GoneError: no such artifact.
        """
        if days < 1:
            raise GovernanceError(400, "invalid", "days must be at least 1", "days")
        proposed = self.read(rtype, rid)
        today = self.today()
        period = period or default_period(today)
        current = self.active_version(proposed)
        try:
            if rtype == "ValueSet":
                return self._valueset(proposed, current, period, today)
            if rtype == "Library":
                return self._library(proposed, current, days, today)
            if rtype == "Measure":
                return self._measure(proposed, current, period, today)
        except TerminologyError as error:
            raise GovernanceError(422, "processing", f"Expansion failed: {error}") from None
        except (RuleError, ValueError) as error:  # MeasureDefinitionError, ValueSetError
            raise GovernanceError(422, "processing", str(error)) from None
        raise GovernanceError(
            400,
            "not-supported",
            f"Impact analysis covers ValueSet, rule and CDS Library and Measure, not {rtype}",
        )

    def _header(
        self, proposed: Mapping[str, Any], current: Mapping[str, Any] | None, kind: str
    ) -> dict[str, Any]:
        url, version = canonical_of(proposed)
        label = None
        if current is not None:
            curl, cversion = canonical_of(current)
            label = f"{curl}|{cversion}"
        return {
            "artifact": f"{proposed.get('resourceType')}/{proposed.get('id')}",
            "kind": kind,
            "proposed": f"{url}|{version}",
            "current": label,
            "generated": datetime.now(UTC),
        }

    def _valueset(
        self,
        proposed: dict[str, Any],
        current: dict[str, Any] | None,
        period: Period,
        today: date,
    ) -> ImpactReport:
        from cmio.governance.impact_usage import usages
        from cmio.measures.valuesets import builtin_valuesets

        notes: list[str] = []
        if current is None:
            shipped = [
                v for v in builtin_valuesets().values() if v.get("url") == proposed.get("url")
            ]
            if shipped:
                current = shipped[0]
                notes.append(
                    f"no active version in the store: compared with the value set shipped "
                    f"with cmio's measures ({current.get('version')})"
                )
        old = expand_members(self.terminology, current)
        new = expand_members(self.terminology, proposed)
        shifts, patients = resource_shifts(
            self.repository, self.model, old, new, types=self.types, limit=self.limit
        )
        found, usage_notes = usages(
            self.repository,
            self.model,
            self.terminology,
            proposed,
            current,
            old,
            new,
            period=period,
            include_builtin=self.include_builtin_measures,
        )
        notes += usage_notes
        notes.append(f"measures run for the period {period.start}/{period.end}")
        return ImpactReport(
            **self._header(proposed, current, "valueset"),
            codes_added=tuple(sorted(new - old)),
            codes_removed=tuple(sorted(old - new)),
            resources=tuple(shifts),
            patients={k: len(v) for k, v in patients.items()},
            patient_ids={k: tuple(sorted(v)[: self.limit]) for k, v in patients.items()},
            usages=tuple(found),
            notes=tuple(notes),
        )

    def _library(
        self, proposed: dict[str, Any], current: dict[str, Any] | None, days: int, today: date
    ) -> ImpactReport:
        from cmio.cds import service_from_json
        from cmio.fhirpath import FhirPathEngine
        from cmio.governance.impact_rules import cds_change, rule_change
        from cmio.rules import RuleEngine, rule_of_library
        from cmio.terminology.providers import ServiceTerminology

        if artifact_of_library(proposed, "data-quality") is not None:
            new_rule = rule_of_library(proposed)
            old_rule = rule_of_library(current) if current is not None else None
            assert new_rule is not None
            engine = RuleEngine(FhirPathEngine(self.model), ServiceTerminology(self.terminology))
            shift = rule_change(
                self.repository, engine, old_rule, new_rule, days=days, today=today,
                limit=self.limit,
            )  # fmt: skip
            return ImpactReport(**self._header(proposed, current, "rule"), days=days, alerts=shift)
        data = artifact_of_library(proposed, "cds-service")
        if data is None:
            raise GovernanceError(
                400, "not-supported", "Impact analysis covers data-quality and CDS Libraries"
            )
        new_service = service_from_json(data, version=str(proposed.get("version")))
        old_data = artifact_of_library(current, "cds-service") if current is not None else None
        old_service = (
            service_from_json(old_data, version=str(current.get("version")))
            if old_data is not None and current is not None
            else None
        )
        shift = cds_change(
            self.repository, self.model, old_service, new_service, self.fetcher, days=days,
            today=today, limit=self.limit, ingredients=self.ingredients,
        )  # fmt: skip
        notes = (shift.note,) if shift.note else ()
        return ImpactReport(
            **self._header(proposed, current, "cds"), days=days, alerts=shift, notes=notes
        )

    def _measure(
        self, proposed: dict[str, Any], current: dict[str, Any] | None, period: Period, today: date
    ) -> ImpactReport:
        from cmio.governance.impact_measure import measure_change
        from cmio.governance.impact_usage import valueset_library
        from cmio.measures import measure_from_resource

        new = measure_from_resource(proposed)
        old = measure_from_resource(current) if current is not None else None
        totals, clinicians = measure_change(
            self.repository,
            old,
            new,
            period,
            service=self.terminology,
            valuesets=valueset_library(self.repository),
        )
        return ImpactReport(
            **self._header(proposed, current, "measure"),
            totals=totals,
            clinicians=tuple(clinicians),
            notes=(f"measurement period {period.start}/{period.end}",),
        )
