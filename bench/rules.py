"""Cost of the data-quality rules: creates/s without and with the 7 starter rules active,
side by side, and batch evaluation throughput (resources/s).

Drives the FHIR router in process (no sockets, validation ``off`` so the rules' own cost
shows) on a fresh SQLite store per run; runs alternate without/with so that machine
noise hits both. Medians and the with/without ratio are printed.

    python bench/rules.py [--creates 1500] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.fhirpath import FhirPathEngine
from cmio.model import Model, load_model
from cmio.rules import RuleEngine, active_rules, install_starter_rules, run_rules


def _resource(n: int) -> dict[str, Any]:
    lab = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}  # fmt: skip
    if n % 3 == 0:
        return {"resourceType": "Patient", "identifier": [{"value": str(n)}], "gender": "female"}
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [lab]}],
        "code": {
            "coding": [{"system": "http://loinc.org" if n % 2 else "urn:l", "code": "4548-4"}]
        },
        "subject": {"reference": "Patient/x"},
        "valueQuantity": {
            "value": 7.0,
            "unit": "%",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        },
    }


def _run(model: Model, folder: Path, creates: int, with_rules: bool) -> tuple[float, float]:
    env = build_env(f"sqlite:///{folder}/cmio.db", Settings(validation="off", terminology_db=None), model)  # fmt: skip
    if with_rules:
        install_starter_rules(env.repository)
    router = FhirRouter(env)
    bodies = [json.dumps(_resource(n)).encode() for n in range(creates)]
    start = time.perf_counter()
    for body in bodies:
        rtype = json.loads(body)["resourceType"]
        response = router.handle(
            FhirRequest("POST", rtype, headers={"content-type": "application/fhir+json"}, body=body)
        )
        assert response.status == 201, response.body[:200]
    writes = creates / (time.perf_counter() - start)
    batch = 0.0
    if with_rules:
        engine = RuleEngine(FhirPathEngine(model))
        start = time.perf_counter()
        table = run_rules(env.repository, engine, active_rules(env.repository))
        batch = creates / (time.perf_counter() - start)
        assert table.num_rows > 0
    if env.terminology is not None:
        env.terminology.close()
    env.repository.close()
    return writes, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--creates", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    model = load_model()
    without, with_, batch = [], [], []
    for _ in range(args.runs):
        for flag in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                writes, rate = _run(model, Path(tmp), args.creates, flag)
            (with_ if flag else without).append(writes)
            if flag:
                batch.append(rate)
    a, b = statistics.median(without), statistics.median(with_)
    print(f"creates/s without rules: {a:,.0f}  runs {[round(x) for x in without]}")
    print(f"creates/s with 7 rules:  {b:,.0f}  runs {[round(x) for x in with_]}")
    print(f"ratio with/without: {b / a:.2f}")
    print(f"batch evaluation: {statistics.median(batch):,.0f} resources/s")


if __name__ == "__main__":
    main()
