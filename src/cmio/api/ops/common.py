"""Helpers shared by the interactions: body parsing, validation, preconditions."""

from __future__ import annotations

import re
from typing import Any

import orjson

from cmio.api.env import ID_RE, Env
from cmio.api.errors import FhirError, OutcomeIssue
from cmio.api.http import FhirRequest

__all__ = [
    "check_id",
    "check_type",
    "parse_etag",
    "parse_json_body",
    "parse_resource_body",
    "validate_resource",
]

_JSON_TYPES = ("application/fhir+json", "application/json", "application/json-patch+json")
_ETAG_RE = re.compile(r'^(?:W/)?"?(\d+)"?$')


def check_type(env: Env, rtype: str) -> None:
    """404 unless ``rtype`` is a concrete R4 resource type."""
    if not env.model.is_resource_type(rtype):
        raise FhirError(404, "not-supported", f"Unknown resource type {rtype!r}")


def check_id(rid: str) -> None:
    """400 unless ``rid`` is a valid FHIR id (https://hl7.org/fhir/R4/datatypes.html#id)."""
    if not ID_RE.fullmatch(rid):
        raise FhirError(400, "value", f"Invalid resource id {rid[:80]!r}", expression="id")


def parse_json_body(request: FhirRequest) -> Any:
    """Decode the body as JSON after checking the content type; 415/400 otherwise."""
    ctype = (request.header("content-type") or "").split(";")[0].strip().lower()
    if ctype and ctype not in _JSON_TYPES:
        if "xml" in ctype:
            raise FhirError(
                415, "not-supported", "XML is not supported; send application/fhir+json"
            )
        raise FhirError(415, "not-supported", f"Unsupported content type {ctype!r}")
    if not request.body.strip():
        raise FhirError(400, "structure", "The request body is empty")
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise FhirError(400, "structure", f"Malformed JSON: {exc}") from None


def parse_resource_body(env: Env, request: FhirRequest, rtype: str) -> dict[str, Any]:
    """Decode a resource body and check its ``resourceType`` matches the URL."""
    body = parse_json_body(request)
    if not isinstance(body, dict):
        raise FhirError(400, "structure", "The body must be a JSON object (a FHIR resource)")
    if body.get("resourceType") != rtype:
        raise FhirError(
            400,
            "invalid",
            f"resourceType {body.get('resourceType')!r} does not match the URL type {rtype!r}",
            expression="resourceType",
        )
    return body


def validate_resource(
    env: Env, resource: dict[str, Any], prefix: str = "", *, structure_checked: bool = False
) -> None:
    """Structural validation, then ``Settings.validation``; 400 with one issue per error.

    ``structure_checked``: ``validate_structure`` with ``env.model`` found no error in this
    very resource already (the HL7 engine's worker, https://hl7.org/fhir/R4/validation.html);
    only the validator's store checks run then, when it has them apart
    (:class:`cmio.api.app.WriteValidator`), else the whole validator as always.
    """
    checks = getattr(env.validator, "store_checks", None) if structure_checked else None
    found = env.validator(resource) if checks is None else checks(resource)
    errors = [i for i in found if getattr(i, "severity", "error") in ("error", "fatal")]
    mode = env.settings.validation
    if not errors and mode in ("base", "profiles"):
        from cmio.api.ops.validate import profile_validator

        checked = profile_validator(env).validate(
            resource, structure=False, meta_profiles=mode == "profiles"
        )
        errors = [i for i in checked if i.severity in ("error", "fatal")]
    if not errors and env.rules is not None:  # data-quality rules (cmio.rules)
        from cmio.api.ops.rules_hook import check_rules

        errors = check_rules(env, resource)
    if not errors:
        return
    issues = [
        OutcomeIssue(
            i.severity,
            i.code,
            i.message,
            f"{prefix}{i.expression}" if prefix and i.expression else i.expression,
        )
        for i in errors
    ]
    raise FhirError(400, "invalid", issues[0].diagnostics, issues=issues)


def parse_etag(value: str | None) -> int | None:
    """The version number of an ``If-Match`` ETag such as ``W/"3"``; 400 when malformed."""
    if value is None:
        return None
    match = _ETAG_RE.match(value.strip())
    if not match:
        raise FhirError(400, "invalid", f'Malformed ETag {value!r}; expected W/"<version>"')
    return int(match.group(1))
