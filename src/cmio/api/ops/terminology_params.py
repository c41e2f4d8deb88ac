"""Input parameters of the terminology operations, from a query string or a Parameters body.

Operations are invoked with ``GET`` and query parameters or ``POST`` with a
``Parameters`` resource (https://hl7.org/fhir/R4/operations.html#request); both end
up as one :class:`OperationInput`. Resources given with the call (``tx-resource``,
https://hl7.org/fhir/extensions/terminology-service.html) are collected for the
call's resource overlay.
"""

from __future__ import annotations

from typing import Any

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest
from cmio.api.ops.common import parse_json_body
from cmio.terminology.errors import TerminologyError
from cmio.terminology.expansion import ExpandOptions
from cmio.terminology.resources import TerminologyResources

__all__ = ["OperationInput", "read_input", "service_of"]

_VALUE_PREFIX = "value"


class OperationInput:
    """The named inputs of one operation call, in order, repeats kept.

    Args:
        values: ``(name, value)`` pairs; a value is a string (query string), a typed
            FHIR value, or a resource (``resource`` parameters).
    """

    def __init__(self, values: list[tuple[str, Any]]) -> None:
        self.values = values
        self._by_name: dict[str, list[Any]] = {}
        for key, value in values:
            self._by_name.setdefault(key, []).append(value)

    def has_any(self, names: frozenset[str]) -> bool:
        """Whether any of ``names`` was given."""
        return not names.isdisjoint(self._by_name)

    def all(self, name: str) -> list[Any]:
        """Every value of a parameter."""
        return list(self._by_name.get(name, ()))

    def first(self, name: str) -> Any:
        """The first value of a parameter, or None."""
        found = self._by_name.get(name)
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        """A parameter as a string (400 when it is not a primitive)."""
        value = self.first(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return str(value).lower() if isinstance(value, bool) else str(value)
        raise FhirError(
            400, "invalid", f"Parameter {name!r} must be a primitive value", expression=name
        )

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean parameter (``true``/``false``)."""
        value = self.first(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise FhirError(
            400, "invalid", f"Parameter {name!r} must be true or false", expression=name
        )

    def integer(self, name: str) -> int | None:
        """A non-negative integer parameter."""
        value = self.first(name)
        if value is None:
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if number < 0 or isinstance(value, bool):
            raise FhirError(
                400,
                "invalid",
                f"Parameter {name!r} must be a non-negative integer",
                expression=name,
            )
        return number

    def resource(self, name: str) -> dict[str, Any] | None:
        """A resource parameter."""
        value = self.first(name)
        if value is None:
            return None
        if not isinstance(value, dict) or "resourceType" not in value:
            raise FhirError(
                400, "invalid", f"Parameter {name!r} must be a resource", expression=name
            )
        return value

    def canonical_map(self, name: str) -> dict[str, str]:
        """``url|version`` parameters (``system-version`` ...) as url -> version."""
        out: dict[str, str] = {}
        for value in self.all(name):
            url, bar, version = str(value).partition("|")
            if not bar or not version:
                raise FhirError(
                    400,
                    "invalid",
                    f"Parameter {name!r} must be 'url|version', not {value!r}",
                    expression=name,
                )
            out[url] = version
        return out


def _typed(parameter: dict[str, Any]) -> Any:
    if "resource" in parameter:
        return parameter["resource"]
    if "part" in parameter:
        return {p.get("name"): _typed(p) for p in parameter["part"] if isinstance(p, dict)}
    for key, value in parameter.items():
        if key.startswith(_VALUE_PREFIX):
            return value
    return None


def read_input(request: FhirRequest) -> OperationInput:
    """The operation's inputs: query parameters, plus a Parameters body on POST.

    Raises:
        FhirError: 400 when a POST body is not a Parameters resource.
    """
    values: list[tuple[str, Any]] = [(k, v) for k, v in request.query if not k.startswith("_")]
    if request.method == "POST" and request.body.strip():
        body = parse_json_body(request)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError(400, "structure", "The body must be a Parameters resource")
        for index, parameter in enumerate(body.get("parameter") or ()):
            if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
                raise FhirError(
                    400,
                    "structure",
                    "Each parameter needs a name",
                    expression=f"Parameters.parameter[{index}]",
                )
            values.append((parameter["name"], _typed(parameter)))
    return OperationInput(values)


def service_of(env: Env, inputs: OperationInput) -> tuple[Any, TerminologyResources]:
    """The Env's terminology service and the resources of this call (with ``tx-resource``s).

    Raises:
        FhirError: 501 when the server has no terminology service.
    """
    service = env.terminology
    if service is None:
        raise FhirError(501, "not-supported", "This server has no terminology service")
    extra = [r for r in inputs.all("tx-resource") if isinstance(r, dict)]
    return service, service.resources.with_overlay(extra)


_OPTION_NAMES = frozenset(
    {
        "activeOnly",
        "system-version",
        "force-system-version",
        "check-system-version",
        "exclude-system",
        "displayLanguage",
        "default-valueset-version",
    }
)


def expand_options(inputs: OperationInput) -> ExpandOptions:
    """Expansion options shared by ``$expand`` and ``$validate-code``."""
    if not inputs.has_any(_OPTION_NAMES):
        return ExpandOptions()
    return ExpandOptions(
        active_only=inputs.flag("activeOnly"),
        system_versions=inputs.canonical_map("system-version"),
        force_versions=inputs.canonical_map("force-system-version"),
        check_versions=inputs.canonical_map("check-system-version"),
        exclude_systems=frozenset(str(v) for v in inputs.all("exclude-system")),
        display_language=inputs.text("displayLanguage"),
        valueset_versions=inputs.canonical_map("default-valueset-version"),
    )


def as_fhir_error(error: TerminologyError) -> FhirError:
    """The router's error for a terminology error."""
    return FhirError(error.status, error.code, error.message, expression=error.expression)
