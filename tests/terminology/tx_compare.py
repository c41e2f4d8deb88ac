"""Pattern comparison of terminology answers with the tx-ecosystem expected files.

The rules are those the suite's README describes (``../shared/conformance/tx-ecosystem``):
expected files are patterns with markers (``$optional$``, ``$optional-properties$``,
``$count-arrays$``, ``$id$``, ``$external:N:fragments$`` ...); arrays match without
regard to order; extra properties in the answer fail; ``meta``, narrative and
extensions outside a whitelist are dropped from the answer first.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["compare", "normalise"]

_KEEP_EXTENSIONS = (
    "http://hl7.org/fhir/StructureDefinition/codesystem-alternate",
    "http://hl7.org/fhir/StructureDefinition/codesystem-conceptOrder",
    "http://hl7.org/fhir/StructureDefinition/codesystem-label",
    "http://hl7.org/fhir/StructureDefinition/coding-sctdescid",
    "http://hl7.org/fhir/StructureDefinition/itemWeight",
    "http://hl7.org/fhir/StructureDefinition/rendering-style",
    "http://hl7.org/fhir/StructureDefinition/rendering-xhtml",
    "http://hl7.org/fhir/StructureDefinition/translation",
    "http://hl7.org/fhir/StructureDefinition/valueset-concept-definition",
    "http://hl7.org/fhir/StructureDefinition/valueset-conceptOrder",
    "http://hl7.org/fhir/StructureDefinition/valueset-deprecated",
    "http://hl7.org/fhir/StructureDefinition/valueset-label",
    "http://hl7.org/fhir/StructureDefinition/valueset-supplement",
    "http://hl7.org/fhir/StructureDefinition/alternate-code-use",
    "http://hl7.org/fhir/StructureDefinition/alternate-code-status",
    "http://hl7.org/fhir/test",
)

_PATTERNS = {
    "$id$": re.compile(r"[A-Za-z0-9\-.]{1,64}"),
    "$uuid$": re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    "$instant$": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"),
    "$date$": re.compile(r"\d{4}(-\d\d(-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?)?)?)?"),
    "$token$": re.compile(r"[0-9a-zA-Z_][0-9a-zA-Z_.\-]*"),
    "$url$": re.compile(r"https?://\S+"),
    "$semver$": re.compile(r"\d+\.\d+\.\d+(-[0-9A-Za-z.\-]+)?(\+[0-9A-Za-z.\-]+)?"),
}


_R5_PROPERTY = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.property",
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.contains.property",
)
"""R4 cross-version extensions for R5's ``expansion.property`` and ``contains.property``: the
answer is turned into R5 before the comparison, as the suite's runner does for R4 servers."""


