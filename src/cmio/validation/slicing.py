"""Slicing: assigning repeated values to slices, and the slicing rules.

See https://hl7.org/fhir/R4/profiling.html#slicing and
https://hl7.org/fhir/R4/profiling.html#discriminator. Each value of a sliced
element goes to the first slice whose discriminators all match it:

* ``value`` / ``pattern``: the value at the discriminator path equals the slice's
  fixed value, contains its pattern, or (without either) is in the slice's
  required value set; for ``url`` on an extension slice, the extension's profile URL;
* ``exists``: the path has a value exactly when the slice requires one;
* ``type``: the value at the path has one of the slice's types;
* ``profile``: the value at the path conforms to one of the slice's type profiles.

Then slice cardinalities, ``closed`` and ``openAtEnd`` rules and ``ordered``
are checked. Also :func:`json_equal` and :func:`matches_pattern` for
``fixed[x]`` and ``pattern[x]`` (https://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.fixed_x_).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from cmio.validation.profiles import NO_VALUE, ElementRule

__all__ = [
    "Item",
    "SliceHost",
    "check_slicing",
    "json_equal",
    "matches_pattern",
    "values_at",
]

Item = tuple[Any, Any, str, str]
"""One value of an element: (JSON value, ``_name`` companion, location, type code)."""

_STEP = re.compile(r"""([A-Za-z_$][\w$]*)(?:\((?:'([^']*)'|([A-Za-z]*))\))?""")


class SliceHost(Protocol):
    """What slicing needs from the validation walk."""

    def report(self, severity: str, code: str, where: str, message: str) -> None:
        """Record an issue."""
        ...

    def in_valueset(self, valueset: str, value: Any, code: str) -> bool | None:
        """Whether a coded value is in a value set (None: unknown)."""
        ...

    def conforms(self, profile: str, value: Any, code: str) -> bool:
        """Whether a value conforms to a profile (no errors)."""
        ...

    def resolve(self, reference: Any) -> Any:
        """The resource a Reference points to (contained only), or None."""
        ...


def _number(value: Any) -> Decimal | None:
    if type(value) is bool or not isinstance(value, int | float | Decimal):
        return None
    return Decimal(repr(value)) if type(value) is float else Decimal(value)


def json_equal(value: Any, fixed: Any) -> bool:
    """Exact equality of FHIR JSON values (numbers compared as decimals)."""
    if type(fixed) is dict:
        if type(value) is not dict or value.keys() != fixed.keys():
            return False
        return all(json_equal(value[k], fixed[k]) for k in fixed)
    if type(fixed) is list:
        if type(value) is not list or len(value) != len(fixed):
            return False
        return all(json_equal(v, f) for v, f in zip(value, fixed, strict=True))
    number = _number(fixed)
    if number is not None:
        other = _number(value)
        return other is not None and other == number
    return type(value) is type(fixed) and bool(value == fixed)


def matches_pattern(value: Any, pattern: Any) -> bool:
    """Whether ``value`` contains ``pattern``: every property and array item of
    the pattern is present (https://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.pattern_x_)."""
    if type(pattern) is dict:
        if type(value) is not dict:
            return False
        return all(k in value and matches_pattern(value[k], p) for k, p in pattern.items())
    if type(pattern) is list:
        items = value if type(value) is list else [value]
        return all(any(matches_pattern(v, p) for v in items) for p in pattern)
    return json_equal(value, pattern)


def _members(value: Any, name: str) -> list[Any]:
    if type(value) is not dict:
        return []
    found = value.get(name)
    if found is None:
        size = len(name)
        found = [v for k, v in value.items() if k.startswith(name) and k[size : size + 1].isupper()]
        return [v for item in found for v in (item if type(item) is list else [item])]
    return list(found) if type(found) is list else [found]


def values_at(value: Any, path: str, resolve: Callable[[Any], Any] | None = None) -> list[Any]:
    """The JSON values a discriminator path selects from one value.

    Supports member names (choice elements by base name), ``$this``,
    ``extension('url')``, ``ofType(Type)`` and ``resolve()``.
    """
    current = [value]
    for step in path.split("."):
        match = _STEP.fullmatch(step.strip())
        if match is None:
            return []
        name, url, type_name = match.groups()
        if name == "$this":
            continue
        if name == "extension" and url is not None:
            current = [
                e
                for v in current
                for e in _members(v, "extension")
                if type(e) is dict and e.get("url") == url
            ]
        elif name == "ofType" and type_name:
            current = current  # JSON values carry their type in the parent's key
        elif name == "resolve":
            resolved = [resolve(v) if resolve is not None else None for v in current]
            current = [r for r in resolved if r is not None]
        else:
            current = [m for v in current for m in _members(v, name)]
    return current


def _targets(rule: ElementRule, path: str) -> list[ElementRule]:
    """The rules a discriminator path reaches inside a slice (through nested slices too)."""
    found = [rule]
    for step in path.split("."):
        match = _STEP.fullmatch(step.strip())
        if match is None:
            return []
        name, url, _ = match.groups()
        if name in ("$this", "ofType", "resolve"):
            continue
        following: list[ElementRule] = []
        for current in found:
            child = current.children.get(name)
            if child is None:
                continue
            if name == "extension" and url is not None:
                following += [s for s in child.slices if url in _extension_urls(s)]
            else:
                following.append(child)
                following += child.slices
        found = following
    return found


def _extension_urls(rule: ElementRule) -> list[str]:
    urls = list(rule.type_profiles.get("Extension", ()))
    url_rule = rule.children.get("url")
    if url_rule is not None and type(url_rule.fixed) is str:
        urls.append(url_rule.fixed)
    return urls


def _matches(host: SliceHost, kind: str, path: str, slice_rule: ElementRule, item: Item) -> bool:
    value, _, _, code = item
    if kind == "type" and path.strip() == "$this":
        return code in slice_rule.type_codes
    if kind in ("value", "pattern") and path == "url" and "Extension" in slice_rule.type_profiles:
        return type(value) is dict and value.get("url") in _extension_urls(slice_rule)
    targets = _targets(slice_rule, path)
    found = values_at(value, path, host.resolve)
    if kind == "exists":
        required = any(t.min > 0 for t in targets)
        forbidden = any(t.max == 0 for t in targets)
        return (not required or bool(found)) and (not forbidden or not found)
    if kind in ("value", "pattern"):
        for target in targets:
            if target.fixed is not NO_VALUE:
                return any(json_equal(v, target.fixed) for v in found)
            if target.pattern is not NO_VALUE:
                return any(matches_pattern(v, target.pattern) for v in found)
        for target in targets:
            if target.binding is not None and target.type_codes:
                code_type = target.type_codes[0]
                return any(host.in_valueset(target.binding[1], v, code_type) is True for v in found)
        return True  # nothing to discriminate on
    if kind == "type":
        codes = {c for t in targets for c in t.type_codes}
        kinds = _types_at(value, path, host.resolve)
        return bool(kinds) and (
            not codes or all(k in codes or k[:1].lower() + k[1:] in codes for k in kinds)
        )
    if kind == "profile":
        profiles = [p for t in targets for ps in t.type_profiles.values() for p in ps]
        return bool(found) and any(all(host.conforms(p, v, code) for v in found) for p in profiles)
    return False


def _types_at(value: Any, path: str, resolve: Callable[[Any], Any]) -> list[str]:
    """The types of the values at a path: resource types, or a choice's JSON suffix."""
    head, _, last = path.strip().rpartition(".")
    if last.startswith(("resolve(", "ofType(")) or last == "$this":
        found = values_at(value, path, resolve)
        return [str(v["resourceType"]) for v in found if type(v) is dict and "resourceType" in v]
    kinds: list[str] = []
    for parent in values_at(value, head, resolve) if head else [value]:
        if type(parent) is not dict:
            continue
        for key in parent:
            if key.startswith(last) and key[len(last) : len(last) + 1].isupper():
                kinds.append(key[len(last) :])
    return kinds


def _slice_of(host: SliceHost, rule: ElementRule, item: Item) -> int | None:
    slicing = rule.slicing
    assert slicing is not None
    for index, slice_rule in enumerate(rule.slices):
        if all(_matches(host, k, p, slice_rule, item) for k, p in slicing.discriminators):
            return index
    return None


def check_slicing(
    host: SliceHost, rule: ElementRule, items: list[Item], where: str
) -> list[tuple[ElementRule, Item]]:
    """Assign the values of a sliced element to slices and check the slicing rules.

    Args:
        host: the validation walk (reports issues, evaluates profiles and codes).
        rule: the sliced element's rule.
        items: its values.
        where: the element's location, for cardinality messages.

    Returns:
        (slice rule, value) for each value that belongs to a slice.
    """
    slicing = rule.slicing
    assert slicing is not None
    assigned: list[tuple[ElementRule, Item]] = []
    counts = [0] * len(rule.slices)
    last = -1
    seen_unmatched = False
    for item in items:
        index = _slice_of(host, rule, item)
        if index is None:
            seen_unmatched = True
            if slicing.rules == "closed":
                message = (
                    f"This element does not match any known slice of {rule.id} "
                    "and the slicing is closed"
                )
                host.report("error", "structure", item[2], message)
            continue
        slice_rule = rule.slices[index]
        counts[index] += 1
        assigned.append((slice_rule, item))
        if slicing.rules == "openAtEnd" and seen_unmatched:
            message = (
                f"Slice {slice_rule.slice_name!r} follows values that match no slice (openAtEnd)"
            )
            host.report("error", "structure", item[2], message)
        if slicing.ordered and index < last:
            message = f"Slice {slice_rule.slice_name!r} is out of order (the slicing of {rule.id} is ordered)"
            host.report("error", "structure", item[2], message)
        last = max(last, index)
    for slice_rule, count in zip(rule.slices, counts, strict=True):
        if count < slice_rule.min:
            message = (
                f"Slice {slice_rule.slice_name!r} of {rule.id}: minimum required = "
                f"{slice_rule.min}, but only found {count}"
            )
            host.report("error", "required", where, message)
        if slice_rule.max is not None and count > slice_rule.max:
            message = (
                f"Slice {slice_rule.slice_name!r} of {rule.id}: maximum allowed = "
                f"{slice_rule.max}, but found {count}"
            )
            host.report("error", "structure", where, message)
    return assigned
