"""Cost of authorization per request (in process, router level, no HTTP).

Builds a SQLite store with ``--patients`` patients (10 Observations each; one
practitioner is the general practitioner of every 10th patient and an Encounter
participant of every 7th) and times the same requests under four grants, interleaved
round-robin so that machine noise hits all alike:

* ``none``: no grant (in-process caller, the baseline);
* ``admin``: administrator, ``user/*.cruds`` (unrestricted: type checks only);
* ``patient``: ``patient/*.rs`` for one patient (compartment clause, result filter);
* ``clinician``: clinician with treatment relationships (three relationship searches per
  request, the related patients ANDed into searches, results filtered).

Then it times the clinician's search clause itself (``_compartment`` with every
patient of the panel, OR-ed) compiled as one ``system = ? AND value IN (...)`` (the
compiler now) and as one ``(system = ? AND value = ?)`` term per value (before),
interleaved.

    python bench/authorization.py [--patients 1000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cmio.api.app import build_env
from cmio.api.context import RequestContext
from cmio.api.env import Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.security.grant import AccessGrant


def _resources(patients: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"resourceType": "Practitioner", "id": "doc"}]
    for i in range(patients):
        patient: dict[str, Any] = {"resourceType": "Patient", "id": f"p{i}"}
        if i % 10 == 0:
            patient["generalPractitioner"] = [{"reference": "Practitioner/doc"}]
        out.append(patient)
        if i % 7 == 0:
            out.append(
                {
                    "resourceType": "Encounter",
                    "id": f"e{i}",
                    "status": "finished",
                    "class": {"code": "AMB"},
                    "subject": {"reference": f"Patient/p{i}"},
                    "participant": [{"individual": {"reference": "Practitioner/doc"}}],
                }
            )
        for j in range(10):
            out.append(
                {
                    "resourceType": "Observation",
                    "id": f"o{i}-{j}",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": f"{j}"}]},
                    "subject": {"reference": f"Patient/p{i}"},
                }
            )
    return out


GRANTS: dict[str, AccessGrant | None] = {
    "none": None,
    "admin": AccessGrant(
        "admin", "user", frozenset({"user/*.cruds"}), roles=frozenset({"administrator"})
    ),
    "patient": AccessGrant("pat", "user", frozenset({"patient/*.rs"}), patient="p0"),
    "clinician": AccessGrant(
        "doc",
        "user",
        frozenset({"user/*.cruds"}),
        roles=frozenset({"clinician"}),
        fhir_user="Practitioner/doc",
    ),
}
SKIP = {("read Observation (p7)", "patient")}  # another patient's: hidden (404)
REQUESTS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "read Observation": ("Observation/o0-3", []),  # p0: doc is the general practitioner
    "read Observation (p7)": ("Observation/o7-3", []),  # p7: doc saw them in an Encounter
    "search own Observations": ("Observation", [("patient", "Patient/p0"), ("_count", "10")]),
    "search Observations (50)": ("Observation", [("code", "http://loinc.org|3"), ("_count", "50")]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = build_env(
            f"sqlite:///{Path(tmp) / 'cmio.db'}", Settings(validation="off", terminology_db=None)
        )
        with env.repository.transaction() as tx:
            for resource in _resources(args.patients):
                tx.create(resource, id=resource["id"])
        router = FhirRouter(env)
        times: dict[tuple[str, str], list[float]] = {}
        for round_ in range(args.rounds + 5):
            for label, (path, query) in REQUESTS.items():
                for name, grant in GRANTS.items():
                    if (label, name) in SKIP:
                        continue
                    request = FhirRequest(
                        "GET", path, list(query), {}, context=RequestContext(grant=grant)
                    )
                    start = time.perf_counter()
                    response = router.handle(request)
                    elapsed = time.perf_counter() - start
                    assert response.status == 200, (name, label, response.body[:200])
                    if round_ >= 5:  # warm-up rounds are not counted
                        times.setdefault((label, name), []).append(elapsed)
        in_list = _token_shapes(env, max(5, args.rounds // 10))
        env.repository.close()
    print(f"patients={args.patients} rounds={args.rounds}; median ms (ratio to no grant)")
    print("| request | " + " | ".join(GRANTS) + " |")
    print("|---|" + "---:|" * len(GRANTS))
    for label in REQUESTS:
        base = statistics.median(times[(label, "none")])
        cells = []
        for name in GRANTS:
            if (label, name) in SKIP:
                cells.append("-")
                continue
            median = statistics.median(times[(label, name)])
            cells.append(f"{median * 1000:.2f} ({median / base:.2f}x)")
        print(f"| {label} | " + " | ".join(cells) + " |")
    new, old = (statistics.median(in_list[k]) * 1000 for k in ("in", "or"))
    print(f"compartment clause of the panel: IN {new:.1f} ms, OR-ed pairs {old:.1f} ms")


def _token_shapes(env: Any, rounds: int) -> dict[str, list[float]]:
    """Search time of the panel's compartment clause in both SQL shapes."""
    from cmio.search.sql import SqlBuilder
    from cmio.security.policy import Policy
    from cmio.store.base import SearchClause, SearchQuery

    grant = GRANTS["clinician"]
    assert grant is not None
    panel = sorted(Policy(grant, env.repository, env.model).related_patients())
    clause = SearchClause("_compartment", tuple(f"Patient|{p}" for p in panel))
    query = SearchQuery("Observation", (clause,), 50, 0, (), True)
    current = SqlBuilder._token_values
    times: dict[str, list[float]] = {"in": [], "or": []}
    try:
        for _ in range(rounds):
            for shape in ("in", "or"):
                if shape == "in":
                    SqlBuilder._token_values = current  # type: ignore[method-assign]
                else:
                    SqlBuilder._token_values = lambda self, values: [  # type: ignore[method-assign]
                        self._token(v) for v in values
                    ]
                start = time.perf_counter()
                env.repository.search(query)
                times[shape].append(time.perf_counter() - start)
    finally:
        SqlBuilder._token_values = current  # type: ignore[method-assign]
    return times


if __name__ == "__main__":
    main()
