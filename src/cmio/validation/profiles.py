"""StructureDefinition snapshots compiled into element rules.

A snapshot (https://hl7.org/fhir/R4/structuredefinition.html, "snapshot") lists
every element of a type or profile with its cardinality, types, fixed and
pattern values, binding, constraints and slicing
(https://hl7.org/fhir/R4/profiling.html). :func:`compile_profile` turns it into
a tree of :class:`ElementRule` keyed by JSON property name, so validating a
resource walks its JSON once with dict lookups.

For a profile (``derivation = constraint``) each rule records only what the
profile adds to the base definition (``ElementDefinition.base``): a higher
minimum, a lower maximum, fewer types or type profiles, a new binding, new
constraints; what the base already requires is left to the base pass
(structural validation and the base invariants and bindings), so an issue is
reported once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cmio.fhirpath.fhirtypes import FhirTypes, TypeInfo
from cmio.model.types import Model
from cmio.validation.invariants import STRUCTURAL, InvariantCompiler
from cmio.validation.packages import CORE_PREFIX, strip_version
from cmio.validation.profile_rules import NO_VALUE, CompiledProfile, ElementRule, Slicing

__all__ = [
    "NO_VALUE",
    "SYSTEM_PREFIX",
    "CompiledProfile",
    "ElementRule",
    "Slicing",
    "compile_profile",
    "element_type_info",
]

SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
"""Type codes of primitive values (``Element.id``, ``Extension.url``, ``string.value``)."""

_BACKBONE = frozenset({"BackboneElement", "Element"})
BaseLookup = Callable[[str], dict[str, Any] | None]
"""Base element definition by path (``Coding.system``), or None."""


def _max(value: Any) -> int | None:
    if value == "*" or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _type_code(entry: dict[str, Any]) -> str:
    code = str(entry.get("code", ""))
    if code.startswith(SYSTEM_PREFIX):
        for ext in entry.get("extension", ()):
            if type(ext) is dict and type(ext.get("valueUrl")) is str:
                return str(ext["valueUrl"])  # structuredefinition-fhir-type
        return code
    return code


def _fixed_and_pattern(element: dict[str, Any]) -> tuple[Any, Any]:
    fixed: Any = NO_VALUE
    pattern: Any = NO_VALUE
    for key, value in element.items():
        if key.startswith("fixed") and key[5:6].isupper():
            fixed = value
        elif key.startswith("pattern") and key[7:8].isupper():
            pattern = value
    return fixed, pattern


def _target_type(url: str, resolve_type: Callable[[str], str | None]) -> str | None:
    url = strip_version(url)
    if url.startswith(CORE_PREFIX) and "/" not in url[len(CORE_PREFIX) :]:
        name = url[len(CORE_PREFIX) :]
        if name[:1].isupper():
            return name
    return resolve_type(url)


def element_type_info(types: FhirTypes, path: str, code: str) -> TypeInfo | None:
    """The FHIRPath type of the values of an element with one type.

    Backbone elements (``Observation.component``) are typed by their path in the
    base model; datatypes and resources by name.
    """
    if code not in _BACKBONE:
        if code.startswith(SYSTEM_PREFIX):
            return None
        return types.get(code)
    names = path.split(".")
    owner = types.model.types.get(names[0])
    index = owner.json_index if owner is not None else None
    prop = None
    for name in names[1:]:
        prop = index.get(name) if index is not None else None
        if prop is None:
            return None
        index = prop.members
    return types.child_type(prop) if prop is not None else None


class _Builder:
    def __init__(
        self,
        model: Model,
        types: FhirTypes,
        invariants: InvariantCompiler,
        base_element: BaseLookup,
        resolve_type: Callable[[str], str | None],
        is_base: bool,
    ) -> None:
        self.model = model
        self.types = types
        self.invariants = invariants
        self.base_element = base_element
        self.resolve_type = resolve_type
        self.is_base = is_base

    def rule(self, element: dict[str, Any], element_id: str) -> ElementRule:
        path = str(element.get("path", element_id))
        last = element_id.rpartition(".")[2]
        name, _, slice_name = last.partition(":")
        choice = name.endswith("[x]")
        types = [t for t in element.get("type", ()) if type(t) is dict]
        codes = tuple(dict.fromkeys(_type_code(t) for t in types))
        type_profiles: dict[str, tuple[str, ...]] = {}
        targets: list[str] = []
        for entry in types:
            profiles = tuple(strip_version(p) for p in entry.get("profile", ()) if type(p) is str)
            if profiles:
                type_profiles[_type_code(entry)] = profiles
            for target in entry.get("targetProfile", ()):
                resolved = _target_type(target, self.resolve_type) if type(target) is str else None
                if resolved is not None and resolved not in ("Resource", "DomainResource"):
                    targets.append(resolved)
        fixed, pattern = _fixed_and_pattern(element)
        binding = None
        raw_binding = element.get("binding")
        if type(raw_binding) is dict and raw_binding.get("strength") in ("required", "extensible"):
            valueset = raw_binding.get("valueSet")
            if type(valueset) is str:
                binding = (str(raw_binding["strength"]), valueset)
        focus = element_type_info(self.types, path, codes[0]) if len(codes) == 1 else None
        if "." not in path:
            focus = self.types.get(path)  # the root: a resource, datatype or Extension
        elif not codes and element.get("contentReference"):
            focus = element_type_info(self.types, path, "BackboneElement")
        base = None if self.is_base else self._base(element)
        constraints = [c for c in element.get("constraint", ()) if type(c) is dict]
        if base is not None:
            known = {c.get("key") for c in base.get("constraint", ()) if type(c) is dict}
            constraints = [c for c in constraints if c.get("key") not in known]
            if binding is not None and base.get("binding", {}).get("valueSet") == binding[1]:
                binding = None
        compiled = []
        for constraint in constraints:
            if STRUCTURAL.get(str(constraint.get("key"))) == constraint.get("expression"):
                continue
            invariant = self.invariants.compile(constraint, focus)
            if invariant is not None:
                compiled.append(invariant)
        raw_slicing = element.get("slicing")
        slicing = None
        if type(raw_slicing) is dict:
            discriminators = tuple(
                (str(d.get("type")), str(d.get("path")))
                for d in raw_slicing.get("discriminator", ())
                if type(d) is dict
            )
            slicing = Slicing(
                discriminators, bool(raw_slicing.get("ordered")), str(raw_slicing.get("rules"))
            )
        rule = ElementRule(
            id=element_id,
            path=path,
            name=name[:-3] if choice else name,
            slice_name=slice_name or None,
            min=int(element.get("min", 0)),
            max=_max(element.get("max", "*")),
            type_codes=codes,
            type_profiles=type_profiles,
            target_types=tuple(dict.fromkeys(targets)),
            fixed=fixed,
            pattern=pattern,
            binding=binding,
            invariants=tuple(compiled),
            slicing=slicing,
            focus=focus,
        )
        ref = element.get("contentReference")
        if type(ref) is str:
            rule.content_reference = ref.lstrip("#")
        if not self.is_base:
            self._profile_checks(rule, element, base)
        return rule

    def _base(self, element: dict[str, Any]) -> dict[str, Any] | None:
        base = element.get("base")
        path = base.get("path") if type(base) is dict else None
        return self.base_element(path) if type(path) is str else None

    def _profile_checks(
        self, rule: ElementRule, element: dict[str, Any], base: dict[str, Any] | None
    ) -> None:
        declared = element.get("base")
        base_min = declared.get("min", 0) if type(declared) is dict else 0
        base_max = _max(declared.get("max", "*")) if type(declared) is dict else None
        rule.check_min = rule.slice_name is None and rule.min > int(base_min or 0)
        rule.check_max = (
            rule.slice_name is None
            and rule.max is not None
            and (base_max is None or rule.max < base_max)
        )
        base_types = [t for t in (base or {}).get("type", ()) if type(t) is dict]
        base_codes = {_type_code(t) for t in base_types}
        base_targets = {
            strip_version(p)
            for t in base_types
            for p in t.get("targetProfile", ())
            if type(p) is str
        }
        own_targets = {
            strip_version(p)
            for t in element.get("type", ())
            if type(t) is dict
            for p in t.get("targetProfile", ())
            if type(p) is str
        }
        narrower = bool(rule.type_codes) and set(rule.type_codes) != base_codes
        if not narrower and own_targets == base_targets:
            rule.target_types = ()
        rule.check_types = narrower


def compile_profile(
    structure_definition: dict[str, Any],
    model: Model,
    types: FhirTypes,
    invariants: InvariantCompiler,
    base_element: BaseLookup,
    resolve_type: Callable[[str], str | None],
) -> CompiledProfile:
    """Compile a StructureDefinition snapshot into element rules.

    See https://hl7.org/fhir/R4/profiling.html and https://hl7.org/fhir/R4/validation.html.

    Args:
        structure_definition: the StructureDefinition (with a snapshot).
        model: the R4 model.
        types: the FHIRPath types (for invariants and element types).
        invariants: compiles the constraints.
        base_element: base element definition by path, for what a profile adds.
        resolve_type: the type a profile URL constrains (for reference targets).

    Returns:
        The compiled profile.

    Raises:
        ValueError: if it has no snapshot.
        cmio.fhirpath.FhirPathError: if a constraint does not compile.
    """
    snapshot = structure_definition.get("snapshot")
    elements = snapshot.get("element") if type(snapshot) is dict else None
    if not elements:
        raise ValueError(f"{structure_definition.get('url')}: StructureDefinition has no snapshot")
    is_base = structure_definition.get("derivation") != "constraint"
    builder = _Builder(model, types, invariants, base_element, resolve_type, is_base)
    by_id: dict[str, ElementRule] = {}
    root: ElementRule | None = None
    for element in elements:
        element_id = str(element.get("id") or element.get("path"))
        rule = builder.rule(element, element_id)
        by_id[element_id] = rule
        if root is None:
            root = rule
            continue
        parent_id, _, last = element_id.rpartition(".")
        name, _, slice_name = last.partition(":")
        if slice_name:
            resliced = slice_name.rpartition("/")[0]
            base_id = f"{parent_id}.{name}" + (f":{resliced}" if resliced else "")
            sliced = by_id.get(base_id)
            if sliced is not None:
                sliced.slices.append(rule)
            continue
        parent = by_id.get(parent_id)
        if parent is not None:
            parent.children[rule.name] = rule
    assert root is not None
    datatypes = tuple(
        name for name, t in model.types.items() if t.kind != "resource" and not t.abstract
    )
    for rule in by_id.values():
        _finish(rule, by_id, datatypes)
    if not is_base:
        _mark_active(root, set())
    else:
        for rule in by_id.values():
            rule.trivial = (
                bool(rule.type_codes)
                and all(c[:1].islower() or c.startswith(SYSTEM_PREFIX) for c in rule.type_codes)
                and rule.binding is None
                and all(i.native is not None and i.key == "ele-1" for i in rule.invariants)
            )
    url = str(structure_definition.get("url", ""))
    name = str(structure_definition.get("name") or structure_definition.get("title") or url)
    rtype = str(structure_definition.get("type", root.path))
    return CompiledProfile(url, name, rtype, is_base, root, by_id)


def _finish(rule: ElementRule, by_id: dict[str, ElementRule], datatypes: tuple[str, ...]) -> None:
    """Resolve content references and build the JSON property map.

    A choice element maps the JSON names of every datatype, so that a value of a
    type the profile removed is found (and reported) rather than skipped.
    """
    if rule.content_reference is not None and not rule.children:
        target = next(
            (
                r
                for r in by_id.values()
                if r.path == rule.content_reference and r.slice_name is None
            ),
            None,
        )
        if target is not None:
            rule.children = target.children
            if not rule.type_codes:
                rule.type_codes = ("BackboneElement",)
    for child in rule.children.values():
        codes = child.type_codes or ("BackboneElement",)
        choice = child.id.rpartition(".")[2].partition(":")[0].endswith("[x]")
        if choice and child.check_types:
            codes = tuple(dict.fromkeys((*codes, *datatypes)))
        for code in codes:
            key = child.name + code[:1].upper() + code[1:] if choice else child.name
            primitive = code[:1].islower() or code.startswith(SYSTEM_PREFIX)
            partner = "_" + key if primitive else None
            rule.json_map[key] = (child, code, partner)
            if partner is not None:
                rule.json_map[partner] = (child, code, key)
    rule.card_children = tuple(c for c in rule.children.values() if c.check_min or c.check_max)
    rule.sliced_children = tuple(
        c
        for c in rule.children.values()
        if c.slicing is not None and any(s.min > 0 for s in c.slices)
    )


def _mark_active(rule: ElementRule, seen: set[int]) -> bool:
    if id(rule) in seen:
        return rule.active
    seen.add(id(rule))
    rule.active = True  # provisional, for cycles through content references
    own = (
        rule.check_min
        or rule.check_max
        or rule.check_types
        or rule.fixed is not NO_VALUE
        or rule.pattern is not NO_VALUE
        or rule.binding is not None
        or bool(rule.invariants)
        or bool(rule.target_types)
        or (rule.slicing is not None and bool(rule.slices))
        or any(not p.startswith(CORE_PREFIX) or _is_profile(p) for p in _all(rule))
    )
    below = [_mark_active(c, seen) for c in rule.children.values()]
    below += [_mark_active(s, seen) for s in rule.slices]
    rule.active = own or any(below)
    return rule.active


def _all(rule: ElementRule) -> list[str]:
    return [p for profiles in rule.type_profiles.values() for p in profiles]


def _is_profile(url: str) -> bool:
    """A core URL that names a profile or extension rather than a base type."""
    name = url[len(CORE_PREFIX) :]
    return not name[:1].isupper() or name in ("SimpleQuantity", "MoneyQuantity")
