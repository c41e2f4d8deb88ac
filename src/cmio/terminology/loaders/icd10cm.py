"""ICD-10-CM (2026 release) from the ``simple-icd-10-cm`` package.

The package ships the CDC's tabular list (``icd10c-tabular-April-1-2026.xml``)
and code list; this loader walks every item it knows (chapters, blocks,
categories, subcategories and the 7th-character extended codes), with the
hierarchy, a ``billable`` flag (a leaf code is valid for HIPAA transactions) and
the tabular notes as properties: includes, inclusion terms, Excludes1/Excludes2,
code first, use additional code, code also, notes and 7th-character notes and
definitions (https://www.cdc.gov/nchs/icd/icd-10-cm/files.html, FHIR system
``http://hl7.org/fhir/sid/icd-10-cm``, https://terminology.hl7.org/CodeSystem-icd10CM.html).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from types import ModuleType
from typing import Any

from cmio.terminology.concepts import Concept, ConceptStore, SystemInfo
from cmio.terminology.loaders.common import LoadResult, Progress, load_system

__all__ = [
    "ICD10CM_URL",
    "ICD10CM_VERSION",
    "PROPERTIES",
    "icd10cm_concepts",
    "icd10cm_info",
    "icd10cm_module",
    "load_icd10cm",
]

ICD10CM_URL = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10CM_VERSION = "2026"
"""FY2026 ICD-10-CM (April 1, 2026 update), the release the package carries."""
_FORMAT = "cmio-icd10cm-1"

PROPERTIES: tuple[tuple[str, str, str | None], ...] = (
    ("kind", "code", "chapter, block, category, subcategory or extended (7th character)"),
    ("billable", "boolean", "Valid for claims: a leaf code of the tabular list"),
    ("notSelectable", "boolean", "Chapters and blocks group codes and are not codes to report"),
    ("includes", "string", "Includes note"),
    ("inclusionTerm", "string", "Inclusion term"),
    ("excludes1", "string", "Excludes1 note: not coded here"),
    ("excludes2", "string", "Excludes2 note: not included here"),
    ("codeFirst", "string", "Code first note"),
    ("useAdditionalCode", "string", "Use additional code note"),
    ("codeAlso", "string", "Code also note"),
    ("notes", "string", "Other notes"),
    ("sevenCharacterNote", "string", "7th character note"),
    ("sevenCharacterDefinition", "string", "7th character and its meaning, as 'X: meaning'"),
)
_NOTES: tuple[tuple[str, str], ...] = (
    ("includes", "get_includes"),
    ("inclusionTerm", "get_inclusion_term"),
    ("excludes1", "get_excludes1"),
    ("excludes2", "get_excludes2"),
    ("codeFirst", "get_code_first"),
    ("useAdditionalCode", "get_use_additional_code"),
    ("codeAlso", "get_code_also"),
    ("notes", "get_notes"),
    ("sevenCharacterNote", "get_seven_chr_note"),
)


def icd10cm_module() -> ModuleType:
    """Import ``simple_icd_10_cm`` (it uses deprecated importlib.resources calls)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as module  # type: ignore[import-untyped]
    return module  # type: ignore[no-any-return]


def _texts(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    return [str(v).strip() for v in value if str(v).strip()]


def _kind(cm: ModuleType, code: str) -> str:
    if cm.is_category(code):
        return "category"
    if cm.is_chapter(code):
        return "chapter"
    if cm.is_block(code):
        return "block"
    if cm.is_extended_subcategory(code):
        return "extended"
    return "subcategory"


def icd10cm_concepts(codes: Iterable[str] | None = None) -> Iterator[Concept]:
    """Concepts of ICD-10-CM, chapters first, in tabular order.

    Args:
        codes: only these items (with dots) and their ancestors; all when None.
    """
    cm = icd10cm_module()
    items: Iterable[str] = cm.get_all_codes(True)
    if codes is not None:
        wanted: set[str] = set()
        for code in codes:
            wanted.add(code)
            wanted.update(cm.get_ancestors(code))
        items = [c for c in items if c in wanted]
    seen: set[str] = set()
    for code in items:
        # A block holding a single category has that category's code (B10, Z68...):
        # one concept, the category, placed directly under the chapter.
        if code in seen:
            continue
        seen.add(code)
        kind = _kind(cm, code)
        parent = cm.get_parent(code)
        if parent == code:
            kind, parent = "category", cm.get_parent(code, prioritize_blocks=True)
        grouping = kind in ("chapter", "block")
        props: list[tuple[str, str | int | float | bool]] = [
            ("kind", kind),
            ("billable", (not grouping) and bool(cm.is_leaf(code))),
        ]
        if grouping:
            props.append(("notSelectable", True))
        for name, getter in _NOTES:
            props.extend((name, text) for text in _texts(getattr(cm, getter)(code)))
        definitions: dict[str, str] = cm.get_seven_chr_def(code) or {}
        props.extend(("sevenCharacterDefinition", f"{k}: {v}") for k, v in definitions.items())
        yield Concept(
            code=code,
            display=cm.get_description(code),
            parents=(parent,) if parent else (),
            properties=tuple(props),
        )


def icd10cm_info() -> SystemInfo:
    """The system description of the packaged release."""
    return SystemInfo(
        url=ICD10CM_URL,
        version=ICD10CM_VERSION,
        name="ICD10CM",
        title="International Classification of Diseases, Tenth Revision, Clinical Modification",
        properties=PROPERTIES,
    )


def load_icd10cm(
    store: ConceptStore,
    progress: Progress | None = None,
    *,
    force: bool = False,
    concepts: Callable[[], Iterator[Concept]] = icd10cm_concepts,
) -> LoadResult:
    """Load ICD-10-CM into the concept store (skipped when this release is there).

    The fingerprint is the package version plus the loader's format, so upgrading
    ``simple-icd-10-cm`` reloads.
    """
    fingerprint = f"{_FORMAT}:{metadata.version('simple-icd-10-cm')}"
    return load_system(store, icd10cm_info(), concepts, fingerprint, progress, force=force)
