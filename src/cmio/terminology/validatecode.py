"""``$validate-code`` on ValueSet and CodeSystem.

https://hl7.org/fhir/R4/valueset-operation-validate-code.html and
https://hl7.org/fhir/R4/codesystem-operation-validate-code.html: a code, Coding or
CodeableConcept is checked against the code system (known system, known code,
display) and, for a value set, membership. The answer is a Parameters resource with
``result``, ``message``, ``display``, ``code``, ``system``, ``version`` and an
``issues`` OperationOutcome whose issues carry ``tx-issue-type`` detail codes and the
element path (``Coding.code``, ``CodeableConcept.coding[0].display`` ...).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from typing import Any

import orjson

from cmio.terminology.errors import TerminologyError, unknown_system_text
from cmio.terminology.render import display_for
from cmio.terminology.resources import TerminologyResources, version_matches
from cmio.terminology.service import TerminologyService, valueset_key
from cmio.terminology.status_warnings import status_warnings
from cmio.terminology.supplements import is_supplement, requested_supplements, with_supplements
from cmio.terminology.validate_answer import Outcome as _Outcome
from cmio.terminology.validate_answer import answer
from cmio.terminology.validate_display import display_issue, parse_languages, valueset_language
from cmio.terminology.validate_status import (
    case_issue,
    deprecated_in_valueset,
    deprecated_issues,
    excludes_inactive,
    inactive_issue,
    not_active_issue,
    reference_issues,
)
from cmio.terminology.validate_types import CodingInput, Issue, ValidateRequest
from cmio.terminology.version_rules import (
    check_issue,
    default_version,
    include_version,
    includes,
    pick_member,
    source_with_code,
    valueset_version,
    version_mismatch,
)

__all__ = ["CodingInput", "Issue", "ValidateRequest", "validate_code"]


def _element(coding: CodingInput, kind: str, name: str) -> str:
    return name if kind == "code" else f"{coding.path}.{name}"


def _not_in_vs(system: str | None, coding: CodingInput, kind: str, vs_label: str | None) -> Issue:
    """The issue for a code that is not a member of the value set being validated against."""
    shown = f" ('{coding.display}')" if coding.display else ""
    stated = f"{system}|{coding.version}" if coding.version else system
    text = (
        f"The provided code '{stated}#{coding.code}{shown}' was not found in the value set "
        f"'{vs_label}'"
    )
    return Issue("error", "code-invalid", "not-in-vs", text, _element(coding, kind, "code"))


def _infer_system(
    request: ValidateRequest, service: TerminologyService, res: TerminologyResources
) -> str | None:
    valueset = request.valueset
    if valueset is None:
        return None
    systems = {
        inc.get("system")
        for inc in (valueset.get("compose") or {}).get("include") or ()
        if isinstance(inc, dict) and inc.get("system")
    }
    return systems.pop() if len(systems) == 1 else None


def _check(
    coding: CodingInput,
    request: ValidateRequest,
    service: TerminologyService,
    resources: TerminologyResources,
) -> _Outcome:
    kind = request.kind
    out = _Outcome(code=coding.code)

    def path_of(name: str) -> str:
        return _element(coding, kind, name)

    system = coding.system or _infer_system(request, service, resources)
    out.system = system
    vs_label = None
    if request.valueset is not None:
        vs = request.valueset
        vs_label = (
            f"{vs.get('url')}|{vs.get('version')}" if vs.get("version") else str(vs.get("url"))
        )
    if coding.system is None and kind == "Coding" and vs_label is not None:
        text = (
            "Coding has no system. A code with no system has no defined meaning, and it cannot "
            "be validated. A system should be provided"
        )
        out.issues.append(Issue("warning", "invalid", "invalid-data", text, coding.path))
        out.issues.append(_not_in_vs("", coding, kind, vs_label))  # no system: not a member
        out.system = None
        return out
    if system is None and kind == "code" and request.valueset is not None and vs_label:
        try:  # the systems of the value set's members with this code
            members = service.expansion(request.valueset, request.options, resources).members
        except TerminologyError:
            members = {}
        with_code = sorted({s for s, c in members if c == coding.code})
        if len(with_code) == 1:
            system = out.system = with_code[0]
        elif with_code:
            out.issues.append(_not_in_vs("", coding, kind, vs_label))
            text = (
                f"The System URI could not be determined for the code '{coding.code}' in the "
                f"ValueSet '{vs_label}': value set expansion has multiple matches: "
                f"[{', '.join(with_code)}]"
            )
            out.issues.append(Issue("error", "not-found", "cannot-infer", text, "code"))
            return out
    if system is None:
        out.issues.append(
            Issue(
                "error",
                "invalid",
                "invalid-data",
                f"Coding has no system. A code with no system has no defined meaning, "
                f"and it cannot be validated ('{coding.code}')",
                _element(coding, kind, "system"),
            )
        )
        return out
    version = request.options.force_versions.get(system) or coding.version
    mismatch = None
    forced = system in request.options.force_versions
    stated = coding.version
    options = request.options
    vs_version = (
        valueset_version(request.valueset, options, system, resources, stated)
        if stated and not forced
        else options.force_versions.get(system)  # forced: the value must be within it
        if stated and request.valueset is not None
        else None
    )
    agree = vs_version and stated and version_matches(vs_version, stated)  # e.g. include 1.x
    if vs_version and stated and not agree and not version_matches(stated, vs_version):
        mismatch, version = stated, vs_version
    if agree and stated:  # the include's pattern takes the value's version
        options = replace(options, value_versions={**options.value_versions, system: stated})
    if version is None:  # the value set's include, else the versionless include's default
        version = include_version(request.valueset, system) or default_version(
            options, system, resources
        )
    source = resources.code_system(system, version)
    if source is not None and is_supplement(source.resource):
        label = f"{source.url}|{source.version}" if source.version else source.url
        text = f"CodeSystem {label} is a supplement, so can't be used as a value in "
        path = _element(coding, kind, "system")
        out.issues.append(Issue("error", "invalid", "invalid-data", text + path, path))
        return out
    if source is not None and mismatch is not None:
        out.version = source.version
        entry = source.get(coding.code)
        out.display = entry.display if entry else None
        unknown = resources.code_system(system, mismatch) is None  # the value's version
        bare = include_version(request.valueset, system) is None
        chosen = default_version(options, system, resources)
        versionless = unknown and bare and chosen is None and not forced
        # the value set took the newest: the unknown version is the error, this a warning
        where = "for the versionless include in" if versionless else "in"
        if forced:  # force-system-version replaced the include's version
            where = (
                f"resulting from the version '{include_version(request.valueset, system) or ''}' in"
            )
        elif not versionless and bare and chosen is not None:
            where = "resulting from the version '' in"  # the default chose it
        differs = version_mismatch(system, vs_version, mismatch, path_of("version"), where)
        if versionless:
            differs = replace(differs, severity="warning", quiet=True)  # not in the message
        out.issues.append(differs)
        checked = check_issue(options, system, source.version, path_of("version"))
        if checked is not None:
            out.issues.append(checked)
        if unknown:
            known = resources.known_versions("CodeSystem", system)
            out.caused_by.append(f"{system}|{mismatch}")
            text = unknown_system_text(system, mismatch, known, "the code cannot be validated")
            path = _element(coding, kind, "system")
            out.issues.append(Issue("error", "not-found", "not-found", text, path))
        return out
    if source is None and resources.versions("ValueSet", system):
        path = _element(coding, kind, "system")
        text = f"The Coding references a value set, not a code system ('{system}')"
        out.issues.append(Issue("error", "invalid", "invalid-data", text, path))
        if vs_label is not None:
            out.issues.append(_not_in_vs(system, coding, kind, vs_label))
        return out
    if source is None:
        known = resources.known_versions("CodeSystem", system)
        used = includes(request.valueset, system)  # the value set itself needs it
        if version and known:  # the system is known, this version is not
            out.caused_by.append(f"{system}|{version}")
        elif used and not version:
            out.caused_by.append(system)
        else:
            out.unknown_systems.append(system)
        so = "the code cannot be validated"
        local = ":" not in system  # a relative reference, not a canonical URL
        text = unknown_system_text(system, version, known, so, quoted=used or local)
        if local:
            text_local = "Coding.system must be an absolute reference, not a local reference"
            out.issues.append(
                Issue("error", "invalid", "invalid-data", text_local, path_of("system"))
            )
        if mismatch is not None:  # the include's version is unknown and not the value's
            out.issues.append(version_mismatch(system, version, mismatch, path_of("version")))
        out.issues.append(
            Issue("error", "not-found", "not-found", text, _element(coding, kind, "system"))
        )
        if vs_label is not None and not includes(request.valueset, system):
            out.issues.append(_not_in_vs(system, coding, kind, vs_label))  # certain: not used
        return out
    if stated is None and source.get(coding.code) is None:  # overloaded: a version having it
        source = source_with_code(request.valueset, system, coding.code, resources) or source
    out.version = source.version
    entry = source.get(coding.code)
    if entry is None and (coding.system is None or request.membership_only) and vs_label:
        out.system = out.version = None  # inferred from the value set: only not a member
        out.issues.append(_not_in_vs(system, coding, kind, vs_label))
        return out
    if entry is None and source.resource.get("content") == "fragment":
        label = f" version '{source.version}'" if source.version else ""
        out.issues.append(
            Issue(
                "warning",
                "code-invalid",
                "invalid-code",
                f"Unknown Code '{coding.code}' in the CodeSystem '{system}'{label} - note that "
                "the code system is labeled as a fragment, so the code may be valid in some "
                "other fragment",
                _element(coding, kind, "code"),
                quiet=True,
            )
        )  # https://hl7.org/fhir/R4/codesystem-content-mode.html#fragment: not known false
        out.ok = True
        return out
    if entry is None:
        label = f" version '{source.version}'" if source.version else ""
        if vs_label is not None:
            out.issues.append(_not_in_vs(system, coding, kind, vs_label))
        out.issues.append(
            Issue(
                "error",
                "code-invalid",
                "invalid-code",
                f"Unknown code '{coding.code}' in the CodeSystem '{system}'{label}",
                _element(coding, kind, "code"),
            )
        )
        return out
    out.inactive = entry.inactive
    whole = "code" if kind == "code" else coding.path
    if entry.code != coding.code:  # matched by case folding
        out.normalized = entry.code
        label = f"{source.url}|{source.version}" if source.version else source.url
        out.issues.append(case_issue(coding.code, entry, label, _element(coding, kind, "code")))
    member_display: str | None = None
    if request.valueset is not None:
        try:
            expansion = service.expansion(request.valueset, options, resources)
        except TerminologyError as error:
            if error.detail == "vs-invalid":
                raise  # the value set itself is broken: the whole request fails
            at = path_of("version") if error.detail == "version-error" else None
            out.issues.append(
                Issue("error", error.code, error.detail or "not-found", error.message, at)
            )
            out.display = entry.display
            out.undecided = True
            return out
        if expansion.status_notes is None:  # once per (cached) expansion
            expansion.status_notes = status_warnings(request.valueset, expansion.used, resources)
        if expansion.status_notes:
            out.issues += reference_issues(expansion.status_notes, expansion.used)
        member = expansion.members.get((source.url, entry.code))
        if member is not None and stated is None:  # includes of several versions: which one
            member = pick_member(expansion.candidates(source.url, entry.code), coding.display)
            found = member.entry()
            if member.source is not None and found is not None:
                source, entry, out.version = member.source, found, member.version
        if member is None:
            if entry.inactive and excludes_inactive(request.valueset, options.active_only):
                out.issues.append(not_active_issue(entry, _element(coding, kind, "code")))
                out.issues.append(inactive_issue(entry, whole))
            out.issues.append(_not_in_vs(system, coding, kind, vs_label))
            out.display = entry.display
            return out
        member_display = member.display
        flagged = deprecated_in_valueset(
            request.valueset, system, entry.code, vs_label, _element(coding, kind, "code")
        )
        if flagged is not None:
            out.issues.append(flagged)
    if entry.inactive:
        out.issues.append(inactive_issue(entry, whole))
    out.status = entry.status
    out.issues += deprecated_issues(entry, whole)
    spec = request.display_language or valueset_language(request.valueset)
    own_language = source.resource.get("language")
    out.display = display_for(member_display, entry, spec, own_language)
    if entry.abstract and not request.abstract:
        out.issues.append(
            Issue(
                "error",
                "business-rule",
                "code-rule",
                f"The code '{entry.code}' is abstract, and not allowed in this context",
                _element(coding, kind, "code"),
            )
        )
        return out
    out.member = True
    if coding.display is not None and not request.membership_only:
        issue = display_issue(
            coding.display,
            entry,
            own_language,
            member_display,
            parse_languages(spec),
            spec,
            f"{system}#{entry.code}",
            _element(coding, kind, "display"),
            request.lenient_display,
        )
        if issue is not None:
            out.issues.append(issue)
            if issue.severity != "information" and issue.detail != "display-comment":
                out.ok = request.lenient_display
                return out
    out.ok = True
    return out


def validate_code(
    service: TerminologyService,
    request: ValidateRequest,
    resources: TerminologyResources | None = None,
) -> dict[str, Any]:
    """Validate codings; the answer is the operation's Parameters resource.

    Answers are reused for a second (:class:`cmio.terminology.answers.AnswerCache`),
    keyed by every input and the resources' generation; calls with resources of their
    own (``tx-resource``) or an inline value set are always computed.
    """
    resources = resources or service.resources
    wanted = requested_supplements(request.valueset, request.supplements)
    resources = with_supplements(resources, wanted)[0]
    key = _answer_key(request, resources)
    if key is None:
        return _validate(service, request, resources)
    return service.answers.get(key, lambda: _validate(service, request, resources))


def _answer_key(request: ValidateRequest, resources: TerminologyResources) -> Hashable | None:
    if resources.overlay:
        return None
    if request.valueset is None:
        vs_key: tuple[Any, ...] | None = ("cs",)
    else:
        vs_key = valueset_key(request.valueset, resources)
        if vs_key is None:
            return None
    concept = request.codeable_concept
    return (
        vs_key,
        tuple(request.codings),
        request.kind,
        None if concept is None else orjson.dumps(concept),
        request.lenient_display,
        request.abstract,
        request.membership_only,
        request.display_language,
        request.options.key(),
        resources.generation,
        resources.concepts.generation if resources.concepts is not None else 0,
    )


def _validate(
    service: TerminologyService, request: ValidateRequest, resources: TerminologyResources
) -> dict[str, Any]:
    return answer(request, [_check(c, request, service, resources) for c in request.codings])
