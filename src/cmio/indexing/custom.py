"""Custom ``SearchParameter`` resources (https://hl7.org/fhir/R4/searchparameter.html).

A ``SearchParameter`` stored on the server becomes searchable after ``$reindex``
(:mod:`cmio.bulk.reindex`): :func:`parse_search_parameter` checks it and turns
it into a :class:`~cmio.model.types.SearchParamDef`, :func:`extend_model`
returns a model whose parameter table also holds it, and the indexer and search
compiler are switched to that model.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from cmio.model import Model
from cmio.model.types import SearchParamDef

__all__ = ["SEARCH_TYPES", "CustomParameterError", "extend_model", "parse_search_parameter"]

#: the parameter types a custom SearchParameter may have here
SEARCH_TYPES = frozenset({"number", "date", "string", "token", "reference", "quantity", "uri"})
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")


class CustomParameterError(ValueError):
    """A SearchParameter that cannot be used (the message names the element)."""


def parse_search_parameter(model: Model, resource: dict[str, Any]) -> SearchParamDef:
    """A stored SearchParameter as a definition the indexer can use.

    Raises:
        CustomParameterError: not active, unknown base type, unsupported type, no
            expression, or a malformed code.
    """
    where = f"SearchParameter/{resource.get('id')}"
    if resource.get("status") != "active":
        raise CustomParameterError(f"{where}: status is not active")
    code, ptype = resource.get("code"), resource.get("type")
    expression, base = resource.get("expression"), resource.get("base")
    if not isinstance(code, str) or not _CODE.fullmatch(code) or code.startswith("_"):
        raise CustomParameterError(f"{where}: SearchParameter.code {code!r} is not usable")
    if ptype not in SEARCH_TYPES:
        raise CustomParameterError(f"{where}: SearchParameter.type {ptype!r} is not supported")
    if not isinstance(expression, str) or not expression.strip():
        raise CustomParameterError(f"{where}: SearchParameter.expression is missing")
    if not isinstance(base, list) or not base or not all(isinstance(b, str) for b in base):
        raise CustomParameterError(f"{where}: SearchParameter.base is missing")
    for name in base:
        if name not in ("Resource", "DomainResource") and not model.is_resource_type(name):
            raise CustomParameterError(f"{where}: SearchParameter.base {name!r} is unknown")
    target = resource.get("target") or []
    url = resource.get("url")
    return SearchParamDef(
        url=url if isinstance(url, str) else f"urn:cmio:{where}",
        code=code,
        name=str(resource.get("name") or code),
        base=tuple(base),
        type=ptype,
        expression=expression,
        xpath_usage="normal",
        target=tuple(t for t in target if isinstance(t, str)),
        modifiers=(),
        comparators=(),
        multiple_or=True,
        multiple_and=True,
        components=(),
    )


def extend_model(model: Model, params: Iterable[SearchParamDef]) -> Model:
    """``model`` with ``params`` added to its search-parameter table (a new object;
    a custom parameter with a standard parameter's code replaces it for its bases)."""
    added = list(params)
    if not added:
        return model
    index = {rtype: dict(found) for rtype, found in model.search_index.items()}
    for spd in added:
        for name in spd.base:
            types = model.resource_types if name in ("Resource", "DomainResource") else {name}
            for rtype in types:
                index.setdefault(rtype, {})[spd.code] = spd
    return dataclasses.replace(
        model, search_params=(*model.search_params, *added), search_index=index
    )
