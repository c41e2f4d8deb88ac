"""Oversight measures: quality eCQMs on a small declarative framework, plus EHR use, cost
and standards adherence.

The framework (https://hl7.org/fhir/R4/measure.html, the CQF measure IG's population
rules): a measure is a compact YAML (:mod:`cmio.measures.definition`) compiling to a FHIR
``Measure``, the ViewDefinitions it reads (:mod:`cmio.measures.views`) and population
SQL (:mod:`cmio.measures.sql`); value sets are FHIR ValueSets expanded by the
terminology service (:mod:`cmio.measures.valuesets`); :mod:`cmio.measures.runner`
evaluates on DuckDB, PostgreSQL or Spark (:mod:`cmio.measures.engines`) and
:mod:`cmio.measures.report` / :mod:`cmio.measures.caregaps` render MeasureReports and
care gaps. Contract for measure modules plugging in: a :class:`MeasureDefinition`
(YAML or Measure resource) evaluated by :func:`evaluate_measures`::

    from cmio.measures import Period, builtin_measures, evaluate_measures

    results = evaluate_measures(builtin_measures().values(), Period.parse("2026-01-01/2026-12-31"),
                                "export/")            # a Bulk NDJSON folder, a store or resources
    results[0].members, results[0].strata              # pyarrow tables

The five eCQMs (CMS122, CMS125, CMS130, CMS165, CMS2) are in ``definitions/``; see
``docs/measures.md``.
"""

from cmio.measures.definition import (
    MeasureDefinition,
    MeasureDefinitionError,
    builtin_measures,
    load_measure,
    measure_from_resource,
    measure_from_yaml,
)
from cmio.measures.runner import MeasureResult, MeasureRunner, evaluate_measures
from cmio.measures.sql import Period

__all__ = [
    "MeasureDefinition",
    "MeasureDefinitionError",
    "MeasureResult",
    "MeasureRunner",
    "Period",
    "builtin_measures",
    "evaluate_measures",
    "load_measure",
    "measure_from_resource",
    "measure_from_yaml",
]
