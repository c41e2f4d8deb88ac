"""The table of named operations (``$name``) the router dispatches to.

An operation is invoked at system level (``[base]/$name``), type level
(``[base]/[type]/$name``) or instance level (``[base]/[type]/[id]/$name``);
see https://hl7.org/fhir/R4/operations.html#invoking. Each operation lives in
its own module under :mod:`cmio.api.ops` and is listed here once, so routing
stays free of per-operation branches. The table is built per router (no
module-level registry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cmio.api.env import Env
from cmio.api.http import FhirRequest, FhirResponse

__all__ = ["Operation", "OperationHandler", "default_operations"]

OperationHandler = Callable[[Env, FhirRequest, str | None, str | None], FhirResponse]
"""``handler(env, request, resource_type, resource_id) -> response``; type and id are None
when the operation is invoked at a higher level."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One named operation.

    Attributes:
        name: the operation name without ``$``.
        handler: the implementation.
        types: resource types it may be invoked on (empty: any type).
        system: whether ``[base]/$name`` is allowed.
        type_level: whether ``[base]/[type]/$name`` is allowed.
        instance: whether ``[base]/[type]/[id]/$name`` is allowed.
        methods: HTTP methods accepted.
        own_formats: the operation reads ``_format`` itself and answers other formats than
            JSON (e.g. CSV or Parquet rows), so the router's JSON-only negotiation is skipped.
        audited: False for operations that read and write no patient data (terminology
            look-ups): their successful answers are not recorded in the audit trail, so
            they never wait for a durable AuditEvent; refusals and failures still are
            (https://profiles.ihe.net/ITI/BALP/ records patient-privacy events).
    """

    name: str
    handler: OperationHandler
    types: frozenset[str] = frozenset()
    system: bool = False
    type_level: bool = True
    instance: bool = True
    methods: frozenset[str] = frozenset({"GET", "POST"})
    own_formats: bool = False
    audited: bool = True


def default_operations() -> dict[str, Operation]:
    """The operations every server offers, by name (import-light: handlers load lazily)."""
    table: list[Operation] = []
    table += _terminology_operations()
    table.append(Operation("reindex", _reindex, system=True, type_level=False, instance=False))
    table.append(
        Operation(
            "viewdefinition-run",
            _viewdefinition_run,
            frozenset({"Basic"}),
            system=True,
            type_level=False,
            own_formats=True,
        )
    )
    table += _viewdefinition_export_operations()
    table += _measure_operations()
    table += _governance_operations()
    return {op.name: op for op in table}


def _reindex(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """$reindex: rebuild the search index, applying stored SearchParameters."""
    from cmio.api.ops.reindex import reindex

    return reindex(env, request, rtype, rid)


def _viewdefinition_run(
    env: Env, request: FhirRequest, rtype: str | None, rid: str | None
) -> FhirResponse:
    """$viewdefinition-run (SQL on FHIR): a ViewDefinition's rows, synchronously."""
    from cmio.api.ops.viewdefinition_run import viewdefinition_run

    return viewdefinition_run(env, request, rtype, rid)


def _viewdefinition_export_operations() -> list[Operation]:
    """$viewdefinition-export (SQL on FHIR, asynchronous) with its status and file URLs."""

    def lazy(name: str) -> OperationHandler:
        def handler(
            env: Env, request: FhirRequest, rtype: str | None, rid: str | None
        ) -> FhirResponse:
            from cmio.api.ops import viewdefinition_export

            found: OperationHandler = getattr(viewdefinition_export, name)
            return found(env, request, rtype, rid)

        return handler

    return [
        Operation(
            "viewdefinition-export",
            lazy("kickoff"),
            frozenset({"Basic"}),
            system=True,
            type_level=False,
            own_formats=True,
        ),
        Operation(
            "viewdefinition-export-status",
            lazy("status_or_cancel"),
            system=True,
            type_level=False,
            instance=False,
            methods=frozenset({"GET", "DELETE"}),
        ),
        Operation(
            "viewdefinition-export-file",
            lazy("download"),
            system=True,
            type_level=False,
            instance=False,
            methods=frozenset({"GET"}),
            own_formats=True,
        ),
    ]


def _measure_operations() -> list[Operation]:
    """$evaluate-measure (instance and type level) and $care-gaps (type level) on Measure."""

    def evaluate(
        env: Env, request: FhirRequest, rtype: str | None, rid: str | None
    ) -> FhirResponse:
        from cmio.api.ops.evaluate_measure import evaluate_measure

        return evaluate_measure(env, request, rtype, rid)

    def gaps(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
        from cmio.api.ops.care_gaps import care_gaps

        return care_gaps(env, request, rtype, rid)

    return [
        Operation("evaluate-measure", evaluate, frozenset({"Measure"})),
        Operation("care-gaps", gaps, frozenset({"Measure"}), instance=False),
    ]


def _terminology_operations() -> list[Operation]:
    """$expand, $validate-code, $lookup, $subsumes, $translate, $closure
    (https://hl7.org/fhir/R4/terminology-service.html)."""

    def lazy(name: str) -> OperationHandler:
        def handler(
            env: Env, request: FhirRequest, rtype: str | None, rid: str | None
        ) -> FhirResponse:
            from cmio.api.ops import terminology

            found: OperationHandler = getattr(terminology, name)
            return found(env, request, rtype, rid)

        return handler

    vs, cs = frozenset({"ValueSet"}), frozenset({"CodeSystem"})
    return [  # no patient data: successful answers are not audited (see Operation.audited)
        Operation("expand", lazy("expand"), vs, audited=False),
        Operation("validate-code", lazy("validate_code_op"), vs | cs, audited=False),
        Operation("lookup", lazy("lookup_op"), cs, audited=False),
        Operation("subsumes", lazy("subsumes_op"), cs, audited=False),
        Operation("translate", lazy("translate_op"), frozenset({"ConceptMap"}), audited=False),
        Operation(  # changes server state: audited
            "closure",
            _closure,
            system=True,
            type_level=False,
            instance=False,
            methods=frozenset({"POST"}),
        ),
    ]


def _closure(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """$closure: closure tables kept for clients (ConceptMap, system level)."""
    from cmio.api.ops.terminology_closure import closure

    return closure(env, request, rtype, rid)


def _governance_operations() -> list[Operation]:
    """$governance-transition (POST) and $diff (GET) on governed artifacts (issue 11)."""

    def transition(
        env: Env, request: FhirRequest, rtype: str | None, rid: str | None
    ) -> FhirResponse:
        from cmio.api.ops.governance_transition import governance_transition

        return governance_transition(env, request, rtype, rid)

    def diff(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
        from cmio.api.ops.governance_diff import governance_diff

        return governance_diff(env, request, rtype, rid)

    types = frozenset({"ValueSet", "ConceptMap", "Library", "Measure", "PlanDefinition", "Basic"})
    return [
        Operation(
            "governance-transition",
            transition,
            types,
            type_level=False,
            methods=frozenset({"POST"}),
        ),
        Operation("diff", diff, types, type_level=False, methods=frozenset({"GET"})),
        Operation("impact", _impact, types, type_level=False, own_formats=True),
    ]


def _impact(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """$impact: the impact analysis of a proposed artifact version (issue 11, item 2)."""
    from cmio.api.ops.governance_impact import governance_impact

    return governance_impact(env, request, rtype, rid)
