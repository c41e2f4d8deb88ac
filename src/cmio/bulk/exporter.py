"""Export current resources as Bulk Data NDJSON files, one per type (``Type.ndjson``).

Used by ``cmio export`` and by the ``$export`` operation
(https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html). Patient-level and
Group-level exports keep the resources in the Patient compartment
(https://hl7.org/fhir/R4/compartmentdefinition-patient.html) of all patients or
of the Group's members; membership is decided from the references under the
compartment's search parameters (``subject``, ``patient``, ``performer``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from cmio.indexing.compartments import collect_references, compartment_paths
from cmio.model import Model
from cmio.store.base import Repository

__all__ = [
    "ExportCancelledError",
    "ExportFile",
    "ExportProgress",
    "PatientScope",
    "export_ndjson",
    "patient_compartment_types",
]

_CHECK_EVERY = 500


class ExportCancelledError(Exception):
    """The export was cancelled (``$export`` DELETE) before it finished."""


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One written file: resource type, path and number of resources."""

    type: str
    path: Path
    count: int


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """Progress of a running export: resources written, and the type being read."""

    resources: int
    current_type: str | None


@dataclass(frozen=True, slots=True)
class PatientScope:
    """Which patients' compartments to export: all of them, or the given ids (a Group)."""

    ids: frozenset[str] | None = None

    def wants(self, patient_id: str) -> bool:
        """Whether the compartment of ``Patient/patient_id`` is exported."""
        return self.ids is None or patient_id in self.ids


def patient_compartment_types(model: Model) -> list[str]:
    """Resource types that can be in a Patient compartment (Patient itself included)."""
    return sorted({"Patient", *compartment_paths(model, "Patient")})


def _patient_of(reference: str) -> str | None:
    """The id in a ``Patient/<id>`` reference (relative or absolute), else None."""
    parts = reference.split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return parts[-1]
    if len(parts) >= 4 and parts[-4] == "Patient" and parts[-2] == "_history":
        return parts[-3]
    return None


class _Membership:
    """Decides whether a stored resource is in a wanted Patient compartment."""

    def __init__(self, model: Model, scope: PatientScope) -> None:
        self.paths = compartment_paths(model, "Patient")
        self.scope = scope

    def __call__(self, rtype: str, rid: str, data: bytes) -> bool:
        if rtype == "Patient":
            return self.scope.wants(rid)
        paths = self.paths.get(rtype)
        if not paths or b"Patient/" not in data:
            return False
        resource = orjson.loads(data)
        refs: list[str] = []
        for steps in paths:
            collect_references(resource, steps, refs)
        for ref in refs:
            pid = _patient_of(ref)
            if pid is not None and self.scope.wants(pid):
                return True
        return False


def export_ndjson(
    repository: Repository,
    model: Model,
    out_dir: str | Path,
    *,
    types: Sequence[str] | None = None,
    since: str | None = None,
    patients: PatientScope | None = None,
    progress: Callable[[ExportProgress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    transform: Callable[[bytes], bytes | None] | None = None,
) -> list[ExportFile]:
    """Write current resources as ``out_dir/Type.ndjson`` files.

    See https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format.

    Args:
        repository: the store to read (one snapshot, streamed).
        model: the FHIR model (for the Patient compartment).
        out_dir: folder for the files (created; existing ``Type.ndjson`` overwritten).
        types: only these resource types (``_type``); all when None.
        since: only resources with ``meta.lastUpdated`` at or after this instant.
        patients: restrict to Patient compartments (Patient/Group-level export).
        progress: called every few hundred resources and at the end.
        cancelled: polled while exporting; when it returns True the partial
            files are removed and :class:`ExportCancelledError` is raised.
        transform: applied to each resource's JSON before it is written (e.g.
            de-identification, :mod:`cmio.security.deid`); None leaves the resource out.

    Returns:
        The files written, by type name, skipping types with no resources.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    member: _Membership | None = None
    wanted: list[str] | None = sorted(set(types)) if types is not None else None
    if patients is not None:
        member = _Membership(model, patients)
        allowed = set(patient_compartment_types(model))
        wanted = sorted(allowed if wanted is None else allowed.intersection(wanted))
    handles: dict[str, IO[bytes]] = {}
    counts: dict[str, int] = {}
    written = 0
    current: str | None = None
    rows = repository.iter_current(wanted, since)
    try:
        for stored in rows:
            data = stored.data
            if data is None:
                continue
            if member is not None and not member(stored.type, stored.id, data):
                continue
            if transform is not None:
                data = transform(data)
                if data is None:
                    continue
            fh = handles.get(stored.type)
            if fh is None:
                fh = handles[stored.type] = (out / f"{stored.type}.ndjson").open("wb")
                counts[stored.type] = 0
                current = stored.type
            fh.write(data)
            fh.write(b"\n")
            counts[stored.type] += 1
            written += 1
            if written % _CHECK_EVERY == 0:
                if cancelled is not None and cancelled():
                    raise ExportCancelledError("export cancelled")
                if progress is not None:
                    progress(ExportProgress(written, current))
    except BaseException:
        for fh in handles.values():
            fh.close()
        for rtype in handles:
            (out / f"{rtype}.ndjson").unlink(missing_ok=True)
        raise
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    for fh in handles.values():
        fh.close()
    if progress is not None:
        progress(ExportProgress(written, None))
    return [ExportFile(t, out / f"{t}.ndjson", counts[t]) for t in sorted(counts)]
