"""Types, the clock, and the FHIR-specific functions.

``is``/``as``/``ofType``/``type()`` (http://hl7.org/fhirpath/N1/#types),
``today()``/``now()``/``timeOfDay()`` (http://hl7.org/fhirpath/N1/#utility-functions)
and the FHIR additions ``extension()``, ``hasValue()``, ``getValue()``,
``resolve()``, ``conformsTo()``, ``memberOf()``, ``htmlChecks()``
(http://hl7.org/fhir/R4/fhirpath.html#functions).
"""

from __future__ import annotations

from typing import Any

from cmio.fhirpath.context import Context
from cmio.fhirpath.errors import FhirPathError
from cmio.fhirpath.fhirtypes import ANY, Node
from cmio.fhirpath.functions.base import FunctionSpec, single_string, spec
from cmio.fhirpath.temporal import Date, DateTime, Time
from cmio.fhirpath.values import prim, single, system_name, type_name

__all__ = ["FUNCTIONS", "matches_type"]

_CORE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"


def matches_type(item: Any, candidates: tuple[str, ...], exact: bool = False) -> bool:
    """Whether an item is of one of the qualified types (or a subtype).

    With ``exact``, a FHIR primitive matches only its own type: ``as(string)`` does
    not cast a ``code`` (the FHIR R4 test suite, testFHIRPathAsFunction11).
    """
    if type(item) is Node:
        info = item.type
        if exact and info.kind == "primitive":
            return info.qualified in candidates
        ancestors = info.ancestors
        return any(candidate in ancestors for candidate in candidates)
    name = system_name(item)
    return name is not None and f"System.{name}" in candidates


def _is(ctx: Context, items: list[Any], candidates: tuple[str, ...]) -> list[Any]:
    item = single(items, "input of is")
    return [] if item is None else [matches_type(item, candidates)]


def _as(ctx: Context, items: list[Any], candidates: tuple[str, ...]) -> list[Any]:
    item = single(items, "input of as")
    return [item] if item is not None and matches_type(item, candidates, exact=True) else []


def _of_type(ctx: Context, items: list[Any], candidates: tuple[str, ...]) -> list[Any]:
    return [item for item in items if matches_type(item, candidates, exact=True)]


def _type(ctx: Context, items: list[Any]) -> list[Any]:
    out = []
    for item in items:
        namespace, name = type_name(item)
        info: dict[str, Any] = {"namespace": namespace, "name": name}
        if type(item) is Node and item.type.base:
            info["baseType"] = item.type.base
        out.append(Node(info, ANY))
    return out


def _extension(ctx: Context, items: list[Any], url: list[Any]) -> list[Any]:
    wanted = single_string(url, "extension() url")
    info = ctx.types.get("Extension")
    if wanted is None or info is None:
        return []
    out: list[Any] = []
    for item in items:
        if type(item) is not Node:
            continue
        holder = item.value if type(item.value) is dict else item.shadow
        extensions = holder.get("extension") if type(holder) is dict else None
        if type(extensions) is list:
            out.extend(
                Node(ext, info)
                for ext in extensions
                if type(ext) is dict and ext.get("url") == wanted
            )
    return out


def _has_value(ctx: Context, items: list[Any]) -> list[Any]:
    if len(items) != 1:
        return [False]
    item = items[0]
    if type(item) is Node:
        return [item.type.kind == "primitive" and item.value is not None]
    return [system_name(item) is not None]


def _get_value(ctx: Context, items: list[Any]) -> list[Any]:
    item = single(items, "input of getValue()")
    value = prim(item)
    return [] if value is None or type(value) is Node else [value]


def _today(ctx: Context, items: list[Any]) -> list[Any]:
    now = ctx.now()
    return [Date((now.year, now.month, now.day))]


