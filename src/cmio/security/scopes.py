"""SMART App Launch v2 clinical scopes: parsing and questions a grant answers.

A clinical scope is ``context/Type.permissions[?query]``
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#clinical-scope-syntax):

* context: ``patient`` (confined to the launch patient's compartment), ``user``
  (what the user may see) or ``system`` (a backend service);
* a resource type or ``*``;
* permissions ``c r u d s`` in that order (v2), or the v1 suffixes ``read`` (= ``rs``),
  ``write`` (= ``cud``) and ``*`` (= ``cruds``);
* an optional query that narrows the scope to the resources matching it
  (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#finer-grained-resource-constraints-using-search-parameters),
  e.g. ``patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory``.

Other scopes (``openid``, ``fhirUser``, ``launch/patient``, ``offline_access`` ...) are
kept aside as :attr:`ScopeSet.other`; malformed clinical scopes grant nothing and are
listed in :attr:`ScopeSet.invalid`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

__all__ = [
    "CONTEXTS",
    "PERMISSIONS",
    "Context",
    "Narrowing",
    "Scope",
    "ScopeError",
    "ScopeSet",
    "parse_scope",
]

Context = Literal["patient", "user", "system"]
CONTEXTS: tuple[Context, ...] = ("patient", "user", "system")
PERMISSIONS = "cruds"
"""The v2 permissions in their canonical order: create, read, update, delete, search."""

_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"(patient|user|system)/([A-Za-z]{1,64}|\*)\.([a-z*]+)(?:\?(.*))?", re.DOTALL)
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(?::[A-Za-z0-9_\-]+)?(?:\.[A-Za-z0-9_\-.:]+)?")

Narrowing = tuple[tuple[str, str], ...]
"""The search parameters of one query-narrowed scope, AND-ed: ``(("category", "...|laboratory"),)``."""


class ScopeError(ValueError):
    """A clinical scope string that does not follow the SMART syntax."""


@dataclass(frozen=True, slots=True)
class Scope:
    """One clinical scope.

    Attributes:
        context: ``patient``, ``user`` or ``system``.
        resource_type: a resource type or ``*``.
        permissions: a subset of ``c r u d s``.
        query: the narrowing search parameters (empty: not narrowed).
    """

    context: Context
    resource_type: str
    permissions: frozenset[str]
    query: Narrowing = ()

    def covers(self, permission: str, resource_type: str) -> bool:
        """Whether this scope grants ``permission`` on ``resource_type``."""
        return permission in self.permissions and self.resource_type in ("*", resource_type)

    def text(self) -> str:
        """The scope in v2 syntax (permissions in canonical order, query re-joined)."""
        perms = "".join(p for p in PERMISSIONS if p in self.permissions)
        base = f"{self.context}/{self.resource_type}.{perms}"
        if not self.query:
            return base
        return base + "?" + "&".join(f"{k}={v}" for k, v in self.query)


def parse_scope(text: str) -> Scope:
    """Parse one clinical scope (v2, or v1 mapped to v2).

    Raises:
        ScopeError: the text is not a clinical scope, its permissions are unknown,
            repeated or out of the ``cruds`` order, or its query is malformed.
    """
    match = _SCOPE.fullmatch(text)
    if match is None:
        raise ScopeError(f"{text!r} is not a clinical scope (context/Type.permissions)")
    context, rtype, perms, query = match.groups()
    if rtype != "*" and not rtype[0].isupper():
        raise ScopeError(f"{text!r}: {rtype!r} is not a resource type")
    letters = _V1.get(perms, perms)
    if "*" in letters or not _in_order(letters):
        raise ScopeError(
            f"{text!r}: permissions must be read, write, * or letters of 'cruds' in that order"
        )
    narrowing: Narrowing = ()
    if query is not None:
        if perms in _V1:
            raise ScopeError(f"{text!r}: a query narrows v2 scopes only")
        narrowing = _parse_query(text, query)
    ctx: Context = "patient" if context == "patient" else "user" if context == "user" else "system"
    return Scope(ctx, rtype, frozenset(letters), narrowing)


def _in_order(letters: str) -> bool:
    """Non-empty, no repeats, each a permission, in ``cruds`` order."""
    if not letters:
        return False
    positions = [PERMISSIONS.find(ch) for ch in letters]
    return all(p >= 0 for p in positions) and positions == sorted(set(positions))


def _parse_query(text: str, query: str) -> Narrowing:
    if not query:
        raise ScopeError(f"{text!r}: empty query")
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    if not pairs or len(pairs) != query.count("&") + 1:
        raise ScopeError(f"{text!r}: the query must be name=value pairs joined by &")
    for name, value in pairs:
        if not _PARAM.fullmatch(name) or not value:
            raise ScopeError(f"{text!r}: malformed search parameter {name!r}={value!r}")
        if name.startswith("_") and name not in ("_id", "_lastUpdated", "_tag", "_security"):
            raise ScopeError(f"{text!r}: {name} cannot narrow a scope")
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class ScopeSet:
    """The clinical scopes of a grant and the questions authorization asks of them.

    Attributes:
        scopes: the parsed clinical scopes.
        other: non-clinical scopes kept verbatim (``openid``, ``launch/patient`` ...).
        invalid: clinical-looking scopes that failed to parse (they grant nothing).
    """

    scopes: tuple[Scope, ...] = ()
    other: frozenset[str] = frozenset()
    invalid: tuple[str, ...] = ()

    @classmethod
    def parse(cls, texts: Iterable[str]) -> ScopeSet:
        """Parse scope strings; see :func:`parse_scope` (invalid ones grant nothing)."""
        scopes: list[Scope] = []
        other: set[str] = set()
        invalid: list[str] = []
        for text in texts:
            head = text.partition("/")[0]
            if head not in CONTEXTS:
                other.add(text)
                continue
            try:
                scopes.append(parse_scope(text))
            except ScopeError:
                invalid.append(text)
        return cls(tuple(scopes), frozenset(other), tuple(invalid))

    def covering(
        self, permission: str, resource_type: str, contexts: Iterable[Context] = CONTEXTS
    ) -> list[Scope]:
        """The scopes granting ``permission`` on ``resource_type`` in ``contexts``."""
        wanted = frozenset(contexts)
        return [
            s for s in self.scopes if s.context in wanted and s.covers(permission, resource_type)
        ]

    def allows(
        self, permission: str, resource_type: str, contexts: Iterable[Context] = CONTEXTS
    ) -> bool:
        """May this grant do ``permission`` (one of ``cruds``) on ``resource_type``?

        True when some scope covers it (possibly narrowed by a query: see
        :meth:`narrowing`).
        """
        return bool(self.covering(permission, resource_type, contexts))

    def contexts_for(self, permission: str, resource_type: str) -> frozenset[Context]:
        """The contexts (``patient``, ``user``, ``system``) granting the permission."""
        return frozenset(s.context for s in self.covering(permission, resource_type))

    def narrowing(
        self, permission: str, resource_type: str, contexts: Iterable[Context] = CONTEXTS
    ) -> tuple[Narrowing, ...] | None:
        """Which search parameters narrow the permission on ``resource_type``.

        Returns None when some covering scope has no query (nothing narrows the access),
        otherwise the alternatives (OR-ed; each one's parameters AND-ed); an empty tuple
        when no scope covers the permission at all.
        """
        covering = self.covering(permission, resource_type, contexts)
        if any(not s.query for s in covering):
            return None
        return tuple(dict.fromkeys(s.query for s in covering))

    def resource_types(self, permission: str) -> frozenset[str]:
        """The resource types named by scopes granting ``permission`` (``*`` included)."""
        return frozenset(s.resource_type for s in self.scopes if permission in s.permissions)
