"""ViewDefinition validation: every structural error names its element."""

from __future__ import annotations

from typing import Any

import pytest

from cmio.views import ForEach, ForEachOrNull, Repeat, ViewDefinitionError, parse_view


def _view(**extra: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "resourceType": "ViewDefinition",
        "resource": "Patient",
        "select": [{"column": [{"name": "id", "path": "id"}]}],
    }
    view.update(extra)
    return view


@pytest.mark.parametrize(
    ("view", "element", "words"),
    [
        ([], "ViewDefinition", "JSON object"),
        ({}, "ViewDefinition.resource", "resource"),
        (_view(resource="patient"), "ViewDefinition.resource", "resource"),
        (_view(resourceType="Patient"), "ViewDefinition", "resourceType"),
        (_view(select=[]), "ViewDefinition.select", "at least one select"),
        (_view(select=[{}]), "ViewDefinition.select[0]", "needs a column"),
        (
            _view(select=[{"forEach": 1, "column": []}]),
            "ViewDefinition.select[0].forEach",
            "FHIRPath",
        ),
        (
            _view(select=[{"forEach": "name", "forEachOrNull": "name", "column": []}]),
            "ViewDefinition.select[0]",
            "exclusive",
        ),
        (
            _view(select=[{"repeat": "item", "column": []}]),
            "ViewDefinition.select[0].repeat",
            "list",
        ),
        (
            _view(select=[{"column": [{"name": "1x", "path": "id"}]}]),
            "ViewDefinition.select[0].column[0].name",
            "must match",
        ),
        (
            _view(select=[{"column": [{"name": "a", "path": "@@"}]}]),
            "ViewDefinition.select[0].column[0].path",
            "invalid FHIRPath",
        ),
        (
            _view(select=[{"column": [{"name": "a", "path": "id", "collection": "yes"}]}]),
            "ViewDefinition.select[0].column[0].collection",
            "boolean",
        ),
        (
            _view(select=[{"column": [{"name": "a", "path": "id"}, {"name": "a", "path": "id"}]}]),
            "ViewDefinition.select[0].column[1]",
            "duplicate",
        ),
        (
            _view(select=[{"column": [{"name": "a", "path": "%nope"}]}]),
            "ViewDefinition.select[0].column[0].path",
            "undefined constant %nope",
        ),
        (_view(constant=[{"name": "c"}]), "ViewDefinition.constant[0]", "exactly one value[x]"),
        (
            _view(constant=[{"name": "c", "valueString": "a", "valueInteger": 1}]),
            "ViewDefinition.constant[0]",
            "exactly one value[x]",
        ),
        (_view(where=[{"path": 3}]), "ViewDefinition.where[0].path", "FHIRPath"),
        (
            _view(
                select=[
                    {
                        "unionAll": [
                            {"column": [{"name": "a", "path": "id"}]},
                            {"column": [{"name": "b", "path": "id"}]},
                        ]
                    }
                ]
            ),
            "ViewDefinition.select[0].unionAll[1]",
            "same columns",
        ),
        (_view(select=[{"column": [], "bogus": 1}]), "ViewDefinition.select[0]", "unknown element"),
    ],
)
def test_invalid_views_name_the_element(view: Any, element: str, words: str) -> None:
    with pytest.raises(ViewDefinitionError) as info:
        parse_view(view)
    assert info.value.element == element
    assert words in str(info.value)
    outcome = info.value.operation_outcome()
    assert outcome["issue"][0]["expression"] == [element]


def test_tree_of_a_valid_view() -> None:
    view = parse_view(
        _view(
            name="patients",
            constant=[{"name": "use", "valueCode": "official"}],
            select=[
                {"column": [{"name": "id", "path": "getResourceKey()", "type": "id"}]},
                {
                    "forEach": "name.where(use = %use)",
                    "column": [{"name": "family", "path": "family"}],
                },
                {"forEachOrNull": "telecom", "column": [{"name": "tel", "path": "value"}]},
                {"repeat": ["contact"], "column": [{"name": "c", "path": "gender"}]},
                {
                    "unionAll": [
                        {"column": [{"name": "u", "path": "id", "type": "id"}]},
                        {"column": [{"name": "u", "path": "gender", "type": "code"}]},
                    ],
                    "column": [{"name": "first", "path": "active", "type": "boolean"}],
                },
            ],
            where=[{"path": "active"}],
        )
    )
    assert view.name == "patients"
    assert view.column_names() == ["id", "family", "tel", "c", "first", "u"]
    assert view.constants["use"].type == "code"
    selects = view.select.selects
    assert isinstance(selects[1].iteration, ForEach)
    assert isinstance(selects[2].iteration, ForEachOrNull)
    assert selects[3].iteration == Repeat(("contact",))
    assert view.where[0].path == "active"
    assert view.columns()[0].element == "ViewDefinition.select[0].column[0]"
