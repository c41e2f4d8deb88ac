"""The starter rule set (package data ``data/starter-rules.json``) and its installation.

Labs coded in LOINC, problems in SNOMED CT or ICD-10-CM, Quantity units in UCUM,
medications in RxNorm, a Patient MRN, an Encounter start: the common US core
standards (https://hl7.org/fhir/us/core/) expressed as cmio rules.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from cmio.rules.definition import Rule, rule_as_library, rule_from_json
from cmio.store.base import Repository

__all__ = ["install_libraries", "install_starter_rules", "starter_rules"]


def starter_rules(status: str = "active") -> list[Rule]:
    """The starter rules (version 1.0.0, with ``status``)."""
    text = resources.files("cmio.rules").joinpath("data/starter-rules.json").read_text("utf-8")
    return [rule_from_json(item, status=status) for item in json.loads(text)]


def install_libraries(repository: Repository, libraries: list[dict[str, Any]]) -> int:
    """Store Libraries by their id unless that version is already stored; the count added.

    A version is never rewritten (a changed rule needs a new ``version``).
    """
    added = 0
    with repository.transaction() as tx:
        for library in libraries:
            if tx.current("Library", library["id"]) is None:
                tx.create(library, id=library["id"])
                added += 1
    return added


def install_starter_rules(repository: Repository, status: str = "active") -> int:
    """Store the starter rules as Libraries (see :func:`install_libraries`)."""
    return install_libraries(repository, [rule_as_library(r) for r in starter_rules(status)])
