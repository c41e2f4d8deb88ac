"""Measure definitions: a compact YAML that compiles to a FHIR Measure, its ViewDefinitions
and its population SQL; also read back from such a Measure resource.

YAML shape (every key but ``populations`` optional)::

    id: CMS122                       # Measure.id and the file's key
    url: https://cmio.dev/fhir/Measure/CMS122
    identifier: CMS122v14            # the CMS eCQM identifier
    version: 14.0.000
    title: "Diabetes: Glycemic Status Assessment Greater Than 9%"
    scoring: proportion              # proportion | ratio | continuous-variable
    improvement: decrease            # increase (default) | decrease
    aggregate: average               # continuous-variable: average|sum|median|min|max|count
    views: [mp_patient, mp_observation]
    stratifiers: [clinician, sex]    # names from the common library
    define:                          # named SQL (CTEs) of this measure
      a1c: SELECT ...
    populations:                     # population code -> SQL returning patient_id
      initial-population: SELECT ...
      numerator: SELECT ...
    observation: SELECT patient_id, value FROM ...   # continuous-variable
    gap: {missing: "...", since: "SELECT patient_id, since FROM ..."}

Populations follow https://hl7.org/fhir/R4/measure-definitions.html#Measure.group.population.code
(codes of http://terminology.hl7.org/CodeSystem/measure-population); SQL conventions
are in :mod:`cmio.measures.sql`. In the Measure resource, each population's
``criteria`` is an ``Expression`` of language ``application/sql`` carrying its SQL
(https://hl7.org/fhir/R4/metadatatypes.html#Expression); the defines, views and
gap travel in extensions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "POPULATION_CODES",
    "SCORING",
    "Gap",
    "MeasureDefinition",
    "MeasureDefinitionError",
    "builtin_measures",
    "common_library",
    "load_measure",
    "measure_from_resource",
    "measure_from_yaml",
]

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_LOADER)


POPULATION_CODES: tuple[str, ...] = (
    "initial-population",
    "denominator",
    "denominator-exclusion",
    "numerator",
    "numerator-exclusion",
    "denominator-exception",
    "measure-population",
    "measure-population-exclusion",
)
"""Population codes (http://terminology.hl7.org/CodeSystem/measure-population), in order."""
SCORING = ("proportion", "ratio", "continuous-variable")
AGGREGATES = ("average", "sum", "median", "min", "max", "count")
POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
SCORING_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-scoring"
EXT = "https://cmio.dev/fhir/StructureDefinition/measure-"
SQL_LANGUAGE = "application/sql"
_REQUIRED = {
    "proportion": ("initial-population", "denominator", "numerator"),
    "ratio": ("initial-population", "denominator", "numerator"),
    "continuous-variable": ("initial-population", "measure-population"),
}


class MeasureDefinitionError(ValueError):
    """An invalid measure definition; ``element`` names the offending key."""

    def __init__(self, message: str, element: str = "Measure") -> None:
        super().__init__(f"{element}: {message}")
        self.element = element


@dataclass(frozen=True, slots=True)
class Gap:
    """What a patient with a care gap is missing.

    Attributes:
        missing: the text of what is missing (``DetectedIssue.detail``).
        since: SQL returning ``patient_id, since`` (a date: the last event that counted,
            or NULL when there never was one).
    """

    missing: str
    since: str | None = None


@dataclass(frozen=True, slots=True)
class MeasureDefinition:
    """One measure (see the module docstring for the YAML keys)."""

    id: str
    populations: Mapping[str, str]
    scoring: str = "proportion"
    url: str = ""
    identifier: str = ""
    version: str = ""
    title: str = ""
    description: str = ""
    improvement: str = "increase"
    aggregate: str = "average"
    views: tuple[str, ...] = ()
    stratifiers: tuple[str, ...] = ()
    define: Mapping[str, str] = field(default_factory=dict)
    observation: str | None = None
    gap: Gap | None = None

    @property
    def canonical(self) -> str:
        """The Measure's canonical URL."""
        return self.url or f"https://cmio.dev/fhir/Measure/{self.id}"

    def to_resource(self) -> dict[str, Any]:
        """The FHIR Measure resource (https://hl7.org/fhir/R4/measure.html)."""
        populations: list[dict[str, Any]] = [
            {
                "id": code,
                "code": {"coding": [{"system": POPULATION_SYSTEM, "code": code}]},
                "criteria": {"language": SQL_LANGUAGE, "expression": sql},
            }
            for code, sql in self.populations.items()
        ]
        if self.observation is not None:
            populations.append(
                {
                    "id": "measure-observation",
                    "code": {
                        "coding": [{"system": POPULATION_SYSTEM, "code": "measure-observation"}]
                    },
                    "criteria": {"language": SQL_LANGUAGE, "expression": self.observation},
                    "extension": [{"url": f"{EXT}aggregate", "valueCode": self.aggregate}],
                }
            )
        extension: list[dict[str, Any]] = [
            {"url": f"{EXT}view", "valueString": name} for name in self.views
        ]
        extension += [
            {
                "url": f"{EXT}define",
                "extension": [
                    {"url": "name", "valueString": name},
                    {"url": "sql", "valueString": sql},
                ],
            }
            for name, sql in self.define.items()
        ]
        if self.gap is not None:
            gap: list[dict[str, Any]] = [{"url": "missing", "valueString": self.gap.missing}]
            if self.gap.since is not None:
                gap.append({"url": "since", "valueString": self.gap.since})
            extension.append({"url": f"{EXT}gap", "extension": gap})
        resource: dict[str, Any] = {
            "resourceType": "Measure",
            "id": self.id,
            "url": self.canonical,
            "status": "active",
            "name": self.id,
            "scoring": {"coding": [{"system": SCORING_SYSTEM, "code": self.scoring}]},
            "improvementNotation": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                        "code": self.improvement,
                    }
                ]
            },
            "group": [
                {
                    "population": populations,
                    "stratifier": [
                        {"id": name, "code": {"text": name}, "criteria": _strat_expr(name)}
                        for name in self.stratifiers
                    ],
                }
            ],
            "extension": extension,
        }
        for key in ("version", "title", "description"):
            if getattr(self, key):
                resource[key] = getattr(self, key)
        if self.identifier:
            resource["identifier"] = [
                {"system": "https://cmio.dev/fhir/sid/ecqm", "value": self.identifier}
            ]
        return resource


