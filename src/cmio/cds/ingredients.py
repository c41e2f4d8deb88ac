"""Medication ingredients for duplicate-therapy and drug-allergy checks.

With the RxNorm concept store loaded (``cmio terminology load rxnorm DIR``), a clinical
drug's ingredients are its ``has_ingredient`` properties, also through its components
(``consists_of``), and a brand name's ``tradename_of``
(https://www.nlm.nih.gov/research/umls/rxnorm/docs/techdoc.html, section 12).
Without it, the RxNorm codes present in the codings (and ``Medication.ingredient``)
stand for the ingredients themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

__all__ = ["RXNORM", "CodingIngredients", "ConceptStoreIngredients", "IngredientResolver"]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
Ingredient = tuple[str, str]
"""``(RXCUI, name)``."""


class IngredientResolver(Protocol):
    """The ingredients of a medication concept."""

    def ingredients(self, coding: Mapping[str, Any]) -> set[Ingredient]:
        """``(code, display)`` of the ingredients of one RxNorm coding."""
        ...


class CodingIngredients:
    """No concept store: an RxNorm coding is its own ingredient."""

    def ingredients(self, coding: Mapping[str, Any]) -> set[Ingredient]:
        """``{(code, display)}`` for an RxNorm coding, else empty."""
        if coding.get("system") != RXNORM or not isinstance(coding.get("code"), str):
            return set()
        return {(str(coding["code"]), str(coding.get("display") or coding["code"]))}


def _properties(parameters: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for param in parameters.get("parameter", []):
        if param.get("name") != "property":
            continue
        parts = {p.get("name"): p for p in param.get("part", [])}
        code = parts.get("code", {}).get("valueCode")
        value = parts.get("value", {})
        found = value.get("valueCode") or value.get("valueString")
        if isinstance(code, str) and isinstance(found, str):
            yield code, found


class ConceptStoreIngredients:
    """Ingredients from the RxNorm relationships in the concept store ($lookup)."""

    def __init__(self, resources: Any) -> None:
        self.resources = resources
        self._fallback = CodingIngredients()

    def _lookup(self, code: str) -> tuple[str, list[tuple[str, str]]] | None:
        from cmio.terminology.errors import TerminologyError
        from cmio.terminology.lookup import lookup

        try:
            result = lookup(self.resources, RXNORM, code)
        except TerminologyError:
            return None
        display = next(
            (p.get("valueString") for p in result.get("parameter", []) if p["name"] == "display"),
            code,
        )
        return str(display), list(_properties(result))

    def ingredients(self, coding: Mapping[str, Any]) -> set[Ingredient]:
        """The ingredient RXCUIs of a drug, component, brand or ingredient code."""
        code = coding.get("code")
        if coding.get("system") != RXNORM or not isinstance(code, str):
            return set()
        found = self._lookup(code)
        if found is None:
            return self._fallback.ingredients(coding)
        display, props = found
        if any(k == "TTY" and v in ("IN", "MIN", "PIN") for k, v in props):
            return {(code, display)}
        targets = [v for k, v in props if k in ("has_ingredient", "tradename_of")]
        for component in (v for k, v in props if k == "consists_of"):
            sub = self._lookup(component)
            if sub is not None:
                targets += [v for k, v in sub[1] if k == "has_ingredient"]
        out = set()
        for target in dict.fromkeys(targets):
            named = self._lookup(target)
            out.add((target, named[0] if named else target))
        return out or self._fallback.ingredients(coding)
