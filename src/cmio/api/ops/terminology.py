"""The terminology operations over HTTP.

* ``ValueSet/$expand`` https://hl7.org/fhir/R4/valueset-operation-expand.html
* ``ValueSet/$validate-code`` https://hl7.org/fhir/R4/valueset-operation-validate-code.html
* ``CodeSystem/$validate-code`` https://hl7.org/fhir/R4/codesystem-operation-validate-code.html
* ``CodeSystem/$lookup`` https://hl7.org/fhir/R4/codesystem-operation-lookup.html
* ``CodeSystem/$subsumes`` https://hl7.org/fhir/R4/codesystem-operation-subsumes.html
* ``ConceptMap/$translate`` https://hl7.org/fhir/R4/conceptmap-operation-translate.html

Each is invoked at type level or on an instance (``ValueSet/[id]/$expand``), with GET
and query parameters or POST and a Parameters body. Failures are an OperationOutcome
whose issue carries a ``tx-issue-type`` detail code and the parameter's name.
"""

from __future__ import annotations

from typing import Any

import orjson

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.terminology_params import (
    OperationInput,
    expand_options,
    read_input,
    service_of,
)
from cmio.api.render import FHIR_JSON, json_response
from cmio.store.base import NotFoundError
from cmio.terminology.errors import TX_ISSUE_TYPE, TerminologyError
from cmio.terminology.lookup import lookup, subsumes, translate
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest
from cmio.terminology.validatecode import CodingInput, ValidateRequest, validate_code

__all__ = ["expand", "lookup_op", "subsumes_op", "translate_op", "validate_code_op"]

_ECHO = (
    ("activeOnly", "valueBoolean"),
    ("displayLanguage", "valueCode"),
    ("excludeNested", "valueBoolean"),
    ("includeDefinition", "valueBoolean"),
    ("includeDesignations", "valueBoolean"),
    ("filter", "valueString"),
    ("count", "valueInteger"),
    ("offset", "valueInteger"),
)


def _error(request: FhirRequest, error: TerminologyError) -> FhirResponse:
    issue: dict[str, Any] = {"severity": "error", "code": error.code}
    details: dict[str, Any] = {"text": error.message}
    if error.detail:
        details["coding"] = [{"system": TX_ISSUE_TYPE, "code": error.detail}]
    issue["details"] = details
    if error.expression:
        issue["expression"] = [error.expression]
    outcome = {"resourceType": "OperationOutcome", "issue": [issue]}
    return json_response(request, error.status, outcome)


def _instance(env: Env, rtype: str, rid: str | None) -> dict[str, Any] | None:
    if rid is None:
        return None
    try:
        stored = env.repository.read(rtype, rid)
    except NotFoundError as exc:
        raise FhirError(404, "not-found", f"{rtype}/{rid} is not known") from exc
    if stored.data is None:
        raise FhirError(410, "deleted", f"{rtype}/{rid} was deleted")
    resource: dict[str, Any] = orjson.loads(stored.data)
    return resource


def _typed_echo(inputs: OperationInput, name: str, key: str) -> Any:
    if key == "valueBoolean":
        return inputs.flag(name)
    if key == "valueInteger":
        return inputs.integer(name)
    return inputs.text(name)


