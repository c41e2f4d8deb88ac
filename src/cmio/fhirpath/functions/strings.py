"""String manipulation functions (http://hl7.org/fhirpath/N1/#string-manipulation).

Also the FHIRPath 2.1 additions the R4 test suite uses: ``encode``,
``decode``, ``escape``, ``unescape``, ``trim``, ``split``, ``join``.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Callable
from typing import Any

from cmio.fhirpath.context import Context
from cmio.fhirpath.errors import FhirPathError
from cmio.fhirpath.functions.base import FunctionSpec, single_int, single_string, spec
from cmio.fhirpath.values import prim

__all__ = ["FUNCTIONS"]


def _string_fn(
    name: str, apply: Callable[..., Any], arity: int = 0, max_args: int | None = None
) -> FunctionSpec:
    """A function of a String input and String/Integer arguments; empty in, empty out."""

    def impl(ctx: Context, items: list[Any], *args: list[Any]) -> list[Any]:
        text = single_string(items, f"input of {name}()")
        if text is None:
            return []
        values = []
        for arg in args:
            if not arg:
                return []
            value = prim(arg[0]) if len(arg) == 1 else None
            if value is None:
                raise FhirPathError(f"{name}(): arguments must be single values")
            values.append(value)
        result = apply(text, *values)
        if result is None:
            return []
        return result if type(result) is list else [result]

    return spec(impl, arity, max_args)


def _substring(text: str, start: int, length: int | None = None) -> str | None:
    if type(start) is not int or start < 0 or start >= len(text):
        return None
    if length is None:
        return text[start:]
    return text[start : start + max(length, 0)]


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise FhirPathError(f"invalid regular expression {pattern!r}: {exc}") from None


def _replace_matches(text: str, pattern: str, substitution: str) -> str:
    if pattern == "":
        return text
    replacement = re.sub(r"\$(\d+)", r"\\\1", substitution.replace("\\", "\\\\"))
    return _regex(pattern).sub(replacement, text)


def _replace(text: str, pattern: str, substitution: str) -> str:
    if pattern == "":
        return substitution + substitution.join(text) + substitution
    return text.replace(pattern, substitution)


def _encode(text: str, encoding: str) -> str | None:
    data = text.encode()
    if encoding == "hex":
        return data.hex()
    if encoding == "base64":
        return base64.b64encode(data).decode()
    if encoding == "urlbase64":
        return base64.urlsafe_b64encode(data).decode()
    return None


def _decode(text: str, encoding: str) -> str | None:
    try:
        if encoding == "hex":
            return bytes.fromhex(text).decode()
        if encoding == "base64":
            return base64.b64decode(text, validate=True).decode()
        if encoding == "urlbase64":
            return base64.urlsafe_b64decode(text).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return None


def _escape(text: str, target: str) -> str | None:
    if target == "html":
        return html.escape(text, quote=True).replace("&#x27;", "'")
    if target == "json":
        return json.dumps(text, ensure_ascii=False)[1:-1]
    return None


def _unescape(text: str, target: str) -> str | None:
    if target == "html":
        return html.unescape(text)
    if target == "json":
        return _JSON_ESCAPE.sub(_json_unescape, text)
    return None


_JSON_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|[\"\\/bfnrt])")
_JSON_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


def _json_unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    return chr(int(code[1:], 16)) if len(code) == 5 else _JSON_ESCAPES[code]


def _join(ctx: Context, items: list[Any], separator: list[Any] | None = None) -> list[Any]:
    sep = single_string(separator or [], "join() separator") or ""
    values = [prim(item) for item in items]
    if any(type(v) is not str for v in values):
        raise FhirPathError("join() needs String items")
    return [sep.join(values)]


def _matches(full: bool) -> Callable[[str, str], bool]:
    def apply(text: str, pattern: str) -> bool:
        regex = _regex(pattern)
        return (regex.fullmatch(text) if full else regex.search(text)) is not None

    return apply


def _index_of(text: str, sub: str) -> int:
    return text.find(sub)


def _to_chars(ctx: Context, items: list[Any]) -> list[Any]:
    text = single_string(items, "input of toChars()")
    return [] if text is None else list(text)


def _length(ctx: Context, items: list[Any]) -> list[Any]:
    text = single_string(items, "input of length()")
    return [] if text is None else [len(text)]


def _substring_fn(
    ctx: Context, items: list[Any], start: list[Any], length: list[Any] | None = None
) -> list[Any]:
    text = single_string(items, "input of substring()")
    first = single_int(start, "substring() start")
    if text is None or first is None:
        return []
    count = single_int(length, "substring() length") if length is not None else None
    if length is not None and not length:
        count = None
    result = _substring(text, first, count)
    return [] if result is None else [result]


FUNCTIONS: dict[str, FunctionSpec] = {
    "indexOf": _string_fn("indexOf", _index_of, 1),
    "substring": spec(_substring_fn, 1, 2),
    "startsWith": _string_fn("startsWith", str.startswith, 1),
    "endsWith": _string_fn("endsWith", str.endswith, 1),
    "contains": _string_fn("contains", lambda text, sub: sub in text, 1),
    "upper": _string_fn("upper", str.upper),
    "lower": _string_fn("lower", str.lower),
    "replace": _string_fn("replace", _replace, 2),
    "matches": _string_fn("matches", _matches(False), 1),
    "matchesFull": _string_fn("matchesFull", _matches(True), 1),
    "replaceMatches": _string_fn("replaceMatches", _replace_matches, 2),
    "length": spec(_length),
    "toChars": spec(_to_chars),
    "encode": _string_fn("encode", _encode, 1),
    "decode": _string_fn("decode", _decode, 1),
    "escape": _string_fn("escape", _escape, 1),
    "unescape": _string_fn("unescape", _unescape, 1),
    "trim": _string_fn("trim", str.strip),
    "split": _string_fn("split", lambda text, sep: text.split(sep), 1),
    "join": spec(_join, 0, 1),
}
