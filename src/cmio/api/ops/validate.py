"""The ``$validate`` operation (https://hl7.org/fhir/R4/resource-operation-validate.html).

``POST [base]/[type]/$validate`` with the resource as the body, or a
``Parameters`` resource with a ``resource`` parameter and optional ``profile``
parameters; ``profile=`` may also be given in the query. The answer is always
200 with an OperationOutcome: the issues found, or one information issue "All OK".

The :class:`~cmio.validation.validator.Validator` is built once per
:class:`~cmio.api.env.Env`, on first use (:func:`profile_validator`), and also
serves validation on write (``Settings.validation``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.common import check_type, parse_json_body
from cmio.api.render import json_response

if TYPE_CHECKING:
    from cmio.validation.validator import Validator

__all__ = ["profile_validator", "validate"]

_PROFILE_TYPES = ("valueCanonical", "valueUri", "valueString", "valueUrl")


def profile_validator(env: Env) -> Validator:
    """The Env's Validator, built (about a second) on first use and then kept."""
    found = env.profile_validator
    if found is None:
        from cmio.validation.validator import Validator

        found = Validator(env.model)
        env.profile_validator = found
    return found


def _from_parameters(body: dict[str, Any]) -> tuple[Any, list[str]]:
    resource: Any = None
    profiles: list[str] = []
    for parameter in body.get("parameter", ()):
        if type(parameter) is not dict:
            continue
        name = parameter.get("name")
        if name == "resource":
            resource = parameter.get("resource")
        elif name == "profile":
            profiles += [parameter[k] for k in _PROFILE_TYPES if type(parameter.get(k)) is str]
    if type(resource) is not dict:
        raise FhirError(
            400, "required", "Parameters must carry the resource to validate in 'resource'"
        )
    return resource, profiles


def validate(env: Env, request: FhirRequest, rtype: str) -> FhirResponse:
    """POST [base]/[type]/$validate: validate against the base definition and profiles.

    See https://hl7.org/fhir/R4/resource-operation-validate.html and
    https://hl7.org/fhir/R4/validation.html.
    """
    check_type(env, rtype)
    body = parse_json_body(request)
    if type(body) is not dict:
        raise FhirError(400, "structure", "The body must be a FHIR resource or Parameters")
    profiles = [value for name, value in request.query if name == "profile" and value]
    resource: Any = body
    if body.get("resourceType") == "Parameters" and rtype != "Parameters":
        resource, listed = _from_parameters(body)
        profiles += listed
    if resource.get("resourceType") != rtype:
        raise FhirError(
            400,
            "invalid",
            f"resourceType {resource.get('resourceType')!r} does not match the URL type {rtype!r}",
            expression="resourceType",
        )
    issues = profile_validator(env).validate(resource, profiles)
    found = [issue.to_fhir() for issue in issues]
    if not found:
        found = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    return json_response(request, 200, {"resourceType": "OperationOutcome", "issue": found})
