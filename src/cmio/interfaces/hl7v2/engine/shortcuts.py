"""Bundle rewrites that spare the store work it would do for nothing.

The mapping names a message's patient and visit by identifier: ``POST Patient`` with
``ifNoneExist: identifier=system|value`` (results, orders) or ``PUT
Patient?identifier=system|value`` (ADT), each a conditional search in the store
(https://hl7.org/fhir/R4/http.html#ccreate, #cond-update). Once the store has answered
which resource carries an identifier, the engine knows it; this module turns such an
entry, for a resource read back and checked to still carry the identifier, into:

* nothing, when it is a conditional create (the resource exists) or an update that would
  change nothing (same content as stored, ``meta.versionId``/``lastUpdated`` aside): the
  entry is dropped and the Bundle's references to its ``fullUrl`` point at the resource;
* ``PUT Type/id``, when it is an update that changes something.

The caller (the store sink) does the reads inside the message's own transaction, so the
rewritten Bundle means what the original meant against that state (one difference: a
second resource given the same identifier outside the engine would make the original
conditional fail with 412 and is not looked for).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

__all__ = [
    "IdentifierCondition",
    "carries_identifier",
    "identifier_condition",
    "replace_references",
    "same_content",
]

_ESCAPED = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class IdentifierCondition:
    """An entry conditional on one identifier: ``create`` (ifNoneExist) or ``update`` (PUT)."""

    kind: str
    resource_type: str
    system: str
    value: str

    @property
    def key(self) -> tuple[str, str, str]:
        """The cache key: type, system, value."""
        return (self.resource_type, self.system, self.value)


def _parse(query: str) -> tuple[str, str] | None:
    """``identifier=system|value`` (search-escaped, percent-encoded) as (system, value)."""
    if not query.startswith("identifier=") or "&" in query:
        return None
    system, sep, value = query[len("identifier=") :].partition("|")
    if not sep or not value or "|" in value:
        return None

    def plain(part: str) -> str:
        return _ESCAPED.sub(r"\1", unquote(part))

    return plain(system), plain(value)


def identifier_condition(entry: dict[str, Any]) -> IdentifierCondition | None:
    """The identifier condition of a transaction entry, or None for any other entry."""
    request = entry.get("request") or {}
    method, url = request.get("method"), str(request.get("url") or "")
    if method == "POST" and "ifNoneExist" in request and "/" not in url and "?" not in url:
        found = _parse(str(request["ifNoneExist"]))
        return None if found is None else IdentifierCondition("create", url, *found)
    if method == "PUT" and "?" in url and not request.get("ifMatch"):
        rtype, _, query = url.partition("?")
        found = _parse(query)
        return None if found is None else IdentifierCondition("update", rtype, *found)
    return None


def carries_identifier(resource: dict[str, Any], system: str, value: str) -> bool:
    """Whether a resource has ``identifier`` with this system and value."""
    return any(
        isinstance(i, dict) and i.get("value") == value and (i.get("system") or "") == system
        for i in resource.get("identifier") or ()
    )


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    meta = {k: v for k, v in (resource.get("meta") or {}).items()
            if k not in ("versionId", "lastUpdated")}  # fmt: skip
    if meta:
        out["meta"] = meta
    return out


def same_content(stored: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether writing ``new`` over ``stored`` would change nothing but the version."""
    return _content(stored) == _content(new)


def replace_references(raw: bytes, targets: dict[str, str]) -> bytes:
    """Compact JSON (as orjson writes it) with each ``"reference":"<key>"`` of ``targets``
    pointing at its value instead (a byte replacement: no walk over the resources)."""
    for old, new in targets.items():
        raw = raw.replace(b'"reference":' + orjson.dumps(old), b'"reference":' + orjson.dumps(new))
    return raw