def _strat_expr(name: str) -> dict[str, str]:
    return {"language": "text/x-cmio-stratifier", "expression": name}


def _text(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str | int | float):
        raise MeasureDefinitionError("must be a string", key)
    return str(value)


def _names(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MeasureDefinitionError("must be a list of names", key)
    return tuple(value)


def _sql_map(data: Mapping[str, Any], key: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise MeasureDefinitionError("must map names to SQL", key)
    out = {}
    for name, sql in value.items():
        if not isinstance(sql, str) or not sql.strip():
            raise MeasureDefinitionError("must be SQL text", f"{key}.{name}")
        out[str(name)] = sql
    return out


def measure_from_yaml(data: Mapping[str, Any]) -> MeasureDefinition:
    """A definition from parsed YAML (see the module docstring).

    Raises:
        MeasureDefinitionError: a missing or invalid key (named).
    """
    if not isinstance(data, Mapping):
        raise MeasureDefinitionError("a measure is a mapping")
    identifier = _text(data, "id")
    if not identifier:
        raise MeasureDefinitionError("required", "id")
    scoring = _text(data, "scoring", "proportion")
    if scoring not in SCORING:
        raise MeasureDefinitionError(f"{scoring!r} is not one of {', '.join(SCORING)}", "scoring")
    populations = _sql_map(data, "populations")
    for code in populations:
        if code not in POPULATION_CODES:
            raise MeasureDefinitionError(f"unknown population code {code!r}", "populations")
    for code in _REQUIRED[scoring]:
        if code not in populations:
            raise MeasureDefinitionError(f"{scoring} needs {code}", f"populations.{code}")
    improvement = _text(data, "improvement", "increase")
    if improvement not in ("increase", "decrease"):
        raise MeasureDefinitionError("increase or decrease", "improvement")
    aggregate = _text(data, "aggregate", "average")
    if aggregate not in AGGREGATES:
        raise MeasureDefinitionError(f"one of {', '.join(AGGREGATES)}", "aggregate")
    observation = data.get("observation")
    if scoring == "continuous-variable" and not isinstance(observation, str):
        raise MeasureDefinitionError("continuous-variable needs SQL", "observation")
    gap = None
    raw_gap = data.get("gap")
    if raw_gap is not None:
        if not isinstance(raw_gap, Mapping) or not isinstance(raw_gap.get("missing"), str):
            raise MeasureDefinitionError("needs missing (text) and since (SQL)", "gap")
        since = raw_gap.get("since")
        gap = Gap(str(raw_gap["missing"]), since if isinstance(since, str) else None)
    return MeasureDefinition(
        id=identifier,
        populations=populations,
        scoring=scoring,
        url=_text(data, "url"),
        identifier=_text(data, "identifier"),
        version=_text(data, "version"),
        title=_text(data, "title"),
        description=_text(data, "description"),
        improvement=improvement,
        aggregate=aggregate,
        views=_names(data, "views"),
        stratifiers=_names(data, "stratifiers"),
        define=_sql_map(data, "define"),
        observation=observation if isinstance(observation, str) else None,
        gap=gap,
    )


def _coded(value: Any) -> str:
    for coding in (value or {}).get("coding", []):
        if isinstance(coding.get("code"), str):
            return str(coding["code"])
    return ""


def measure_from_resource(resource: Mapping[str, Any]) -> MeasureDefinition:
    """A definition from a Measure resource whose populations carry SQL criteria.

    Raises:
        MeasureDefinitionError: not such a Measure (the element is named).
    """
    if resource.get("resourceType") != "Measure":
        raise MeasureDefinitionError("not a Measure resource", "Measure.resourceType")
    groups = resource.get("group") or []
    if len(groups) != 1:
        raise MeasureDefinitionError("exactly one group is supported", "Measure.group")
    data: dict[str, Any] = {
        "id": resource.get("id") or resource.get("name"),
        "url": resource.get("url"),
        "version": resource.get("version"),
        "title": resource.get("title"),
        "description": resource.get("description"),
        "scoring": _coded(resource.get("scoring")) or "proportion",
        "improvement": _coded(resource.get("improvementNotation")) or "increase",
        "populations": {},
        "views": [],
        "define": {},
        "stratifiers": [],
    }
    for ident in resource.get("identifier", []):
        data["identifier"] = ident.get("value")
    for index, population in enumerate(groups[0].get("population", [])):
        where = f"Measure.group[0].population[{index}]"
        criteria = population.get("criteria") or {}
        if criteria.get("language") != SQL_LANGUAGE:
            raise MeasureDefinitionError(f"criteria must be {SQL_LANGUAGE}", f"{where}.criteria")
        code = _coded(population.get("code"))
        if code == "measure-observation":
            data["observation"] = criteria.get("expression")
            for ext in population.get("extension", []):
                if ext.get("url") == f"{EXT}aggregate":
                    data["aggregate"] = ext.get("valueCode")
        else:
            data["populations"][code] = criteria.get("expression")
    for stratifier in groups[0].get("stratifier", []):
        data["stratifiers"].append((stratifier.get("criteria") or {}).get("expression"))
    for ext in resource.get("extension", []):
        url = ext.get("url")
        parts = {e.get("url"): e.get("valueString") for e in ext.get("extension", [])}
        if url == f"{EXT}view":
            data["views"].append(ext.get("valueString"))
        elif url == f"{EXT}define":
            data["define"][parts.get("name")] = parts.get("sql")
        elif url == f"{EXT}gap":
            data["gap"] = parts
    return measure_from_yaml(data)


def load_measure(path: Path | str) -> MeasureDefinition:
    """A definition from a YAML file or a Measure resource JSON file.

    Raises:
        MeasureDefinitionError: unreadable or invalid.
    """
    path = Path(path)
    try:
        data = _yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MeasureDefinitionError(f"cannot read {path}: {exc}") from exc
    if isinstance(data, Mapping) and data.get("resourceType") == "Measure":
        return measure_from_resource(data)
    return measure_from_yaml(data)


def common_library() -> dict[str, Any]:
    """The shared defines and stratifiers (``definitions/common.yaml``)."""
    text = (
        package_files.files("cmio.measures")
        .joinpath("definitions", "common.yaml")
        .read_text(encoding="utf-8")
    )
    data = _yaml(text)
    assert isinstance(data, dict)
    return data


def builtin_measures() -> dict[str, MeasureDefinition]:
    """The measures shipped in ``cmio/measures/definitions/`` by id (CMS122, CMS165, ...)."""
    folder = package_files.files("cmio.measures").joinpath("definitions")
    out: dict[str, MeasureDefinition] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and entry.name != "common.yaml":
            measure = measure_from_yaml(_yaml(entry.read_text(encoding="utf-8")))
            out[measure.id] = measure
    return out
