"""Input tables of the oversight families (EHR use, cost, data quality) at 100,000
patients, prepared once for ``bench/oversight_tables.py``.

From a ``cmio synth`` folder (e.g. the 20,000-patient ``bench/out/oversight-20k``):

1. the last simulated day (``--day``, default 2025-12-31) is split off: the resources
   dated that day (audit events, appointments, slots, orders, provenance, encounters,
   claims, EOBs, observations, conditions ... by their first date element) go to
   ``OUT/src/day.json``, everything else to ``OUT/src/base`` (filtered NDJSON copies,
   undated types linked);
2. the input views of the three families (:func:`read_views`, :func:`read_cost`,
   :func:`read_adherence`) are run over ``base`` and over the day's resources, into
   Parquet files ``OUT/base1/<family>/<table>.parquet`` and ``OUT/day1/...``;
3. both are replicated ``--copies`` times with fresh ids (``r<k>-`` prefixes on every
   patient, resource, clinician and order id; departments and organizations shared;
   birth dates of the copies shifted by ``37 k`` days so the copies are not each other's
   duplicates) into ``OUT/base/...`` and ``OUT/day/...``: a system of ``copies`` times
   the patients and clinicians with the same care.

Usage::

    python bench/oversight_prepare.py bench/out/oversight-20k /tmp/m7 --copies 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cmio.measures.adherence import read_adherence
from cmio.measures.adherence_dupes import prepare_patients
from cmio.measures.cost import read_cost
from cmio.measures.ehr_use import read_views

_WHEN = (
    "substr(coalesce(json->>'$.period.start', json->>'$.billablePeriod.start',"
    " json->>'$.effectiveDateTime', json->>'$.effectivePeriod.start',"
    " json->>'$.performedDateTime', json->>'$.performedPeriod.start', json->>'$.authoredOn',"
    " json->>'$.onsetDateTime', json->>'$.recordedDate', json->>'$.created', json->>'$.start',"
    " json->>'$.recorded', json->>'$.sent', json->>'$.date', json->>'$.occurrenceDateTime'),"
    " 1, 10)"
)
_UNDATED = ("Patient", "Practitioner", "PractitionerRole", "Organization", "Schedule",
            "Location", "Device")  # fmt: skip

# Columns replicated with a fresh id: plain ids, and references "Type/id".
_IDS: dict[str, dict[str, tuple[str, ...]]] = {
    "ehr": {
        "audit_events": ("user_id",), "schedules": ("schedule_id", "user_id"),
        "slots": ("schedule_id",), "appointments": ("appointment_id", "user_id"),
        "roles": ("role_id", "user_id"), "orders": ("order_id", "requester_id"),
        "provenance": ("author_id", "enterer_id"),
    },
    "cost": {
        "eobs": ("eob_id", "patient_id", "claim_id"), "claims": ("claim_id", "encounter_id"),
        "encounters": ("encounter_id", "pprf_id", "any_id"), "coverage": ("patient_id",),
        "conditions": ("patient_id",), "a1c": ("patient_id",),
    },
    "dq": {
        "resources": ("id",), "coded": ("id",), "required": ("id",), "quantities": ("id",),
        "patients": ("id",),
    },
}  # fmt: skip
_REFS: dict[str, tuple[str, ...]] = {
    "audit_events": ("object_ref",), "provenance": ("target_ref",), "messages": ("focus_ref",),
}  # fmt: skip
_SHARED = ("departments", "organizations")


def _q(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def split_day(folder: Path, out: Path, day: str) -> tuple[Path, Path]:
    """``out/base`` (NDJSON without the day's dated resources) and ``out/day.json``."""
    base = out / "base"
    base.mkdir(parents=True, exist_ok=True)
    day_file = out / "day.json"
    if day_file.exists():
        return base, day_file
    resources: list[Any] = []
    con = duckdb.connect()
    try:
        for path in sorted(folder.glob("*.ndjson")):
            target = base / path.name
            if path.name.split(".")[0] in _UNDATED:
                if not target.exists():
                    target.symlink_to(path.resolve())
                continue
            cursor = con.execute(
                f"SELECT json::VARCHAR, coalesce({_WHEN}, '') = '{day}'"
                f" FROM read_ndjson_objects({_q(path)})"
            )
            with target.open("w", encoding="utf-8") as sink:
                while batch := cursor.fetchmany(50_000):
                    sink.writelines(text + "\n" for text, today in batch if not today)
                    resources += [json.loads(text) for text, today in batch if today]
    finally:
        con.close()
    day_file.write_text(json.dumps(resources), encoding="utf-8")
    return base, day_file


def read_families(source: Any, out: Path) -> None:
    """The three families' input tables over ``source`` as Parquet under ``out``."""
    if (out / "done").exists():
        return
    for family, read in (("ehr", read_views), ("cost", read_cost), ("dq", read_adherence)):
        started = time.perf_counter()
        tables = read(source)
        (out / family).mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            pq.write_table(table, out / family / f"{name}.parquet")
        print(f"  {family}: {len(tables)} tables in {time.perf_counter() - started:.0f} s")
    (out / "done").write_text("ok")


def _fresh(k: int, family: str, name: str, columns: list[str]) -> str:
    ids = _IDS.get(family, {}).get(name, ())
    refs = _REFS.get(name, ())
    out = []
    for c in columns:
        if c in ids:
            out.append(f'\'r{k}-\' || "{c}" AS "{c}"')
        elif c in refs:
            out.append(
                f"CASE WHEN \"{c}\" LIKE '%/%' THEN split_part(\"{c}\", '/', 1) || '/r{k}-'"
                f' || substr("{c}", strpos("{c}", \'/\') + 1) ELSE "{c}" END AS "{c}"'
            )
        elif family == "dq" and name == "patients" and c == "birth_date":
            out.append(
                f"coalesce(strftime(try_cast(\"{c}\" AS DATE) + {37 * k}, '%Y-%m-%d'),"
                f' "{c}") AS "{c}"'
            )
        else:
            out.append(f'"{c}"')
    return ", ".join(out)


def replicate(source: Path, out: Path, copies: int) -> None:
    """Copy 0 as is plus ``copies - 1`` copies with fresh ids, every table."""
    con = duckdb.connect()
    try:
        for path in sorted(source.glob("*/*.parquet")):
            family, name = path.parent.name, path.stem
            table = pq.read_table(path)
            con.register("t", table)
            columns = table.column_names
            parts = [table]
            if name not in _SHARED and table.num_rows:
                for k in range(1, copies):
                    select = _fresh(k, family, name, columns)
                    parts.append(con.sql(f"SELECT {select} FROM t").to_arrow_table())
            con.unregister("t")
            whole = pa.concat_tables([p.cast(table.schema) for p in parts])
            if family == "dq" and name == "patients" and whole.num_rows:
                whole = prepare_patients(whole.drop_columns(["id_rank"]).rename_columns(
                    {"family_norm": "family", "given_norm": "given", "phone_digits": "phone",
                     "postal5": "postal"}))  # fmt: skip
            (out / family).mkdir(parents=True, exist_ok=True)
            pq.write_table(whole, out / family / path.name)
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--day", default="2025-12-31")
    args = parser.parse_args()
    started = time.perf_counter()
    base, day_file = split_day(args.folder, args.out / "src", args.day)
    print(f"split off {args.day} in {time.perf_counter() - started:.0f} s")
    print("views over base:")
    read_families(base, args.out / "base1")
    print("views over the day:")
    read_families(json.loads(day_file.read_text(encoding="utf-8")), args.out / "day1")
    replicate(args.out / "base1", args.out / "base", args.copies)
    replicate(args.out / "day1", args.out / "day", args.copies)
    print(f"replicated x{args.copies}; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
