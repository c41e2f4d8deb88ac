"""SMART v2 scope parsing (hypothesis properties) and ScopeSet answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmio.security.scopes import PERMISSIONS, Scope, ScopeError, ScopeSet, parse_scope

_TYPES = st.sampled_from(["*", "Observation", "Patient", "Condition", "MedicationRequest"])
_CONTEXTS = st.sampled_from(["patient", "user", "system"])
_PERMS = st.sets(st.sampled_from(list(PERMISSIONS)), min_size=1).map(
    lambda s: "".join(p for p in PERMISSIONS if p in s)
)
_PARAM_NAMES = st.sampled_from(["category", "code", "status", "subject:missing", "code:in"])
_VALUES = st.text(
    alphabet=st.sampled_from("abcXYZ019|:/.-"), min_size=1, max_size=30
)  # no & = % + (the query separators)
_QUERIES = st.lists(st.tuples(_PARAM_NAMES, _VALUES), max_size=3).map(tuple)


@given(_CONTEXTS, _TYPES, _PERMS, _QUERIES)
def test_v2_round_trip(
    context: str, rtype: str, perms: str, query: tuple[tuple[str, str], ...]
) -> None:
    text = f"{context}/{rtype}.{perms}"
    if query:
        text += "?" + "&".join(f"{k}={v}" for k, v in query)
    scope = parse_scope(text)
    assert scope.context == context
    assert scope.resource_type == rtype
    assert scope.permissions == frozenset(perms)
    assert scope.query == query
    assert scope.text() == text
    assert parse_scope(scope.text()) == scope


@given(_CONTEXTS, _TYPES, st.sampled_from(["read", "write", "*"]))
def test_v1_maps_to_v2(context: str, rtype: str, suffix: str) -> None:
    scope = parse_scope(f"{context}/{rtype}.{suffix}")
    expected = {"read": "rs", "write": "cud", "*": "cruds"}[suffix]
    assert scope.permissions == frozenset(expected)
    assert parse_scope(scope.text()) == scope


@given(
    _CONTEXTS,
    _TYPES,
    st.text(alphabet=st.sampled_from("crudsx*"), min_size=0, max_size=6),
)
def test_permissions_must_be_ordered_subset(context: str, rtype: str, perms: str) -> None:
    text = f"{context}/{rtype}.{perms}"
    ok = (
        bool(perms)
        and all(p in PERMISSIONS for p in perms)
        and list(perms) == sorted(set(perms), key=PERMISSIONS.index)
    )
    if perms == "*":
        ok = True  # v1 wildcard
    if ok:
        assert parse_scope(text).permissions <= frozenset(PERMISSIONS)
    else:
        with pytest.raises(ScopeError):
            parse_scope(text)


@given(st.text(max_size=40))
def test_parser_never_crashes(text: str) -> None:
    try:
        scope = parse_scope(text)
    except ScopeError:
        return
    assert isinstance(scope, Scope)
    assert parse_scope(scope.text()) == scope


@given(st.lists(st.tuples(_CONTEXTS, _TYPES, _PERMS), min_size=1, max_size=5))
def test_scopeset_allows_is_union(parts: list[tuple[str, str, str]]) -> None:
    scopes = ScopeSet.parse([f"{c}/{t}.{p}" for c, t, p in parts] + ["openid", "fhirUser"])
    assert scopes.other == {"openid", "fhirUser"}
    for rtype in ("Observation", "Patient", "Encounter"):
        for perm in PERMISSIONS:
            expected = any(perm in p and t in ("*", rtype) for _, t, p in parts)
            assert scopes.allows(perm, rtype) is expected
            contexts = {c for c, t, p in parts if perm in p and t in ("*", rtype)}
            assert scopes.contexts_for(perm, rtype) == contexts


@pytest.mark.parametrize(
    "text",
    [
        "patient/Observation",
        "patient/Observation.",
        "patient/Observation.rsc",
        "patient/Observation.rr",
        "patient/Observation.x",
        "patient/observation.rs",
        "clinic/Observation.rs",
        "patient/Observation.rs?",
        "patient/Observation.rs?category",
        "patient/Observation.rs?category=",
        "patient/Observation.read?category=laboratory",
        "patient/Observation.rs?_count=1",
        "patient/Obs-ervation.rs",
    ],
)
def test_malformed_scopes(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)
    assert ScopeSet.parse([text]).scopes == ()


def test_specification_examples() -> None:
    lab = parse_scope(
        "patient/Observation.rs?category="
        "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
    )
    assert lab.permissions == {"r", "s"}
    assert lab.query == (
        (
            "category",
            "http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        ),
    )
    assert parse_scope("user/*.cruds").covers("d", "Encounter")
    assert not parse_scope("user/Observation.rs").covers("c", "Observation")
    assert parse_scope("system/*.*").permissions == frozenset(PERMISSIONS)


def test_narrowing() -> None:
    lab = "patient/Observation.rs?category=laboratory"
    vitals = "patient/Observation.rs?category=vital-signs&status=final"
    narrowed = ScopeSet.parse([lab, vitals, "patient/Condition.rs", "launch/patient"])
    assert narrowed.narrowing("s", "Observation") == (
        (("category", "laboratory"),),
        (("category", "vital-signs"), ("status", "final")),
    )
    assert narrowed.narrowing("s", "Condition") is None
    assert narrowed.narrowing("c", "Observation") == ()
    assert narrowed.other == {"launch/patient"}
    widened = ScopeSet.parse([lab, "patient/Observation.r"])
    assert widened.narrowing("r", "Observation") is None
    assert widened.narrowing("s", "Observation") == ((("category", "laboratory"),),)
    assert ScopeSet.parse(["user/*.rs", lab]).narrowing("r", "Observation") is None
    assert ScopeSet.parse(["user/*.rs", lab]).narrowing("r", "Observation", ["patient"]) == (
        (("category", "laboratory"),),
    )


def test_invalid_scopes_are_kept_aside() -> None:
    scopes = ScopeSet.parse(["patient/Observation.rsc", "user/Patient.rs"])
    assert scopes.invalid == ("patient/Observation.rsc",)
    assert scopes.allows("r", "Patient")
    assert not scopes.allows("r", "Observation")
    assert scopes.resource_types("r") == {"Patient"}
