"""Build the compact :class:`~cmio.model.types.Model` from the R4 definitions.

Inputs (all from hl7.fhir.r4.core 4.0.1):

* StructureDefinitions of the base types: ``derivation`` ``specialization`` (or
  none, for Resource and Element), kind ``primitive-type``, ``complex-type`` or
  ``resource``; profiles (``constraint``) and logical models are skipped. Their
  snapshots list every element with its inherited ones
  (https://hl7.org/fhir/R4/elementdefinition.html).
* SearchParameters carrying the ``structuredefinition-standards-status``
  extension: the 1,375 standard ones (https://hl7.org/fhir/R4/searchparameter-registry.html).
* CompartmentDefinitions for the 5 compartments
  (https://hl7.org/fhir/R4/compartmentdefinition.html).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmio.model.package import file_sha256, iter_package_resources
from cmio.model.types import (
    K_BACKBONE,
    K_BASE64,
    K_BOOLEAN,
    K_COMPLEX,
    K_DECIMAL,
    K_INTEGER,
    K_POSITIVE_INT,
    K_RESOURCE,
    K_SHADOW,
    K_STRING,
    K_UNSIGNED_INT,
    K_XHTML,
    CompartmentDef,
    ElementDef,
    JsonProperty,
    Model,
    Required,
    SearchParamDef,
    TypeDef,
)

__all__ = ["build_model", "build_model_from_resources"]

_TYPE_KINDS = frozenset({"primitive-type", "complex-type", "resource"})
_SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
_EXT_FHIR_TYPE = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_EXT_REGEX = "http://hl7.org/fhir/StructureDefinition/regex"
_EXT_STANDARDS_STATUS = (
    "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"
)
_PRIMITIVE_KINDS = {
    "boolean": K_BOOLEAN,
    "integer": K_INTEGER,
    "positiveInt": K_POSITIVE_INT,
    "unsignedInt": K_UNSIGNED_INT,
    "decimal": K_DECIMAL,
    "base64Binary": K_BASE64,
    "xhtml": K_XHTML,
}
_INLINE_TYPES = frozenset({"BackboneElement", "Element"})
_i = sys.intern


@dataclass(slots=True)
class _Raw:
    """One snapshot element, before ElementDef objects exist."""

    path: str
    parent: str
    key: str
    name: str
    min: int
    max: int | None
    types: tuple[str, ...]
    choice: bool
    targets: tuple[str, ...]
    is_modifier: bool
    is_summary: bool
    content_reference: str | None


def build_model(tarball: Path, *, package_sha256: str | None = None) -> Model:
    """Read the definitions tarball and build the model (under a second).

    Args:
        tarball: path of ``hl7.fhir.r4.core.tgz``.
        package_sha256: its SHA-256, if already known.

    Returns:
        The model.
    """
    resources = iter_package_resources(
        tarball, ("StructureDefinition", "SearchParameter", "CompartmentDefinition")
    )
    return build_model_from_resources(
        resources, package_sha256=package_sha256 or file_sha256(tarball)
    )


def build_model_from_resources(
    resources: Iterable[dict[str, Any]], *, package_sha256: str
) -> Model:
    """Build the model from parsed definition resources.

    Args:
        resources: StructureDefinition, SearchParameter and CompartmentDefinition
            resources (others are ignored).
        package_sha256: recorded in the model.

    Returns:
        The model.
    """
    sds: list[dict[str, Any]] = []
    sps: list[dict[str, Any]] = []
    cds: list[dict[str, Any]] = []
    for res in resources:
        rtype = res.get("resourceType")
        if rtype == "StructureDefinition":
            sds.append(res)
        elif rtype == "SearchParameter":
            sps.append(res)
        elif rtype == "CompartmentDefinition":
            cds.append(res)
    types = _build_types(sds)
    search_params = _build_search_params(sps)
    resource_names = [n for n, t in types.items() if t.kind == "resource"]
    fhir_version = next((str(sd["fhirVersion"]) for sd in sds if sd.get("fhirVersion")), "4.0.1")
    return Model(
        fhir_version=fhir_version,
        package_sha256=package_sha256,
        types=types,
        resource_types=frozenset(n for n in resource_names if not types[n].abstract),
        search_params=search_params,
        compartments=_build_compartments(cds),
        search_index=_search_index(types, resource_names, search_params),
    )


def _is_base_type(sd: dict[str, Any]) -> bool:
    return (
        sd.get("kind") in _TYPE_KINDS
        and sd.get("derivation") != "constraint"
        and bool(sd.get("snapshot", {}).get("element"))
    )


def _ext(holder: dict[str, Any], url: str) -> Any:
    for ext in holder.get("extension", ()):
        if ext.get("url") == url:
            for key, value in ext.items():
                if key.startswith("value"):
                    return value
    return None


def _type_code(sd: dict[str, Any], path: str, ftype: dict[str, Any]) -> str:
    code = str(ftype["code"])
    if not code.startswith(_SYSTEM_PREFIX):
        return _i(code)
    last = path.rpartition(".")[2]
    if sd["kind"] == "resource" and path.count(".") == 1 and last == "id":
        return "id"  # Resource.id is an id (https://hl7.org/fhir/R4/resource.html#id)
    if sd["kind"] == "primitive-type" and last == "value":
        return _i("System." + code[len(_SYSTEM_PREFIX) :])
    fhir_type = _ext(ftype, _EXT_FHIR_TYPE)
    return _i(str(fhir_type)) if fhir_type else "string"


def _raw_elements(
    sd: dict[str, Any], profile_types: dict[str, str]
) -> tuple[dict[str, Any], list[_Raw]]:
    """Return the root element and the other snapshot elements as _Raw records."""
    elements = sd["snapshot"]["element"]
    raws: list[_Raw] = []
    for elem in elements[1:]:
        path: str = elem["path"]
        parent, _, key = path.rpartition(".")
        choice = key.endswith("[x]")
        codes: list[str] = []
        targets: list[str] = []
        for ftype in elem.get("type", ()):
            code = _type_code(sd, path, ftype)
            if code not in codes:
                codes.append(code)
            for url in ftype.get("targetProfile", ()):
                target = profile_types.get(url, url.rpartition("/")[2])
                if target not in targets:
                    targets.append(_i(target))
        cref = elem.get("contentReference")
        max_ = elem.get("max", "*")
        raws.append(
            _Raw(
                path=path,
                parent=parent,
                key=_i(key),
                name=_i(key[:-3] if choice else key),
                min=int(elem.get("min", 0)),
                max=None if max_ == "*" else int(max_),
                types=tuple(codes),
                choice=choice,
                targets=() if "Resource" in targets else tuple(targets),
                is_modifier=bool(elem.get("isModifier", False)),
                is_summary=bool(elem.get("isSummary", False)),
                content_reference=cref.partition("#")[2] if cref else None,
            )
        )
    return elements[0], raws


def _value_regex(sd: dict[str, Any]) -> re.Pattern[str] | None:
    for elem in sd["snapshot"]["element"]:
        if elem["path"] == sd["type"] + ".value":
            for ftype in elem.get("type", ()):
                pattern = _ext(ftype, _EXT_REGEX)
                if pattern:
                    # ASCII classes, as in the Java/XML Schema regexes the spec was written for.
                    return re.compile(str(pattern), re.ASCII)
    return None


def _json_names(raw: _Raw, types: tuple[str, ...], primitives: frozenset[str]) -> tuple[str, ...]:
    names: list[str] = []
    for code in types:
        jname = raw.name + code[:1].upper() + code[1:] if raw.choice else raw.name
        names.append(jname)
        if code in primitives:
            names.append("_" + jname)
    return tuple(names)


def _build_types(sds: list[dict[str, Any]]) -> dict[str, TypeDef]:
    base_sds = [sd for sd in sds if _is_base_type(sd)]
    profile_types = {str(sd["url"]): str(sd["type"]) for sd in sds if sd.get("type")}
    kinds = {str(sd["type"]): str(sd["kind"]) for sd in base_sds}
    primitives = frozenset(n for n, k in kinds.items() if k == "primitive-type")

    parsed = [(sd, *_raw_elements(sd, profile_types)) for sd in base_sds]
    raw_by_path = {raw.path: raw for _, _, raws in parsed for raw in raws}
    children: dict[str, dict[str, ElementDef]] = {}
    indexes: dict[str, dict[str, JsonProperty]] = {}
    required: dict[str, Required] = {}
    for _sd, root, raws in parsed:
        structures = {root["path"]} | {raw.parent for raw in raws}
        for path in structures:
            children[path] = {}
            indexes[path] = {}
        mandatory: dict[str, list[tuple[str, tuple[str, ...]]]] = {p: [] for p in structures}
        for raw in raws:
            if raw.min > 0:
                codes = _effective_types(raw, raw_by_path)
                mandatory[raw.parent].append((raw.key, _json_names(raw, codes, primitives)))
        for path, entries in mandatory.items():
            required[path] = tuple(entries)

    types: dict[str, TypeDef] = {}
    for sd, _root, _raws in parsed:
        name = _i(str(sd["type"]))
        base_url = sd.get("baseDefinition")
        types[name] = TypeDef(
            name=name,
            kind=str(sd["kind"]),
            abstract=bool(sd.get("abstract", False)),
            base=_i(base_url.rpartition("/")[2]) if base_url else None,
            url=str(sd["url"]),
            elements=children[name],
            regex=_value_regex(sd) if name in primitives else None,
            json_index=indexes[name],
            required=required[name],
        )

    for _sd, _root, raws in parsed:
        for raw in raws:
            struct = raw.content_reference or (raw.path if raw.path in children else None)
            elem = ElementDef(
                name=raw.name,
                path=raw.path,
                min=raw.min,
                max=raw.max,
                types=_effective_types(raw, raw_by_path),
                choice=raw.choice,
                target_types=raw.targets,
                children=children[struct] if struct else None,
                is_modifier=raw.is_modifier,
                is_summary=raw.is_summary,
                content_reference=raw.content_reference,
                json_index=indexes[struct] if struct else None,
                required=required[struct] if struct else (),
            )
            children[raw.parent][raw.key] = elem
            _index_element(elem, indexes[raw.parent], types, kinds)
    return types


def _effective_types(raw: _Raw, raw_by_path: dict[str, _Raw]) -> tuple[str, ...]:
    if raw.content_reference and not raw.types:
        return raw_by_path[raw.content_reference].types
    return raw.types


def _index_element(
    elem: ElementDef,
    index: dict[str, JsonProperty],
    types: dict[str, TypeDef],
    kinds: dict[str, str],
) -> None:
    """Add the JSON property names of ``elem`` to its parent's json_index."""
    repeats = elem.max != 1
    element_type = types["Element"]
    for code in elem.types:
        jname = _i(elem.json_name(code))
        kind = kinds.get(code)
        prop: tuple[Any, ...]
        if kind == "primitive-type" or code.startswith("System."):
            shadow = _i("_" + jname)
            tdef = types.get(code)
            regex = tdef.regex if tdef else None
            prop = (_PRIMITIVE_KINDS.get(code, K_STRING), shadow, regex, None, ())
            twin = (element_type.json_index, element_type.required)
            index[shadow] = JsonProperty(elem, code, K_SHADOW, repeats, jname, None, *twin)
        elif kind == "resource":
            prop = (K_RESOURCE, None, None, None, ())
        elif elem.json_index is not None and (code in _INLINE_TYPES or elem.content_reference):
            prop = (K_BACKBONE, None, None, elem.json_index, elem.required)
        else:
            prop = (K_COMPLEX, None, None, types[code].json_index, types[code].required)
        kind_code, partner, regex, members, required = prop
        index[jname] = JsonProperty(
            elem, code, kind_code, repeats, partner, regex, members, required
        )


