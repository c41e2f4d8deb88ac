"""``[base]/$closure``: closure tables kept for clients
(https://hl7.org/fhir/R4/conceptmap-operation-closure.html).

* ``name`` alone: (re)initialise the table of that name; the answer is an empty
  ConceptMap with version ``0``.
* ``name`` and ``concept`` (Codings): add them; the answer holds the new subsumption
  relations among the table's concepts (:mod:`cmio.terminology.closure_table`) and the
  table's version.
* ``name`` and ``version``: re-synchronise; the answer holds every relation added after
  that version.

The table lives in the store (``job_state`` ``closure:<name>``), read and written in one
transaction, so every server process sees the same tables and a failed call changes
nothing.
"""

from __future__ import annotations

from typing import Any

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.terminology_params import as_fhir_error, read_input, service_of
from cmio.api.render import json_response
from cmio.terminology.closure_table import ClosureState, add_concepts, closure_map
from cmio.terminology.errors import TerminologyError

__all__ = ["closure"]

_PREFIX = "closure:"


def closure(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """``$closure`` (POST, system level); see the module docstring.

    Raises:
        FhirError: 400 without ``name``, with both ``concept`` and ``version``, or with a
            version that is not a number; 404 for a table never initialised or a concept
            the server does not know.
    """
    inputs = read_input(request)
    name = inputs.text("name")
    if not name:
        raise FhirError(400, "required", "$closure needs a name", expression="name")
    concepts = inputs.all("concept")
    codings: list[dict[str, Any]] = [c if isinstance(c, dict) else {} for c in concepts]
    wanted = inputs.text("version")
    if wanted is not None and codings:
        raise FhirError(
            400,
            "invalid",
            "Give either concepts to add or a version to re-synchronise from, not both",
            expression="version",
        )
    since = _version(wanted)
    _, resources = service_of(env, inputs)
    key = _PREFIX + name
    with env.repository.transaction() as tx:
        if wanted is None and not codings:
            state = ClosureState()
            tx.set_job_state(key, state.dumps())
            return json_response(request, 200, closure_map(name, 0, []))
        saved = tx.job_state(key)
        if saved is None:
            raise FhirError(
                404,
                "not-found",
                f"The closure table {name!r} has not been initialised (call $closure with "
                "only its name first)",
                expression="name",
            )
        state = ClosureState.loads(saved)
        if since is not None:
            return json_response(request, 200, closure_map(name, state.version, state.since(since)))
        before = len(state.concepts)
        try:
            added = add_concepts(state, codings, resources)
        except TerminologyError as error:
            raise as_fhir_error(error) from error
        if len(state.concepts) != before:
            tx.set_job_state(key, state.dumps())
    return json_response(request, 200, closure_map(name, state.version, added))


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise FhirError(
            400,
            "invalid",
            f"version must be a version this server returned (a number), not {text!r}",
            expression="version",
        )
    return int(text)
