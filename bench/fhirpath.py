"""Benchmark: cmio.fhirpath against fhirpathpy on Synthea resources.

Twenty realistic expressions (search-parameter paths, where() filters,
exists(), date comparisons, choice types, extension lookups) are each evaluated
on every resource of their type among the first 10,000 resources of the
Synthea bundles, by both engines in the same run. Each engine compiles each
expression once; the figure per expression is the median over ``--repeat``
passes of the time for one pass, reported with the number of evaluations and
the ratio. The result counts of both engines are compared first.

fhirpathpy is not in the ``dev`` extra: every fhirpathpy release needs
``antlr4-python3-runtime>=4.10``, while ``google-fhir-core`` (a dependency of
``google-fhir-r4``) pins ``~=4.9.3``, so pip cannot install both. Install it
beside cmio with ``pip install --no-deps fhirpathpy 'antlr4-python3-runtime>=4.10'
python-dateutil`` (cmio never imports google-fhir-core, only reads the data
package shipped in google-fhir-r4).

Usage::

    python bench/fhirpath.py [--bundles DIR] [--resources 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cmio.fhirpath import FhirPathEngine
from cmio.model import load_model

EXPRESSIONS: list[tuple[str, str]] = [
    ("Patient", "Patient.name.given"),
    ("Patient", "Patient.name.where(use = 'official').family"),
    ("Patient", "Patient.telecom.where(system = 'phone').value"),
    ("Patient", "Patient.birthDate < @2000-01-01"),
    ("Patient", "Patient.address.city"),
    ("Patient", "Patient.identifier.where(type.coding.code = 'MR').value"),
    (
        "Patient",
        "Patient.extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-race')"
        ".extension('ombCategory').value.code",
    ),
    ("Observation", "Observation.code.coding.where(system = 'http://loinc.org').code"),
    ("Observation", "Observation.value.ofType(Quantity).value"),
    ("Observation", "(Observation.value as Quantity).unit"),
    ("Observation", "Observation.subject.reference"),
    ("Observation", "Observation.effective.ofType(dateTime) > @2015-01-01"),
    ("Observation", "Observation.category.coding.exists(code = 'vital-signs')"),
    ("Observation", "Observation.component.code.coding.code"),
    ("Encounter", "Encounter.period.start >= @2010-01-01T00:00:00Z"),
    ("Encounter", "Encounter.type.coding.display"),
    ("Condition", "Condition.code.coding.code | Condition.clinicalStatus.coding.code"),
    ("Condition", "Condition.onset.ofType(dateTime).exists()"),
    ("MedicationRequest", "MedicationRequest.medication.ofType(CodeableConcept).coding.code"),
    ("Claim", "Claim.item.where(sequence > 1).productOrService.coding.code"),
]


def load_resources(bundles: Path, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` resources of the bundles, in file order."""
    resources: list[dict[str, Any]] = []
    for path in sorted(bundles.glob("*.json")):
        for entry in json.loads(path.read_bytes())["entry"]:
            resources.append(entry["resource"])
            if len(resources) == limit:
                return resources
    return resources


def timed(runs: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median seconds of ``repeat`` calls of each run, the runs interleaved so that
    both engines see the same machine load."""
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for run, times in zip(runs, samples, strict=True):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    return [statistics.median(times) for times in samples]


def main() -> int:
    default = (
        Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synthea-r4" / "bundles"
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=default)
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    try:
        import fhirpathpy
        from fhirpathpy.models import models
    except ImportError:
        print("fhirpathpy is not installed; see the module docstring.", file=sys.stderr)
        return 2

    resources = load_resources(args.bundles, args.resources)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    print(f"{len(resources)} resources: {dict(Counter(r['resourceType'] for r in resources))}")
    engine = FhirPathEngine(load_model())
    print(f"{'expression':<72} {'evals':>6} {'cmio ms':>9} {'fhirpathpy ms':>14} {'ratio':>7}")
    total_cmio = total_other = 0.0
    ratios = []
    for type_name, expression in EXPRESSIONS:
        targets = by_type.get(type_name, [])
        ours = engine.compile(expression)
        theirs = fhirpathpy.compile(expression, models["r4"])
        for resource in targets[:200]:
            a, b = ours.evaluate(resource), theirs(resource)
            if len(a) != len(b):
                print(f"  result counts differ on {resource['id']}: {a!r} vs {b!r}")
                break
        cmio_s, other_s = timed(
            [
                lambda o=ours, t=targets: [o.evaluate(r) for r in t],
                lambda f=theirs, t=targets: [f(r) for r in t],
            ],
            args.repeat,
        )
        total_cmio += cmio_s
        total_other += other_s
        ratio = other_s / cmio_s
        ratios.append(ratio)
        label = expression if len(expression) <= 72 else expression[:69] + "..."
        print(
            f"{label:<72} {len(targets):>6} {cmio_s * 1e3:>9.1f} {other_s * 1e3:>14.1f} {ratio:>6.1f}x"
        )
    print(
        f"{'total (sum of medians)':<72} {'':>6} {total_cmio * 1e3:>9.1f} {total_other * 1e3:>14.1f}"
        f" {total_other / total_cmio:>6.1f}x"
    )
    print(
        f"median ratio over expressions: {statistics.median(ratios):.1f}x, min {min(ratios):.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