def expand(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """``$expand`` (GET or POST; type level or ``ValueSet/[id]/$expand``)."""
    inputs = read_input(request)
    service, resources = service_of(env, inputs)
    valueset = _instance(env, "ValueSet", rid) or inputs.resource("valueSet")
    echo = [
        (name, key, _typed_echo(inputs, name, key))
        for name, key in _ECHO
        if inputs.first(name) is not None
    ]
    designations = [str(v) for v in inputs.all("designation")]
    echo += [("designation", "valueString", v) for v in designations]
    expand_request = ExpandRequest(
        url=inputs.text("url") or inputs.text("context"),
        valueset=valueset,
        version=inputs.text("valueSetVersion"),
        filter=inputs.text("filter"),
        offset=inputs.integer("offset") or 0,
        count=inputs.integer("count"),
        include_designations=inputs.flag("includeDesignations"),
        include_definition=inputs.flag("includeDefinition"),
        options=expand_options(inputs),
        echo=sorted(echo),
        supplements=[str(v) for v in inputs.all("useSupplement")],
        designations=designations,
        properties=[str(v) for v in inputs.all("property")],
    )
    header = request.header("accept-language")
    if expand_request.options.display_language is None and header:
        expand_request.options.display_language = header
        expand_request.echo.append(("displayLanguage", "valueCode", header))
    for name in ("force-system-version",):
        for value in inputs.all(name):
            expand_request.echo.append((name, "valueUri", value))
    try:
        body = service.expand(expand_request, resources)
    except TerminologyError as error:
        return _error(request, error)
    return json_response(request, 200, body)


def _codings(
    inputs: OperationInput, rtype: str
) -> tuple[str, list[CodingInput], dict[str, Any] | None]:
    concept = inputs.first("codeableConcept")
    if isinstance(concept, dict):
        codings = [
            CodingInput(
                c.get("system"),
                str(c.get("code")),
                c.get("version"),
                c.get("display"),
                f"CodeableConcept.coding[{i}]",
            )
            for i, c in enumerate(concept.get("coding") or ())
            if isinstance(c, dict) and isinstance(c.get("code"), str)
        ]
        return "CodeableConcept", codings, concept
    coding = inputs.first("coding")
    if isinstance(coding, dict):
        if not isinstance(coding.get("code"), str):
            raise FhirError(400, "required", "The coding has no code", expression="coding.code")
        return (
            "Coding",
            [
                CodingInput(
                    coding.get("system"),
                    coding["code"],
                    coding.get("version"),
                    coding.get("display"),
                    "Coding",
                )
            ],
            None,
        )
    code = inputs.text("code")
    if code is None:
        raise FhirError(
            400,
            "required",
            "$validate-code needs code, coding or codeableConcept",
            expression="code",
        )
    system = (
        inputs.text("system")
        if rtype == "ValueSet"
        else inputs.text("url") or inputs.text("system")
    )
    version = (
        inputs.text("systemVersion") or inputs.text("version")
        if rtype == "CodeSystem"
        else inputs.text("systemVersion")
    )
    return "code", [CodingInput(system, code, version, inputs.text("display"), "code")], None


def validate_code_op(
    env: Env, request: FhirRequest, rtype: str | None, rid: str | None
) -> FhirResponse:
    """``$validate-code`` on ValueSet or CodeSystem (GET or POST).

    A type-level GET's answer is kept as bytes for a second, keyed by its query, its
    ``Accept-Language`` and the terminology generation (the same bound as the answer
    cache, :mod:`cmio.terminology.answers`): a repeated question skips parsing,
    resolution and serialization.
    """
    service = env.terminology
    key: tuple[Any, ...] | None = None
    if service is not None and request.method == "GET" and rid is None:
        concepts = service.resources.concepts
        key = (
            "GET $validate-code",
            rtype,
            tuple(request.query),
            request.header("accept-language"),
            service.resources.generation,
            concepts.generation if concepts is not None else 0,
        )
        body = service.answers.lookup(key)
        if body is not None:
            return FhirResponse(200, body, [("content-type", FHIR_JSON)])
    response = _validate_code(env, request, rtype, rid)
    if key is not None and service is not None and response.status == 200:
        service.answers.store(key, response.body)
    return response


def _validate_code(
    env: Env, request: FhirRequest, rtype: str | None, rid: str | None
) -> FhirResponse:
    inputs = read_input(request)
    service, resources = service_of(env, inputs)
    kind = rtype or "ValueSet"
    try:
        instance = _instance(env, kind, rid)
        kind_name, codings, concept = _codings(inputs, kind)
        valueset = None
        if kind == "ValueSet":
            valueset = instance or inputs.resource("valueSet")
            if valueset is None:
                url = inputs.text("url") or inputs.text("context")
                if not url:
                    raise FhirError(
                        400, "required", "$validate-code needs url or valueSet", expression="url"
                    )
                valueset = service.find_valueset(url, inputs.text("valueSetVersion"), resources)
        elif instance is not None or inputs.resource("codeSystem") is not None:
            cs = instance or inputs.resource("codeSystem")
            assert cs is not None
            resources = resources.with_overlay([cs])
            codings = [
                CodingInput(
                    c.system or cs.get("url"),
                    c.code,
                    c.version or cs.get("version"),
                    c.display,
                    c.path,
                )
                for c in codings
            ]
        body = validate_code(
            service,
            ValidateRequest(
                codings,
                valueset,
                kind_name,
                concept,
                lenient_display=inputs.flag("lenient-display-validation"),
                abstract=inputs.flag("abstract", True),
                membership_only=inputs.flag("valueset-membership-only"),
                display_language=inputs.text("displayLanguage")
                or request.header("accept-language"),
                options=expand_options(inputs),
                supplements=[str(v) for v in inputs.all("useSupplement")],
            ),
            resources,
        )
    except TerminologyError as error:
        return _error(request, error)
    return json_response(request, 200, body)


def _code_input(
    inputs: OperationInput, code_name: str = "code"
) -> tuple[str | None, str | None, str | None]:
    coding = inputs.first("coding")
    if isinstance(coding, dict):
        return coding.get("system"), coding.get("code"), coding.get("version")
    return inputs.text("system"), inputs.text(code_name), inputs.text("version")


def _cs_resources(
    env: Env, resources: TerminologyResources, rid: str | None
) -> tuple[TerminologyResources, str | None]:
    instance = _instance(env, "CodeSystem", rid)
    if instance is None:
        return resources, None
    return resources.with_overlay([instance]), instance.get("url")


def lookup_op(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """``CodeSystem/$lookup`` (GET or POST)."""
    inputs = read_input(request)
    _, resources = service_of(env, inputs)
    system, code, version = _code_input(inputs)
    resources, url = _cs_resources(env, resources, rid)
    try:
        body = lookup(
            resources,
            system or url,
            code,
            version,
            [str(p) for p in inputs.all("property")],
            inputs.text("displayLanguage"),
            [str(v) for v in inputs.all("useSupplement")],
        )
    except TerminologyError as error:
        return _error(request, error)
    return json_response(request, 200, body)


def subsumes_op(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    """``CodeSystem/$subsumes`` (GET or POST)."""
    inputs = read_input(request)
    _, resources = service_of(env, inputs)
    resources, url = _cs_resources(env, resources, rid)
    a, b = inputs.first("codingA"), inputs.first("codingB")
    system = inputs.text("system") or url
    code_a, code_b = inputs.text("codeA"), inputs.text("codeB")
    if isinstance(a, dict) and isinstance(b, dict):
        if a.get("system") != b.get("system"):
            raise FhirError(
                400, "invalid", "codingA and codingB must share a system", expression="codingB"
            )
        system, code_a, code_b = a.get("system"), a.get("code"), b.get("code")
    try:
        body = subsumes(resources, system, code_a, code_b, inputs.text("version"))
    except TerminologyError as error:
        return _error(request, error)
    return json_response(request, 200, body)


def translate_op(
    env: Env, request: FhirRequest, rtype: str | None, rid: str | None
) -> FhirResponse:
    """``ConceptMap/$translate`` (GET or POST)."""
    inputs = read_input(request)
    _, resources = service_of(env, inputs)
    instance = _instance(env, "ConceptMap", rid)
    system, code, _ = _code_input(inputs)
    code = code or inputs.text("sourceCode")  # R5 parameter names
    system = system or inputs.text("sourceSystem")
    coding = inputs.first("sourceCoding")
    if code is None and isinstance(coding, dict):
        system, code = coding.get("system"), coding.get("code")
    concept = inputs.first("codeableConcept") or inputs.first("sourceCodeableConcept")
    if code is None and isinstance(concept, dict) and concept.get("coding"):
        first = concept["coding"][0]
        system, code = first.get("system"), first.get("code")
    target = inputs.first("targetCoding")
    from_target = code is None and bool(inputs.text("targetCode") or isinstance(target, dict))
    if from_target:  # R5: from a target code to the source codes that map to it
        system, code = inputs.text("targetSystem"), inputs.text("targetCode")
        if code is None and isinstance(target, dict):
            system, code = target.get("system"), target.get("code")
    if instance is not None:
        resources = resources.with_overlay([instance])
    try:
        body = translate(
            resources,
            system,
            code,
            url=(instance or {}).get("url") or inputs.text("url"),
            source_vs=inputs.text("source") or inputs.text("sourceScope"),
            target_vs=inputs.text("target") or inputs.text("targetScope"),
            target_system=inputs.text("sourceSystem")
            if from_target
            else inputs.text("targetsystem") or inputs.text("targetSystem"),
            reverse=inputs.flag("reverse"),
            from_target=from_target,
        )
    except TerminologyError as error:
        return _error(request, error)
    return json_response(request, 200, body)
