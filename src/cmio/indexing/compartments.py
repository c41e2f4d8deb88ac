"""Index rows for identifiers and Patient-compartment membership.

Compartment membership follows the CompartmentDefinitions
(https://hl7.org/fhir/R4/compartmentdefinition.html): a resource of type T is
in ``Patient/p`` when one of the search parameters the Patient compartment
names for T references ``Patient/p``. The parameters' FHIRPath expressions are
reduced here to plain element paths (all the Patient compartment needs); the
search issue replaces this with full FHIRPath extraction for every parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cmio.model import Model
from cmio.store.base import Indexer, IndexRow

__all__ = ["COMPARTMENT_PARAM", "CompartmentIndexer", "collect_references", "compartment_paths"]

COMPARTMENT_PARAM = "_compartment"
_WHERE = re.compile(r"\.where\([^()]*(\([^()]*\)[^()]*)*\)")
_STEP = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def _simple_paths(expression: str, rtype: str) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for part in expression.split("|"):
        part = _WHERE.sub("", part.strip()).strip("()")
        if " as " in part:
            part = part.split(" as ")[0].strip().strip("(")
        steps = part.split(".")
        if steps[0] != rtype:
            continue
        if all(_STEP.match(s) for s in steps[1:]) and len(steps) > 1:
            paths.append(tuple(steps[1:]))
    return paths


def compartment_paths(
    model: Model, compartment: str = "Patient"
) -> dict[str, list[tuple[str, ...]]]:
    """Per resource type, the element paths whose references place it in the compartment."""
    definition = model.compartments[compartment]
    out: dict[str, list[tuple[str, ...]]] = {}
    for rtype, params in definition.resources.items():
        if not params:
            continue
        known = model.search_params_for(rtype)
        paths: list[tuple[str, ...]] = []
        for code in params:
            spd = known.get(code)
            if spd is not None and spd.expression:
                paths.extend(p for p in _simple_paths(spd.expression, rtype) if p not in paths)
        if paths:
            out[rtype] = paths
    return out


def collect_references(node: Any, steps: tuple[str, ...], found: list[str]) -> None:
    """Append to ``found`` every ``reference`` string reached from ``node`` along ``steps``
    (one of the simple paths of :func:`compartment_paths`; lists are walked through)."""
    if isinstance(node, list):
        for item in node:
            collect_references(item, steps, found)
        return
    if not isinstance(node, dict):
        return
    if not steps:
        ref = node.get("reference")
        if isinstance(ref, str):
            found.append(ref)
        return
    child = node.get(steps[0])
    if child is not None:
        collect_references(child, steps[1:], found)


class CompartmentIndexer(Indexer):
    """Token rows for ``identifier`` and for Patient-compartment membership.

    Membership rows use param ``_compartment``, system ``Patient`` and the
    patient id as value; a Patient is a member of its own compartment.
    """

    def __init__(self, model: Model) -> None:
        self._paths = compartment_paths(model, "Patient")
        self._has_identifier = {
            rtype
            for rtype in model.resource_types
            if "identifier" in model.search_params_for(rtype)
        }

    def rows(self, resource: dict[str, Any]) -> Sequence[IndexRow]:
        """Rows for one resource (see class docstring)."""
        rtype = resource.get("resourceType", "")
        rows: list[IndexRow] = []
        if rtype in self._has_identifier:
            for ident in resource.get("identifier") or ():
                if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                    system = ident.get("system")
                    rows.append(
                        IndexRow(
                            "token",
                            "identifier",
                            system if isinstance(system, str) else None,
                            ident["value"],
                        )
                    )
        rows.extend(
            IndexRow("token", COMPARTMENT_PARAM, "Patient", pid) for pid in self.members(resource)
        )
        return rows

    def members(self, resource: dict[str, Any]) -> list[str]:
        """The ids of the Patients whose compartment holds ``resource``, sorted
        (https://hl7.org/fhir/R4/compartmentdefinition-patient.html)."""
        rtype = resource.get("resourceType", "")
        members: set[str] = set()
        if rtype == "Patient" and isinstance(resource.get("id"), str):
            members.add(resource["id"])
        for steps in self._paths.get(rtype, ()):
            if len(steps) == 1:  # the common case: subject, patient, performer ...
                node = resource.get(steps[0])
                if node is None:
                    continue
                for item in node if isinstance(node, list) else (node,):
                    ref = item.get("reference") if isinstance(item, dict) else None
                    if isinstance(ref, str) and (pid := _patient_id(ref)):
                        members.add(pid)
                continue
            refs: list[str] = []
            collect_references(resource, steps, refs)
            for ref in refs:
                pid = _patient_id(ref)
                if pid:
                    members.add(pid)
        return sorted(members)


def _patient_id(reference: str) -> str | None:
    if reference.startswith("Patient/"):
        pid = reference[8:]
        if "/" in pid:
            pid = pid.split("/", 1)[0]
        return pid or None
    marker = reference.rfind("Patient/")
    if marker < 0 or (marker > 0 and reference[marker - 1] != "/"):
        return None
    rest = reference[marker + 8 :]
    pid = rest.split("/", 1)[0]
    return pid or None
