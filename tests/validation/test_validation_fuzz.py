"""Random JSON never makes the validator raise; it always answers with issues."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmio.model import Model
from cmio.validation import Issue, validate_structure

SEVERITIES = {"fatal", "error", "warning", "information"}

# Names that exist somewhere in FHIR, so random documents go deep into the model.
KEYS = st.sampled_from(
    [
        "resourceType",
        "id",
        "meta",
        "text",
        "div",
        "status",
        "extension",
        "url",
        "valueString",
        "valueQuantity",
        "value",
        "_value",
        "name",
        "given",
        "_given",
        "family",
        "birthDate",
        "_birthDate",
        "contained",
        "entry",
        "resource",
        "item",
        "linkId",
        "code",
        "coding",
        "system",
        "reference",
        "subject",
        "component",
        "deceasedBoolean",
        "deceasedDateTime",
        "type",
        "",
        "_",
        "x",
    ]
)
RESOURCE_TYPES = st.sampled_from(["Patient", "Observation", "Bundle", "Questionnaire", "Foo", ""])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.decimals(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["Patient/1", "urn:uuid:x", "#a", "2020-01-01", "final", "<div>x</div>"])
)


def _json(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6)
        ),
        max_leaves=40,
    )


RESOURCES = st.builds(
    lambda rtype, body: {**body, "resourceType": rtype} if isinstance(body, dict) else body,
    RESOURCE_TYPES,
    _json(KEYS),
)


def _check(issues: list[Issue]) -> None:
    assert isinstance(issues, list)
    for issue in issues:
        assert isinstance(issue, Issue)
        assert issue.severity in SEVERITIES
        assert issue.code and issue.message
        assert isinstance(issue.expression, str)


@settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(document=_json(st.text(max_size=8)))
def test_random_json_never_raises(model: Model, document: Any) -> None:
    issues = validate_structure(model, document)
    _check(issues)
    if not isinstance(document, dict):
        assert issues and issues[0].severity == "fatal"
    elif "resourceType" not in document:
        assert issues


@settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(document=RESOURCES)
def test_random_fhir_shaped_json_never_raises(model: Model, document: Any) -> None:
    _check(validate_structure(model, document))


@settings(max_examples=50, deadline=None, database=None)
@given(
    value=st.one_of(
        st.text(max_size=30),
        st.integers(),
        st.floats(),
        st.decimals(),
        st.booleans(),
        st.none(),
    )
)
def test_any_primitive_value(model: Model, value: Any) -> None:
    fields = ("birthDate", "gender", "active", "multipleBirthInteger", "id", "implicitRules")
    for field in fields:
        _check(validate_structure(model, {"resourceType": "Patient", field: value}))
    quantity = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    quantity["valueQuantity"] = {"value": value}
    issues = validate_structure(model, quantity)
    _check(issues)
    valid_number = (
        isinstance(value, int | float | Decimal)
        and not isinstance(value, bool)
        and Decimal(value).is_finite()
    )
    assert (issues == []) == valid_number
