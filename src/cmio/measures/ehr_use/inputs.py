"""Inputs of the EHR-use measures: SQL on FHIR views and imported vendor audit logs.

Every input is a flat Arrow table produced by a ViewDefinition
(https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html) run
with :func:`cmio.views.run` over a store, an NDJSON/Parquet folder or resources:

* ``audit_events``: one row per AuditEvent (IHE BALP,
  https://profiles.ihe.net/ITI/BALP/): the requesting user's Practitioner id
  (``agent.where(requestor = true)``), ``period.start``/``period.end`` (else
  ``recorded``), ``action``, ``outcome``, the activity class (``subtype`` in the
  ``ehr-activity`` system when present) and the object acted on (the entity with
  object role 4, Domain Resource).
* ``schedules``, ``slots``, ``appointments``: scheduled patient time
  (https://hl7.org/fhir/R4/schedule.html, slot.html, appointment.html).
* ``roles``: PractitionerRole (department = ``organization``, specialty).
* ``orders`` (ServiceRequest and MedicationRequest) and ``provenance``
  (author/enterer agents, https://hl7.org/fhir/R4/provenance.html) for teamwork.

Vendor audit-log CSVs are mapped to the same ``audit_events`` columns with a
:class:`CsvMapping` (see :func:`read_audit_csv`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

import cmio.views

__all__ = [
    "ACTIVITY_SYSTEM",
    "AUDIT_SCHEMA",
    "CsvMapping",
    "empty_audit_events",
    "read_audit_csv",
    "read_views",
    "split_resources",
    "view_definitions",
]

ACTIVITY_SYSTEM = "https://riverbend-health.example.org/fhir/CodeSystem/ehr-activity"
"""Code system of the EHR activity classes carried in ``AuditEvent.subtype``."""

AUDIT_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("user_id", pa.string()),
        ("start_ts", pa.string()),
        ("end_ts", pa.string()),
        ("duration_s", pa.int64()),
        ("action", pa.string()),
        ("outcome", pa.string()),
        ("activity", pa.string()),
        ("object_ref", pa.string()),
        ("objects_known", pa.bool_()),
    ]
)
"""Columns of the ``audit_events`` input (AuditEvent view or mapped vendor CSV)."""

_VENDOR_ACTIVITIES = MappingProxyType(
    {
        "chart review": "chart-review",
        "notes": "notes",
        "orders": "orders",
        "results review": "results",
        "in basket": "inbox",
        "inbox": "inbox",
    }
)


def _col(name: str, path: str) -> dict[str, str]:
    return {"name": name, "path": path}


def _view(resource: str, select: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "ViewDefinition", "resource": resource, "status": "active",
            "select": select}  # fmt: skip


def view_definitions(activity_system: str = ACTIVITY_SYSTEM) -> dict[str, dict[str, Any]]:
    """The ViewDefinitions of the EHR-use inputs, by input table name."""
    who = "who.getReferenceKey(Practitioner)"
    agent = "agent.where(type.coding.code = '{0}').who.getReferenceKey(Practitioner).first()"
    return {
        "audit_events": _view("AuditEvent", [{"column": [
            _col("user_id", f"agent.where(requestor = true).{who}.first()"),
            _col("start_ts", "period.start"),
            _col("end_ts", "period.end"),
            _col("recorded", "recorded"),
            _col("action", "action"),
            _col("outcome", "outcome"),
            _col("activity", f"subtype.where(system = '{activity_system}').code.first()"),
            _col("object_ref", "entity.where(role.code = '4').what.reference.first()"),
        ]}]),
        "schedules": _view("Schedule", [
            {"column": [_col("schedule_id", "id"), _col("active", "active")]},
            {"forEach": "actor", "column": [_col("user_id", "getReferenceKey(Practitioner)")]},
        ]),
        "slots": _view("Slot", [{"column": [
            _col("schedule_id", "schedule.getReferenceKey(Schedule)"),
            _col("status", "status"), _col("start_ts", "start"), _col("end_ts", "end"),
        ]}]),
        "appointments": _view("Appointment", [
            {"column": [_col("appointment_id", "id"), _col("status", "status"),
                        _col("start_ts", "start"), _col("end_ts", "end")]},
            {"forEach": "participant", "column": [
                _col("user_id", "actor.getReferenceKey(Practitioner)"),
                _col("participant_status", "status"),
            ]},
        ]),
        "roles": _view("PractitionerRole", [{"column": [
            _col("role_id", "id"),
            _col("user_id", "practitioner.getReferenceKey(Practitioner)"),
            _col("department_id", "organization.getReferenceKey(Organization)"),
            _col("snomed_specialty",
                 "specialty.coding.where(system = 'http://snomed.info/sct').display.first()"),
            _col("specialty_any", "specialty.coding.display.first()"),
        ]}]),
        "departments": _view("Organization", [{"column": [
            _col("department_id", "id"), _col("department", "name"),
        ]}]),
        "service_requests": _view("ServiceRequest", [{"column": [
            _col("order_id", "id"), _col("requester_id", "requester.getReferenceKey(Practitioner)"),
            _col("authored_ts", "authoredOn"), _col("intent", "intent"),
        ]}]),
        "medication_requests": _view("MedicationRequest", [{"column": [
            _col("order_id", "id"), _col("requester_id", "requester.getReferenceKey(Practitioner)"),
            _col("authored_ts", "authoredOn"), _col("intent", "intent"),
        ]}]),
        "provenance": _view("Provenance", [
            {"column": [_col("author_id", agent.format("author")),
                        _col("enterer_id", agent.format("enterer"))]},
            {"forEach": "target", "column": [_col("target_ref", "reference")]},
        ]),
    }  # fmt: skip


def read_views(
    source: Any,
    *,
    engine: str = "duckdb",
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> dict[str, pa.Table]:
    """Run every input view over ``source`` (see :func:`cmio.views.run`).

    Returns:
        Input tables by name; ``audit_events`` conformed to :data:`AUDIT_SCHEMA` and
        ``orders`` combining ServiceRequest and MedicationRequest.
    """
    out: dict[str, pa.Table] = {}
    runner = (
        cmio.views.DuckDbRunner(options.get("model"), threads=options.get("threads"))
        if engine == "duckdb"
        else None
    )
    by_type = split_resources(source)
    for name, view in view_definitions().items():
        if progress is not None:
            progress(name)
        part = source if by_type is None else by_type.get(view["resource"], [])
        if runner is not None:
            out[name] = runner.run(view, part)
        else:
            out[name] = cmio.views.run(view, part, engine, **options)
    out["audit_events"] = _audit_from_view(out["audit_events"])
    sr, mr = out.pop("service_requests"), out.pop("medication_requests")
    out["orders"] = pa.concat_tables(
        [
            sr.append_column("order_type", pa.array(["ServiceRequest"] * sr.num_rows)),
            mr.append_column("order_type", pa.array(["MedicationRequest"] * mr.num_rows)),
        ]
    )
    return out


def split_resources(source: Any) -> dict[str, list[dict[str, Any]]] | None:
    """Resources given as a list or tuple of dicts, grouped by type (None: another source)."""
    if not isinstance(source, list | tuple):
        return None
    groups: dict[str, list[dict[str, Any]]] = {}
    for resource in source:
        if isinstance(resource, dict):
            groups.setdefault(str(resource.get("resourceType")), []).append(resource)
    return groups


def _audit_from_view(table: pa.Table) -> pa.Table:
    n = table.num_rows
    start = pc.coalesce(table["start_ts"], table["recorded"])
    end = pc.coalesce(table["end_ts"], table["recorded"])
    return pa.table(
        {
            "source": pa.array(["AuditEvent"] * n, pa.string()),
            "user_id": table["user_id"],
            "start_ts": start,
            "end_ts": end,
            "duration_s": pa.nulls(n, pa.int64()),
            "action": table["action"],
            "outcome": table["outcome"],
            "activity": table["activity"],
            "object_ref": table["object_ref"],
            "objects_known": pa.array([True] * n, pa.bool_()),
        },
        schema=AUDIT_SCHEMA,
    )


def empty_audit_events() -> pa.Table:
    """An ``audit_events`` table without rows."""
    return AUDIT_SCHEMA.empty_table()


@dataclass(frozen=True, slots=True)
class CsvMapping:
    """How a vendor audit-log CSV maps to the ``audit_events`` columns.

    The default matches the audit log the synthetic health system writes
    (``user_id,user_name,timestamp,action,patient_mrn,activity_class,session_id,
    device,duration_seconds``): the user is the Practitioner id, the timestamp an
    ISO 8601 instant with offset when the action started, the duration in seconds.

    Attributes:
        user: column of the user's Practitioner id.
        timestamp: column of the start instant (ISO 8601 with offset).
        duration: column of the duration in seconds (None: point events).
        end: column of the end instant (None: start + duration).
        action: column of the action (READ/CREATE/UPDATE/DELETE or R/C/U/D).
        activity: column of the activity class.
        object: column of the object acted on as ``Type/id`` (None: unknown; then
            Prescription-Time8 cannot be computed from this log).
        activities: activity-class names (lower case) -> ``ehr-activity`` codes;
            names not listed count as ``chart-review``.
    """

    user: str = "user_id"
    timestamp: str = "timestamp"
    duration: str | None = "duration_seconds"
    end: str | None = None
    action: str = "action"
    activity: str = "activity_class"
    object: str | None = None
    activities: Mapping[str, str] = field(default_factory=lambda: _VENDOR_ACTIVITIES)

    def columns(self) -> list[str]:
        """The CSV columns this mapping reads."""
        names = [self.user, self.timestamp, self.action, self.activity]
        names += [c for c in (self.duration, self.end, self.object) if c is not None]
        return names


_ACTIONS = MappingProxyType(
    {"READ": "R", "R": "R", "CREATE": "C", "C": "C", "UPDATE": "U", "U": "U",
     "DELETE": "D", "D": "D", "EXECUTE": "E", "E": "E"}
)  # fmt: skip


def read_audit_csv(paths: Sequence[Path], mapping: CsvMapping | None = None) -> pa.Table:
    """Read vendor audit-log CSVs into ``audit_events`` rows (:data:`AUDIT_SCHEMA`).

    Raises:
        ValueError: a file lacks a mapped column, or a duration is not an integer
            (the message names the file, column and row).
    """
    mapping = mapping or CsvMapping()
    tables = [empty_audit_events()]
    for path in paths:
        opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in mapping.columns()})
        raw = pacsv.read_csv(path, convert_options=opts)
        missing = [c for c in mapping.columns() if c not in raw.column_names]
        if missing:
            raise ValueError(f"{path}: audit-log CSV lacks column(s) {', '.join(missing)}")
        tables.append(_map_rows(path, raw, mapping))
    return pa.concat_tables(tables)


def _map_rows(path: Path, raw: pa.Table, m: CsvMapping) -> pa.Table:
    n = raw.num_rows
    durations: list[int | None] = [None] * n
    if m.duration is not None:
        for i, text in enumerate(raw[m.duration].to_pylist()):
            if text not in (None, ""):
                try:
                    durations[i] = int(float(text))
                except ValueError:
                    raise ValueError(
                        f"{path}: row {i + 2}, column {m.duration}: {text!r} is not a number"
                    ) from None
    actions = [_ACTIONS.get((a or "").strip().upper(), a) for a in raw[m.action].to_pylist()]
    activities = [
        m.activities.get((a or "").strip().lower(), "chart-review")
        for a in raw[m.activity].to_pylist()
    ]
    objects = pa.nulls(n, pa.string())
    if m.object is not None:
        objects = pa.array([o or None for o in raw[m.object].to_pylist()], pa.string())
    return pa.table(
        {
            "source": pa.array([f"csv:{path.name}"] * n, pa.string()),
            "user_id": raw[m.user],
            "start_ts": raw[m.timestamp],
            "end_ts": raw[m.end] if m.end is not None else pa.nulls(n, pa.string()),
            "duration_s": pa.array(durations, pa.int64()),
            "action": pa.array(actions, pa.string()),
            "outcome": pa.nulls(n, pa.string()),
            "activity": pa.array(activities, pa.string()),
            "object_ref": objects,
            "objects_known": pa.array([m.object is not None] * n, pa.bool_()),
        },
        schema=AUDIT_SCHEMA,
    )