def _build_search_params(sps: list[dict[str, Any]]) -> tuple[SearchParamDef, ...]:
    params: list[SearchParamDef] = []
    for sp in sps:
        if _ext(sp, _EXT_STANDARDS_STATUS) is None:
            continue
        params.append(
            SearchParamDef(
                url=str(sp["url"]),
                code=_i(str(sp["code"])),
                name=str(sp.get("name", sp["code"])),
                base=tuple(_i(str(b)) for b in sp.get("base", ())),
                type=_i(str(sp["type"])),
                expression=sp.get("expression"),
                xpath_usage=sp.get("xpathUsage"),
                target=tuple(_i(str(t)) for t in sp.get("target", ())),
                modifiers=tuple(str(m) for m in sp.get("modifier", ())),
                comparators=tuple(str(c) for c in sp.get("comparator", ())),
                multiple_or=sp.get("multipleOr"),
                multiple_and=sp.get("multipleAnd"),
                components=tuple(
                    (str(c["definition"]), str(c["expression"])) for c in sp.get("component", ())
                ),
            )
        )
    params.sort(key=lambda p: p.url)
    return tuple(params)


def _search_index(
    types: dict[str, TypeDef], resource_names: list[str], params: tuple[SearchParamDef, ...]
) -> dict[str, dict[str, SearchParamDef]]:
    by_base: dict[str, dict[str, SearchParamDef]] = {}
    for param in params:
        for base in param.base:
            by_base.setdefault(base, {})[param.code] = param
    index: dict[str, dict[str, SearchParamDef]] = {}
    for name in resource_names:
        chain: list[str] = []
        current: str | None = name
        while current is not None:
            chain.append(current)
            current = types[current].base
        merged: dict[str, SearchParamDef] = {}
        for ancestor in reversed(chain):
            merged.update(by_base.get(ancestor, {}))
        index[name] = merged
    return index


def _build_compartments(cds: list[dict[str, Any]]) -> dict[str, CompartmentDef]:
    compartments: dict[str, CompartmentDef] = {}
    for cd in cds:
        code = str(cd["code"])
        # The standard definitions have ids patient, encounter, relatedPerson...;
        # the package also holds an example (id "example") for Device.
        if cd.get("id") != code[:1].lower() + code[1:]:
            continue
        compartments[code] = CompartmentDef(
            code=code,
            url=str(cd["url"]),
            resources={
                _i(str(r["code"])): tuple(str(p) for p in r["param"])
                for r in cd.get("resource", ())
                if r.get("param")
            },
        )
    return compartments
