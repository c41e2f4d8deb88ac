"""Every R4 standard SearchParameter expression compiles, checks and evaluates.

The search indexer evaluates these expressions for every stored resource
(https://hl7.org/fhir/R4/searchparameter-registry.html); here each one is
parsed, compiled, statically checked in strict mode against each of its base
types, and evaluated on real Synthea resources of those types.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from cmio.fhirpath import FhirPathEngine
from cmio.model import Model, SearchParamDef, load_model
from tests.fhirpath.conftest import SHARED

BUNDLES = SHARED / "data" / "synthea-r4" / "bundles"
_PER_TYPE = 4


def _params() -> list[Any]:
    model = load_model()
    return [
        pytest.param(param, id=f"{param.code}:{param.url.rsplit('/', 1)[-1]}")
        for param in model.search_params
        if param.expression is not None
    ]


@pytest.fixture(scope="module")
def samples() -> dict[str, list[dict[str, Any]]]:
    """A few Synthea resources of every type the bundles hold."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(BUNDLES.glob("*.json"))[:12]:
        bundle = json.loads(path.read_bytes())
        for entry in bundle["entry"]:
            resource = entry["resource"]
            kept = found[resource["resourceType"]]
            if len(kept) < _PER_TYPE:
                kept.append(resource)
    return found


def test_all_expressions_are_covered(model: Model) -> None:
    with_expression = [p for p in model.search_params if p.expression is not None]
    assert len(with_expression) >= 1370
    assert len(model.search_params) == 1375


@pytest.mark.parametrize("param", _params())
def test_search_parameter_expression(
    engine: FhirPathEngine, samples: dict[str, list[dict[str, Any]]], param: SearchParamDef
) -> None:
    assert param.expression is not None
    compiled = engine.compile(param.expression)
    for base in param.base:
        branch = param.expression_for(base)
        assert branch is not None
        engine.check(branch, base, strict=True)
        for resource in samples.get(base, []):
            result = compiled.evaluate(resource)
            # the plain-value fast path agrees with general evaluation
            assert result == [typed.value for typed in compiled.evaluate_typed(resource)]


def test_patient_parameters_extract_values(
    engine: FhirPathEngine, model: Model, samples: dict[str, list[dict[str, Any]]]
) -> None:
    patient = samples["Patient"][0]
    params = model.search_params_for("Patient")
    for code in ("birthdate", "gender", "family", "given", "identifier", "address-city", "_id"):
        branch = params[code].expression_for("Patient")
        assert branch is not None
        assert engine.evaluate(patient, branch), code