def _now(ctx: Context, items: list[Any]) -> list[Any]:
    now = ctx.now()
    offset = now.utcoffset()
    tz = int(offset.total_seconds() // 60) if offset is not None else 0
    parts = (now.year, now.month, now.day, now.hour, now.minute, now.second)
    return [DateTime(parts, now.microsecond // 1000 * 1000, 3, tz)]


def _time_of_day(ctx: Context, items: list[Any]) -> list[Any]:
    now = ctx.now()
    return [Time((now.hour, now.minute, now.second), now.microsecond // 1000 * 1000, 3)]


def _resources(ctx: Context) -> list[dict[str, Any]]:
    """The root resource, the entries of a root Bundle, and their contained resources."""
    roots = [item.value for item in ctx.resource if type(item) is Node and type(item.value) is dict]
    found: list[dict[str, Any]] = []
    for root in roots:
        found.append(root)
        if root.get("resourceType") == "Bundle":
            for entry in root.get("entry") or ():
                resource = entry.get("resource") if type(entry) is dict else None
                if type(resource) is dict:
                    found.append(resource)
    return found


def _lookup(ctx: Context, reference: str) -> dict[str, Any] | None:
    resources = _resources(ctx)
    if reference.startswith("#"):
        wanted = reference[1:]
        for resource in resources:
            for contained in resource.get("contained") or ():
                if type(contained) is dict and contained.get("id") == wanted:
                    return contained
        return None
    if "/_history/" in reference:
        reference = reference.split("/_history/")[0]
    for root in (r for r in resources if r.get("resourceType") == "Bundle"):
        for entry in root.get("entry") or ():
            if type(entry) is not dict or type(entry.get("resource")) is not dict:
                continue
            resource = entry["resource"]
            full_url = entry.get("fullUrl")
            local = f"{resource.get('resourceType')}/{resource.get('id')}"
            if (
                full_url == reference
                or reference == local
                or (type(full_url) is str and full_url.endswith("/" + reference))
            ):
                return resource  # type: ignore[no-any-return]
    if ctx.resolver is not None:
        result = ctx.resolver(reference)
        return result if type(result) is dict else None
    return None


def _resolve(ctx: Context, items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        value = prim(item)
        if type(value) is Node and type(value.value) is dict:
            value = value.value.get("reference")
        if type(value) is not str:
            continue
        resource = _lookup(ctx, value)
        if resource is not None:
            out.append(Node(resource, ctx.types.resource(resource)))
    return out


def _conforms_to(ctx: Context, items: list[Any], url: list[Any]) -> list[Any]:
    profile = single_string(url, "conformsTo() url")
    item = single(items, "input of conformsTo()")
    if profile is None or item is None:
        return []
    name = profile[len(_CORE_PROFILE) :] if profile.startswith(_CORE_PROFILE) else None
    if name is None or ctx.types.get(name) is None:
        raise FhirPathError(
            f"conformsTo(): cannot check conformance to {profile!r} (only core types)"
        )
    return [type(item) is Node and f"FHIR.{name}" in item.type.ancestors]


def _member_of(ctx: Context, items: list[Any], valueset: list[Any]) -> list[Any]:
    url = single_string(valueset, "memberOf() value set")
    item = single(items, "input of memberOf()")
    if url is None or item is None or ctx.terminology is None:
        return []
    value = prim(item)
    code = {"code": value} if type(value) is str else value.value if type(value) is Node else None
    if type(code) is not dict:
        return []
    result = ctx.terminology.member_of(code, url)
    return [] if result is None else [result]


FUNCTIONS: dict[str, FunctionSpec] = {
    "is": spec(_is, 1, kind="type"),
    "as": spec(_as, 1, kind="type"),
    "ofType": spec(_of_type, 1, kind="type"),
    "type": spec(_type),
    "today": spec(_today),
    "now": spec(_now),
    "timeOfDay": spec(_time_of_day),
    "extension": spec(_extension, 1),
    "hasValue": spec(_has_value),
    "getValue": spec(_get_value),
    "resolve": spec(_resolve),
    "conformsTo": spec(_conforms_to, 1),
    "memberOf": spec(_member_of, 1),
    "htmlChecks": spec(lambda ctx, items: [True]),
}