def _r5(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` with its R5 cross-version property extensions as R5 ``property`` elements."""
    extensions = value.get("extension")
    if not isinstance(extensions, list) or not any(
        isinstance(e, dict) and e.get("url") in _R5_PROPERTY for e in extensions
    ):
        return value
    properties = []
    for extension in extensions:
        if isinstance(extension, dict) and extension.get("url") in _R5_PROPERTY:
            item: dict[str, Any] = {}
            for part in extension.get("extension") or ():
                item.update({k: v for k, v in part.items() if k.startswith("value")})
                if part.get("url") in ("code", "uri"):
                    item[part["url"]] = item.pop(next(k for k in part if k.startswith("value")))
            properties.append(item)
    rest = [e for e in extensions if not (isinstance(e, dict) and e.get("url") in _R5_PROPERTY)]
    out = {k: v for k, v in value.items() if k != "extension"}
    if rest:
        out["extension"] = rest
    out["property"] = properties
    return out


def normalise(value: Any, in_compose: bool = False) -> Any:
    """Drop ``meta``, ``text`` and unlisted extensions (not inside ``compose``); R5 cross-version
    property extensions become R5 ``property`` elements."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in _r5(value).items():
            if key in ("meta", "text") and "resourceType" in value:
                continue
            if key in ("extension", "modifierExtension") and not in_compose:
                kept = [
                    normalise(e)
                    for e in item
                    if isinstance(e, dict) and str(e.get("url", "")).startswith(_KEEP_EXTENSIONS)
                ]
                if kept:
                    out[key] = kept
                continue
            out[key] = normalise(item, in_compose or key == "compose")
        return out
    if isinstance(value, list):
        return [normalise(v, in_compose) for v in value]
    return value


def _optional(item: Any, modes: frozenset[str]) -> bool:
    if not isinstance(item, dict) or "$optional$" not in item:
        return False
    flag = item["$optional$"]
    if flag is True:
        return True
    if not isinstance(flag, str):
        return False
    if flag.startswith("warning:"):
        return True
    if flag.startswith("version:"):
        return flag == "version:4"
    if flag.startswith("!"):
        return flag[1:] not in modes
    return flag in modes


def _string(expected: str, actual: Any, path: str) -> str | None:
    if not isinstance(actual, str):
        return f"{path}: expected a string, got {actual!r}"
    if expected == "$$":
        return None
    if "$version$" in expected and expected != "$version$":
        expected = expected.replace("$version$", "4.0.1")
    if expected in _PATTERNS:
        ok = _PATTERNS[expected].fullmatch(actual) is not None
        return None if ok else f"{path}: {actual!r} does not match {expected}"
    if expected == "$string$":
        return None if actual.strip() else f"{path}: empty string"
    if expected == "$version$":
        return None if actual == "4.0.1" else f"{path}: {actual!r} is not 4.0.1"
    if expected.startswith("$choice:") and expected.endswith("$"):
        choices = expected[8:-1].split("|")
        return None if actual in choices else f"{path}: {actual!r} not one of {choices}"
    if expected.startswith(("$fragments:", "$external:")) and expected.endswith("$"):
        body = expected[1:-1]
        if body.startswith("fragments:"):
            fragments = body[10:]
        else:
            parts = body.split(":", 2)
            fragments = parts[2] if len(parts) == 3 else ""
        lower = actual.lower()
        missing = [f for f in fragments.split("|") if f and f.lower() not in lower]
        return f"{path}: {actual!r} lacks {missing}" if missing else None
    if "<div" in expected and "<div" in actual:
        return None
    if sorted(expected.split("; ")) == sorted(actual.split("; ")):
        return None  # message parts in any order
    return None if expected == actual else f"{path}: expected {expected!r}, got {actual!r}"


def compare(expected: Any, actual: Any, modes: frozenset[str], path: str = "") -> str | None:
    """None when ``actual`` matches the pattern ``expected``, else the first difference."""
    if isinstance(expected, str):
        return _string(expected, actual, path)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {actual!r}"
        optional = [*expected.get("$optional-properties$", ()), *expected.get("$optional", ())]
        counted = expected.get("$count-arrays$", ())
        for key, want in expected.items():
            if key.startswith("$"):  # a marker ("$optional" is how some fixtures spell the list)
                continue
            if key not in actual:
                if "*" in optional or key in optional:
                    continue
                if isinstance(want, list) and all(_optional(w, modes) for w in want):
                    continue
                return f"{path}.{key}: missing"
            if key in counted:
                if not isinstance(actual[key], list) or len(actual[key]) != len(want):
                    return f"{path}.{key}: expected {len(want)} items"
                continue
            found = compare(want, actual[key], modes, f"{path}.{key}")
            if found:
                return found
        extra = [k for k in actual if k not in expected]
        return f"{path}: unexpected {extra}" if extra else None
    if isinstance(expected, list):
        return _array(expected, actual, modes, path)
    if expected != actual or type(expected) is not type(actual):
        return f"{path}: expected {expected!r}, got {actual!r}"
    return None


def _array(expected: list[Any], actual: Any, modes: frozenset[str], path: str) -> str | None:
    if not isinstance(actual, list):
        return f"{path}: expected an array, got {actual!r}"
    used = [False] * len(actual)
    for index, want in enumerate(expected):
        first_error = None
        for position, item in enumerate(actual):
            if used[position]:
                continue
            error = compare(_strip(want), item, modes, f"{path}[{index}]")
            if error is None:
                used[position] = True
                break
            same = isinstance(want, dict) and isinstance(item, dict)
            if same and want.get("name", 0) == item.get("name", 1):
                first_error = error
            first_error = first_error or error
        else:
            if not _optional(want, modes):
                return first_error or f"{path}[{index}]: missing {want!r}"
    if not all(used):
        extra = [a for a, u in zip(actual, used, strict=True) if not u]
        return f"{path}: unexpected items {extra!r}"[:600]
    return None


def _strip(item: Any) -> Any:
    if isinstance(item, dict) and "$optional$" in item:
        return {k: v for k, v in item.items() if k != "$optional$"}
    return item
