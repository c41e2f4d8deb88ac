"""Deterministic Observations and Patients for the SQL on FHIR view benchmark.

Writes a Bulk Data style folder (https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format):
``ndjson/Patient.ndjson`` and ``ndjson/Observation.ndjson``, and the same resources as
Parquet in two layouts: ``parquet/<Type>.parquet`` with one ``resource`` column of
JSON text (what any exporter can write without a schema) and
``parquet-typed/<Type>.parquet`` in cmio's typed layout (nested typed columns per
the R4 model beside the JSON text: ``cmio.views.ndjson_to_parquet(layout="typed")``). Every Observation has two codings (LOINC and a local
code), a valueQuantity and an effectiveDateTime. The same seed gives the same bytes.

Usage::

    python bench/views_gen.py OUT_DIR [--observations 1000000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from cmio.views import ndjson_to_parquet

__all__ = ["generate", "observations", "patients"]

OBS_PER_PATIENT = 20
VITALS = (
    ("8302-2", "Body Height", "cm", 150.0, 200.0),
    ("29463-7", "Body Weight", "kg", 45.0, 120.0),
    ("8867-4", "Heart rate", "/min", 50.0, 110.0),
    ("9279-1", "Respiratory rate", "/min", 11.0, 22.0),
    ("2339-0", "Glucose", "mg/dL", 65.0, 180.0),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 140.0, 280.0),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 11.0, 17.5),
)
GIVEN = ("Alva", "Brent", "Chen", "Dana", "Elif", "Farah", "Goran", "Hana", "Ines", "Jamal")
FAMILY = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Kowalski")
CITIES = (("Springfield", "IL"), ("Madison", "WI"), ("Dayton", "OH"), ("Fresno", "CA"))


def patients(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """``count`` Patients ``pat-<n>`` with name, gender, birthDate, address and telecom."""
    rng = random.Random(seed)
    for n in range(count):
        city, state = rng.choice(CITIES)
        yield {
            "resourceType": "Patient",
            "id": f"pat-{n}",
            "meta": {"lastUpdated": "2026-01-01T00:00:00Z"},
            "identifier": [{"system": "https://example.org/mrn", "value": f"MRN{n:08d}"}],
            "active": True,
            "name": [
                {
                    "use": "official",
                    "family": rng.choice(FAMILY),
                    "given": [rng.choice(GIVEN), rng.choice(GIVEN)],
                }
            ],
            "telecom": [{"system": "phone", "value": f"555-{n % 10000:04d}", "use": "home"}],
            "gender": rng.choice(("female", "male")),
            "birthDate": f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "address": [
                {
                    "use": "home",
                    "line": [f"{rng.randint(1, 999)} Main St"],
                    "city": city,
                    "state": state,
                    "postalCode": f"{rng.randint(10000, 99999)}",
                }
            ],
        }


def observations(count: int, n_patients: int, seed: int) -> Iterator[dict[str, Any]]:
    """``count`` vital-sign/lab Observations ``obs-<n>`` spread over ``n_patients``."""
    rng = random.Random(seed + 1)
    for n in range(count):
        code, display, unit, low, high = VITALS[n % len(VITALS)]
        day = rng.randint(1, 28)
        yield {
            "resourceType": "Observation",
            "id": f"obs-{n}",
            "meta": {"lastUpdated": "2026-01-01T00:00:00Z"},
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs" if n % 7 < 4 else "laboratory",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": code, "display": display},
                    {"system": "https://example.org/local-codes", "code": f"L{code}"},
                ],
                "text": display,
            },
            "subject": {"reference": f"Patient/pat-{n % n_patients}"},
            "effectiveDateTime": f"2025-{rng.randint(1, 12):02d}-{day:02d}T{rng.randint(0, 23):02d}:00:00Z",
            "valueQuantity": {
                "value": round(rng.uniform(low, high), 1),
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
        }


def _write_ndjson(path: Path, resources: Iterator[dict[str, Any]]) -> int:
    n = 0
    with path.open("wb") as out:
        buf: list[bytes] = []
        for resource in resources:
            buf.append(orjson.dumps(resource))
            n += 1
            if len(buf) >= 10_000:
                out.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            out.write(b"\n".join(buf) + b"\n")
    return n


def _write_json_parquet(ndjson: Path, out: Path) -> None:
    """One row per resource: ``id`` and ``resource`` (JSON text), written in row groups."""
    schema = pa.schema([("id", pa.string()), ("resource", pa.string())])
    with pq.ParquetWriter(out, schema, compression="zstd") as writer, ndjson.open("rb") as src:
        ids: list[str] = []
        texts: list[str] = []
        for line in src:
            text = line.rstrip(b"\n").decode()
            if not text:
                continue
            texts.append(text)
            ids.append(orjson.loads(text)["id"])
            if len(texts) >= 100_000:
                writer.write_table(pa.table({"id": ids, "resource": texts}, schema=schema))
                ids, texts = [], []
        if texts:
            writer.write_table(pa.table({"id": ids, "resource": texts}, schema=schema))


def generate(out: Path, n_observations: int, seed: int = 7) -> dict[str, int]:
    """Write the data set under ``out``; return the resource counts by type."""
    n_patients = max(1, n_observations // OBS_PER_PATIENT)
    for sub in ("ndjson", "parquet", "parquet-typed"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    counts = {
        "Patient": _write_ndjson(out / "ndjson" / "Patient.ndjson", patients(n_patients, seed)),
        "Observation": _write_ndjson(
            out / "ndjson" / "Observation.ndjson", observations(n_observations, n_patients, seed)
        ),
    }
    for rtype in counts:
        src = out / "ndjson" / f"{rtype}.ndjson"
        _write_json_parquet(src, out / "parquet" / f"{rtype}.parquet")
    ndjson_to_parquet(out / "ndjson", out / "parquet-typed", layout="typed")
    (out / "counts.json").write_bytes(orjson.dumps(counts))
    return counts


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    counts = generate(args.out, args.observations, args.seed)
    print(f"{counts} in {time.perf_counter() - start:.1f} s under {args.out}")


if __name__ == "__main__":
    main()
