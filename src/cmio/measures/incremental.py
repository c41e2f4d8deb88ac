"""Measure tables kept in a DuckDB file and refreshed incrementally.

:class:`MeasureTables` materializes the measure ViewDefinitions
(:mod:`cmio.measures.views`) once into a DuckDB database, each table with a leading
``resource_key`` column (the id of the resource a row came from,
https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#getresourcekey).
:meth:`MeasureTables.apply` takes new or changed resources (a day's data): it runs the
views of their types over those resources only, deletes the rows of the same resources
and inserts the new ones, in one transaction. The measures then run on the tables
(:meth:`MeasureTables.evaluate`), without reading the source again: a refresh costs the
new data plus the population SQL, not a rebuild. (Over the FHIR store, the same pattern
is :class:`cmio.views.materialize.Analytics`, watermarked by ``meta.lastUpdated``.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from cmio.measures.definition import MeasureDefinition
from cmio.measures.engines import DuckDbEngine
from cmio.measures.runner import MeasureResult, MeasureRunner, result_from_members
from cmio.measures.sql import Period
from cmio.measures.views import measure_views
from cmio.model import Model, load_model
from cmio.views.parse import parse_view

__all__ = ["KEY", "MeasureTables"]

KEY = "resource_key"
"""The hidden key column of the measure tables."""


def _keyed(view: Mapping[str, Any]) -> dict[str, Any]:
    keyed = dict(view)
    key = {"column": [{"name": KEY, "path": "getResourceKey()", "type": "string"}]}
    keyed["select"] = [key, *view.get("select", [])]
    return keyed


class MeasureTables:
    """The measure tables of one database file.

    Args:
        path: the DuckDB file (``:memory:`` for a transient database).
        threads: DuckDB worker threads (None: all cores).
    """

    def __init__(self, path: Path | str = ":memory:", *, threads: int | None = None) -> None:
        self.con = duckdb.connect(str(path))
        self.threads = threads
        self._model: Model | None = None
        self._expansions: dict[tuple[Any, ...], pa.Table] = {}
        self._compiled: dict[tuple[str, str, bool], str] = {}

    def close(self) -> None:
        """Close the database."""
        self.con.close()

    def _load_model(self) -> Model:
        if self._model is None:
            self._model = load_model()
        return self._model

    def _engine(self, reuse: bool) -> DuckDbEngine:
        return DuckDbEngine(self.con, threads=self.threads, reuse=reuse, model=self._load_model())

    def build(self, names: Sequence[str], source: Any) -> None:
        """(Re)build the named tables from a whole source (folder, store or resources)."""
        views = {name: _keyed(view) for name, view in measure_views(names).items()}
        self._engine(reuse=False).load_views(views, source)

    def tables(self) -> list[str]:
        """The measure tables present."""
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'mp_%'"
            " ORDER BY table_name"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def apply(self, resources: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Bring the tables up to date with new or changed resources.

        Returns:
            Rows inserted per table.
        """
        items = [dict(r) for r in resources]
        types = {str(r.get("resourceType")) for r in items}
        present = set(self.tables())
        views = {
            name: _keyed(view)
            for name, view in measure_views(sorted(present)).items()
            if parse_view(view).resource in types
        }
        if not views:
            return {}
        scratch = duckdb.connect()
        try:
            staging = DuckDbEngine(
                scratch, threads=self.threads, model=self._load_model(), compiled=self._compiled
            )
            staging.load_views(views, items)
            inserted = {}
            self.con.execute("BEGIN")
            try:
                for name, view in views.items():
                    table = scratch.sql(f'SELECT * FROM "{name}"').to_arrow_table()
                    rtype = view["resource"]
                    keys = sorted(
                        {str(r["id"]) for r in items if r.get("id") and r["resourceType"] == rtype}
                    )
                    self.con.register("_cmio_new", table)
                    self.con.register("_cmio_keys", _key_table(keys))
                    self.con.execute(
                        f'DELETE FROM "{name}" WHERE {KEY} IN (SELECT k FROM _cmio_keys)'
                    )
                    self.con.execute(f'INSERT INTO "{name}" SELECT * FROM _cmio_new')
                    self.con.unregister("_cmio_new")
                    self.con.unregister("_cmio_keys")
                    inserted[name] = table.num_rows
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise
        finally:
            scratch.close()
        return inserted

    def refresh(
        self,
        previous: Sequence[MeasureResult],
        resources: Iterable[Mapping[str, Any]],
        **options: Any,
    ) -> list[MeasureResult]:
        """Apply new or changed resources, then re-evaluate only the patients they touch.

        Every population criterion is per patient (the shared tables, practitioners and
        organizations, are not narrowed), so the rows of the touched patients are
        recomputed over the tables narrowed to them (temporary tables shadowing the
        measure tables) and replace theirs in ``previous``; counts, strata and scores
        follow from the patched membership.

        Args:
            previous: the results of the same measures and period before the change.
            resources: the new or changed resources.
            **options: ``terminology``.
        """
        items = [dict(r) for r in resources]
        self.apply(items)
        touched = sorted(_patients(items))
        if not previous:
            return []
        period = previous[0].period
        self.con.register("_cmio_touched", _key_table(touched))
        narrowed = []
        try:
            per_patient = {
                str(row[0])
                for row in self.con.execute(
                    "SELECT DISTINCT table_name FROM information_schema.columns"
                    " WHERE column_name = 'patient_id'"
                ).fetchall()
            }
            for name in self.tables():
                if name in per_patient:
                    self.con.execute(
                        f'CREATE OR REPLACE TEMPORARY TABLE "{name}" AS SELECT * FROM main."{name}"'
                        " WHERE patient_id IN (SELECT k FROM _cmio_touched)"
                    )
                    narrowed.append(name)
            partial = self.evaluate([r.measure for r in previous], period, **options)
        finally:
            for name in narrowed:
                self.con.execute(f'DROP TABLE IF EXISTS temp."{name}"')
            self.con.unregister("_cmio_touched")
        out = []
        keys = pa.array(touched, pa.string())
        for old, new in zip(previous, partial, strict=True):
            kept = old.members.filter(pc.invert(pc.is_in(old.members["patient_id"], keys)))
            members = pa.concat_tables([kept, new.members.cast(kept.schema)])
            members = members.sort_by("patient_id")
            out.append(result_from_members(old.measure, period, members))
        return out

    def evaluate(
        self, measures: Sequence[MeasureDefinition], period: Period, **options: Any
    ) -> list[MeasureResult]:
        """Evaluate measures on the tables (missing tables are built from ``source``).

        Args:
            measures: the definitions.
            period: the measurement period.
            **options: ``source`` for tables not built yet, ``terminology``.
        """
        engine = self._engine(reuse=True)
        runner = MeasureRunner(
            engine, terminology=options.get("terminology"), expansions=self._expansions
        )
        needed = {v for m in measures for v in runner.compile(m, period).views}
        missing = sorted(needed - set(self.tables()))
        if missing:
            self.build(missing, options.get("source", []))
        try:
            return runner.evaluate(list(measures), period, options.get("source", []))
        finally:
            engine.close()


_PATIENT_REFS = ("subject", "patient", "beneficiary")


def _patients(resources: Iterable[Mapping[str, Any]]) -> set[str]:
    """The patients resources belong to (Patient ids, subject/patient/beneficiary)."""
    out = set()
    for resource in resources:
        if resource.get("resourceType") == "Patient" and resource.get("id"):
            out.add(str(resource["id"]))
        for field in _PATIENT_REFS:
            ref = resource.get(field)
            text = ref.get("reference") if isinstance(ref, Mapping) else None
            if isinstance(text, str) and text.startswith("Patient/"):
                out.add(text.split("/", 1)[1])
    return out


def _key_table(keys: list[str]) -> Any:
    return pa.table({"k": pa.array(keys, pa.string())})
