"""One validation pass: a resource's JSON walked against compiled element rules.

The *base* pass walks every value with the core definitions of its type and
evaluates their invariants and bindings (structure itself is checked by
:mod:`cmio.validation.structural`). A *profile* pass walks only where the
profile adds something (https://hl7.org/fhir/R4/profiling.html): cardinality,
types and reference targets, ``fixed[x]``/``pattern[x]``, bindings, slicing,
invariants, and the profiles of datatypes and extensions. Extensions whose
definition is known are checked against it in the base pass too
(https://hl7.org/fhir/R4/extensibility.html#validation).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from cmio.fhirpath.context import TerminologyProvider as FhirPathTerminology
from cmio.fhirpath.errors import FhirPathError
from cmio.fhirpath.fhirtypes import FhirTypes, Node, TypeInfo
from cmio.validation.bindings import check_binding, in_valueset
from cmio.validation.invariants import Invariant, evaluate_invariant
from cmio.validation.profiles import (
    NO_VALUE,
    CompiledProfile,
    ElementRule,
    element_type_info,
)
from cmio.validation.slicing import Item, check_slicing, json_equal, matches_pattern
from cmio.validation.structural import Issue
from cmio.validation.terminology import TerminologyProvider

__all__ = ["Services", "Walk"]

_REFERENCE_TYPE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")
_RESOURCE_CODES = frozenset({"Resource", "DomainResource"})


class Services(Protocol):
    """What a pass needs from the :class:`~cmio.validation.validator.Validator`."""

    types: FhirTypes
    terminology: TerminologyProvider
    fhirpath_terminology: FhirPathTerminology

    def profile(self, url: str) -> CompiledProfile | None:
        """A compiled StructureDefinition by URL."""
        ...

    def base_profile(self, type_name: str) -> CompiledProfile | None:
        """The compiled core definition of a type."""
        ...

    def is_resource_type(self, name: str) -> bool:
        """Whether ``name`` is a resource type."""
        ...


class Walk:
    """A validation pass over one resource (a new one per contained resource).

    Args:
        services: the validator.
        out: where issues go.
        resource: the resource (``%resource`` for invariants).
        profile_mode: a profile pass rather than the base pass.
        root_node: the outermost resource (``%rootResource``) for a contained one.
    """

    __slots__ = (
        "out",
        "profile_mode",
        "resource",
        "resource_node",
        "root_node",
        "services",
        "types",
    )

    def __init__(
        self,
        services: Services,
        out: list[Issue],
        resource: dict[str, Any],
        profile_mode: bool,
        root_node: Node | None = None,
    ) -> None:
        self.services = services
        self.types = services.types
        self.out = out
        self.resource = resource
        self.resource_node = Node(resource, services.types.resource(resource))
        self.profile_mode = profile_mode
        self.root_node = root_node

    # -- SliceHost -------------------------------------------------------------------
    def report(self, severity: str, code: str, where: str, message: str) -> None:
        """Record an issue."""
        self.out.append(Issue(severity, code, where, message))

    def in_valueset(self, valueset: str, value: Any, code: str) -> bool | None:
        """Value set membership of a coded value."""
        return in_valueset(self.services.terminology, valueset, value, code)

    def conforms(self, profile: str, value: Any, code: str) -> bool:
        """Whether ``value`` has no errors against ``profile``."""
        compiled = self.services.profile(profile)
        if compiled is None or type(value) is not dict:
            return False
        scratch: list[Issue] = []
        resource = value if "resourceType" in value else self.resource
        walk = Walk(self.services, scratch, resource, True)
        walk.apply(compiled.root, value, None, "", code)
        return not any(i.severity in ("error", "fatal") for i in scratch)

    def resolve(self, reference: Any) -> Any:
        """A contained resource a Reference points to (``#id``), or None."""
        ref = reference.get("reference") if type(reference) is dict else None
        if type(ref) is not str or not ref.startswith("#"):
            return None
        for contained in self.resource.get("contained", ()):
            if type(contained) is dict and contained.get("id") == ref[1:]:
                return contained
        return None

    # -- the walk --------------------------------------------------------------------
    def root(self, profile: CompiledProfile, path: str) -> None:
        """Validate the resource against a compiled definition."""
        self.apply(profile.root, self.resource, None, path, profile.type)

    def apply(self, rule: ElementRule, value: Any, shadow: Any, path: str, code: str) -> None:
        """Check one value against a root rule (resource, datatype or extension definition)."""
        invariants = rule.invariants
        if self.root_node is not None and value is self.resource:
            # A contained resource has no narrative of its own (https://hl7.org/fhir/R4/references.html#contained).
            invariants = tuple(i for i in invariants if i.key != "dom-6")
        if invariants:
            self._invariants(invariants, rule.focus, value, shadow, path, code)
        if type(value) is dict:
            self.object(rule, value, path)

    def object(self, rule: ElementRule, obj: dict[str, Any], path: str) -> None:
        """Check the properties of a JSON object against a rule's children."""
        if self.profile_mode:
            self._grouped(rule, obj, path)
            return
        json_map = rule.json_map
        item = self.item
        for key, value in obj.items():
            entry = json_map.get(key)
            if entry is None:
                continue
            child, code, partner = entry
            if key[0] == "_":
                if partner is None or partner in obj:
                    continue  # read with its value
                shadow, value, key = value, None, partner
            else:
                shadow = obj.get(partner) if partner is not None else None
                if shadow is None and child.trivial:
                    continue
            if type(value) is list or type(shadow) is list:
                values = value if type(value) is list else ()
                shadows = shadow if type(shadow) is list else ()
                for i in range(max(len(values), len(shadows))):
                    v = values[i] if i < len(values) else None
                    s = shadows[i] if i < len(shadows) else None
                    if v is not None or s is not None:
                        item(child, v, s, f"{path}.{key}[{i}]", code)
            else:
                item(child, value, shadow, f"{path}.{key}", code)

    def _grouped(self, rule: ElementRule, obj: dict[str, Any], path: str) -> None:
        """:meth:`object` for profiles: values grouped per element, for cardinality and slicing."""
        json_map = rule.json_map
        groups: dict[ElementRule, list[Item]] = {}
        for key, value in obj.items():
            entry = json_map.get(key)
            if entry is None:
                continue
            child, code, partner = entry
            if key[0] == "_":
                if partner is None or partner in obj:
                    continue  # read with its value
                shadow, value, key = value, None, partner
            else:
                shadow = obj.get(partner) if partner is not None else None
            items = groups.get(child)
            if items is None:
                items = groups[child] = []
            if type(value) is list or type(shadow) is list:
                values = value if type(value) is list else ()
                shadows = shadow if type(shadow) is list else ()
                for i in range(max(len(values), len(shadows))):
                    v = values[i] if i < len(values) else None
                    s = shadows[i] if i < len(shadows) else None
                    if v is not None or s is not None:
                        items.append((v, s, f"{path}.{key}[{i}]", code))
            else:
                items.append((value, shadow, f"{path}.{key}", code))
        for child in rule.card_children:
            self._cardinality(child, len(groups.get(child, ())), f"{path}.{child.name}")
        for child in rule.sliced_children:
            if child not in groups:
                check_slicing(self, child, [], f"{path}.{child.name}")
        for child, items in groups.items():
            self.element(child, items, f"{path}.{child.name}")

    def _cardinality(self, rule: ElementRule, count: int, where: str) -> None:
        if rule.check_min and count < rule.min:
            message = f"{rule.id}: minimum required = {rule.min}, but only found {count}"
            self.report("error", "required", where, message)
        if rule.check_max and rule.max is not None and count > rule.max:
            message = f"{rule.id}: maximum allowed = {rule.max}, but found {count}"
            self.report("error", "structure", where, message)

    def element(self, rule: ElementRule, items: list[Item], where: str) -> None:
        """Check the values of one element (and its slices)."""
        if self.profile_mode:
            if not rule.active:
                return
            if rule.slicing is not None and rule.slices:
                for slice_rule, item in check_slicing(self, rule, items, where):
                    self.item(slice_rule, *item)
        for item in items:
            self.item(rule, *item)

    def item(self, rule: ElementRule, value: Any, shadow: Any, path: str, code: str) -> None:
        """Check one value against an element rule, then its content."""
        if self.profile_mode and not self._profile_checks(rule, value, path, code):
            return
        if rule.binding is not None:
            check_binding(self.services.terminology, rule.binding, value, code, path, self.out)
        if type(value) is dict:
            if code in _RESOURCE_CODES or self.services.is_resource_type(code):
                self._resource(rule, value, path, code)
                return
            content = rule if rule.children else self._content(rule, value, code)
            invariants = rule.invariants
            if content is not None and content is not rule and content.invariants:
                merged = rule.merged.get(id(content))
                if merged is None:
                    keys = {i.key for i in invariants}
                    extra = tuple(i for i in content.invariants if i.key not in keys)
                    merged = rule.merged[id(content)] = invariants + extra
                invariants = merged
            if invariants:
                focus = rule.focus if content is rule or rule.focus is not None else None
                self._invariants(invariants, focus, value, shadow, path, code)
            if content is not None:
                self.object(content, value, path)
            if code == "Extension" and not self.profile_mode:
                self._extension(value, path)
            return
        if rule.invariants:
            self._invariants(rule.invariants, rule.focus, value, shadow, path, code)
        if type(shadow) is dict and not self.profile_mode:
            base = self.services.base_profile(code)
            if base is not None:
                self.object(base.root, shadow, path)

    def _profile_checks(self, rule: ElementRule, value: Any, path: str, code: str) -> bool:
        if rule.check_types and code not in rule.type_codes:
            allowed = ", ".join(rule.type_codes)
            message = f"{rule.id}: type {code} is not allowed here (allowed: {allowed})"
            self.report("error", "structure", path, message)
            return False
        if rule.fixed is not NO_VALUE and not json_equal(value, rule.fixed):
            message = f"{rule.id}: value must be exactly {_show(rule.fixed)}, found {_show(value)}"
            self.report("error", "value", path, message)
        if rule.pattern is not NO_VALUE and not matches_pattern(value, rule.pattern):
            message = f"{rule.id}: value must match the pattern {_show(rule.pattern)}, found {_show(value)}"
            self.report("error", "value", path, message)
        if rule.target_types and code == "Reference" and type(value) is dict:
            self._target(rule, value, path)
        return True

    def _target(self, rule: ElementRule, value: dict[str, Any], path: str) -> None:
        ref = value.get("reference")
        target: str | None = None
        if type(ref) is str and ref.startswith("#"):
            resolved = self.resolve(value)
            target = resolved.get("resourceType") if resolved is not None else None
        elif type(ref) is str:
            match = _REFERENCE_TYPE.search(ref.partition("?")[0])
            target = match.group(1) if match else None
        if target is not None and target not in rule.target_types:
            allowed = " | ".join(rule.target_types)
            message = f"{rule.id}: the reference points to a {target}, expected {allowed}"
            self.report("error", "structure", f"{path}.reference", message)

    def _content(self, rule: ElementRule, value: dict[str, Any], code: str) -> ElementRule | None:
        """The rule for the content of a datatype value without inline children."""
        for url in rule.type_profiles.get(code, ()):
            compiled = self.services.profile(url)
            if compiled is not None and (not self.profile_mode or not compiled.is_base):
                return compiled.root
        if self.profile_mode:
            return None
        base = self.services.base_profile(code)
        return base.root if base is not None else None

    def _extension(self, value: dict[str, Any], path: str) -> None:
        url = value.get("url")
        compiled = self.services.profile(url) if type(url) is str else None
        if compiled is not None and not compiled.is_base and compiled.type == "Extension":
            Walk(self.services, self.out, self.resource, True, self.root_node).apply(
                compiled.root, value, None, path, "Extension"
            )

    def _resource(self, rule: ElementRule, value: dict[str, Any], path: str, code: str) -> None:
        rtype = value.get("resourceType")
        if type(rtype) is not str:
            return
        # %rootResource is the container of a contained resource; a Bundle entry or a
        # Parameters resource is its own root (https://hl7.org/fhir/R4/fhirpath.html#variables).
        root = (self.root_node or self.resource_node) if rule.name == "contained" else None
        if self.profile_mode:
            for url in rule.type_profiles.get(code, ()):
                compiled = self.services.profile(url)
                if compiled is not None and not compiled.is_base:
                    Walk(self.services, self.out, value, True, root).root(compiled, path)
            return
        base = self.services.base_profile(rtype)
        if base is not None:
            Walk(self.services, self.out, value, False, root).root(base, path)

    def _invariants(
        self,
        invariants: tuple[Invariant, ...],
        focus: TypeInfo | None,
        value: Any,
        shadow: Any,
        path: str,
        code: str,
    ) -> None:
        node: Node | None = None
        for invariant in invariants:
            if invariant.native is not None:
                if not invariant.native(value, shadow):
                    message = f"Constraint failed: {invariant.key}: {invariant.human}"
                    self.report(invariant.severity, "invariant", path, message)
                continue
            if node is None:
                info = focus if focus is not None else self._type_info(value, code)
                if info is None:
                    return
                if type(value) is dict or value is None:
                    node = Node(value, info, shadow)
                else:
                    node = Node(info.load(value), info, shadow)
            try:
                ok = evaluate_invariant(
                    invariant,
                    self.types,
                    node,
                    self.resource_node,
                    root=self.root_node,
                    terminology=self.services.fhirpath_terminology,
                )
            except (FhirPathError, ArithmeticError, ValueError, TypeError) as exc:
                message = f"{invariant.key}: the constraint could not be evaluated: {exc}"
                self.report("warning", "processing", path, message)
                continue
            if not ok:
                message = f"Constraint failed: {invariant.key}: {invariant.human}"
                self.report(invariant.severity, "invariant", path, message)

    def _type_info(self, value: Any, code: str) -> TypeInfo | None:
        if type(value) is dict and "resourceType" in value:
            return self.types.resource(value)
        return element_type_info(self.types, code, code)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
