"""The typed columnar layout of resources: nested struct/list columns per the R4 type model.

A Parquet file in this layout holds, for one resource type, the ``resource`` column
(the resource JSON as text, as in the JSON-text layout, so nothing is lost) and one
typed column per top-level element of the type: complex types and backbone elements
as structs of their elements, repeating elements as lists, ``boolean`` as BOOLEAN,
``integer``/``positiveInt``/``unsignedInt`` as BIGINT and every other primitive
(``decimal`` included: its text, as the JSON-text layout reads it) as VARCHAR.
The SQL engines then read only the columns a view needs, without parsing JSON
(see :class:`~cmio.views.dialects.typed.TypedDuckDbDialect`).

Left out of the typed columns (a view reading them runs over the ``resource``
column instead): ``extension``/``modifierExtension``, the ``_element`` companions
of primitives, contained and other resource-typed elements, and a complex type
nested inside itself (``Identifier.assigner.identifier``; the recursion stops at
the first repeat) or deeper than :data:`MAX_DEPTH`.

The layout is named in the file's key-value metadata (:data:`LAYOUT_KEY` =
:data:`LAYOUT_TYPED`). Parquet: https://parquet.apache.org/docs/file-format/;
the element model: http://hl7.org/fhir/R4/elementdefinition.html.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from cmio.model import Model
from cmio.model.types import (
    K_BACKBONE,
    K_BOOLEAN,
    K_COMPLEX,
    K_INTEGER,
    K_POSITIVE_INT,
    K_RESOURCE,
    K_SHADOW,
    K_UNSIGNED_INT,
    JsonProperty,
)

__all__ = [
    "LAYOUT_KEY",
    "LAYOUT_TYPED",
    "MAX_DEPTH",
    "TypedLayoutUnsupported",
    "duckdb_type",
    "is_typed_parquet",
    "prune",
    "read_json_sql",
    "structure",
    "write_typed_parquet",
]

LAYOUT_KEY = "cmio.layout"
"""The Parquet key-value metadata key naming the layout."""
LAYOUT_TYPED = "typed-r4"
"""Its value for the typed layout of this module."""
MAX_DEPTH = 6
"""Struct nesting below a resource kept typed (deeper elements: JSON text only)."""
_SKIPPED = frozenset({"extension", "modifierExtension", "contained", "resource"})
_INTEGERS = frozenset({K_INTEGER, K_POSITIVE_INT, K_UNSIGNED_INT})

Structure = dict[str, Any]
"""A DuckDB ``json_transform`` structure: names to type names, nested objects, or
one-item lists for lists (https://duckdb.org/docs/stable/data/json/json_functions#json-transform)."""


class TypedLayoutUnsupported(Exception):
    """A view reads something the typed columns do not hold: it runs on the JSON text."""


def _prop_type(model: Model, prop: JsonProperty, depth: int, seen: tuple[str, ...]) -> Any | None:
    if prop.kind == K_BOOLEAN:
        scalar: Any = "BOOLEAN"
    elif prop.kind in _INTEGERS:
        scalar = "BIGINT"
    elif prop.kind == K_COMPLEX:
        if prop.type_code in seen or depth >= MAX_DEPTH:
            return None
        typedef = model.types.get(prop.type_code)
        if typedef is None or typedef.json_index is None:
            return None
        scalar = _members(model, typedef.json_index, depth + 1, (*seen, prop.type_code))
    elif prop.kind == K_BACKBONE:
        if prop.members is None or depth >= MAX_DEPTH:
            return None
        marker = f"#{id(prop.members)}"
        if marker in seen:
            return None
        scalar = _members(model, prop.members, depth + 1, (*seen, marker))
    elif prop.kind in (K_RESOURCE, K_SHADOW):
        return None
    else:
        scalar = "VARCHAR"
    if isinstance(scalar, dict) and not scalar:
        return None
    return [scalar] if prop.repeats else scalar


def _members(
    model: Model, index: Mapping[str, JsonProperty], depth: int, seen: tuple[str, ...]
) -> Structure:
    out: Structure = {}
    for key, prop in index.items():
        if key in _SKIPPED or key.startswith("_"):
            continue
        typed = _prop_type(model, prop, depth, seen)
        if typed is not None:
            out[key] = typed
    return out


def structure(model: Model, resource_type: str, keys: Iterable[str] | None = None) -> Structure:
    """The typed columns of a resource type (all, or the top-level ``keys`` among them).

    Raises:
        TypedLayoutUnsupported: a requested key has no typed column.
        KeyError: ``resource_type`` is not a resource type of the model.
    """
    typedef = model.types[resource_type]
    if typedef.json_index is None:
        raise KeyError(resource_type)
    full = {"resourceType": "VARCHAR", **_members(model, typedef.json_index, 0, (resource_type,))}
    if keys is None:
        return full
    wanted = list(dict.fromkeys(keys))
    missing = [k for k in wanted if k not in full]
    if missing:
        raise TypedLayoutUnsupported(f"no typed column for {', '.join(missing)}")
    return {k: full[k] for k in wanted}


def prune(columns: Structure, names: Collection[str]) -> Structure:
    """``columns`` keeping, below the top level, only fields named in ``names``.

    A query that reads a field names it, so nothing it reads is dropped (a field of the
    same name elsewhere stays too: harmless); a struct left without fields keeps its
    first one, so that an object that is present still reads as present.
    """

    def keep(value: Any) -> Any:
        if isinstance(value, list):
            return [keep(value[0])]
        if not isinstance(value, dict):
            return value
        kept = {k: keep(v) for k, v in value.items() if k in names}
        if not kept:
            first = next(iter(value))
            kept = {first: _smallest(value[first])}
        return kept

    return {key: keep(value) for key, value in columns.items()}


def _smallest(value: Any) -> Any:
    if isinstance(value, list):
        return [_smallest(value[0])]
    if isinstance(value, dict):
        first = next(iter(value))
        return {first: _smallest(value[first])}
    return value


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_type(value: Any) -> str:
    """The DuckDB type of a :data:`Structure` value (``STRUCT(...)``, ``T[]`` or a name)."""
    if isinstance(value, dict):
        fields = ", ".join(f"{_ident(k)} {duckdb_type(v)}" for k, v in value.items())
        return f"STRUCT({fields})"
    if isinstance(value, list):
        return f"{duckdb_type(value[0])}[]"
    return str(value)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_json_sql(files: Iterable[Path], columns: Structure) -> str:
    """DuckDB's ``read_json`` of NDJSON ``files`` into the typed ``columns``.

    Each line is parsed once, straight into typed vectors; a value whose JSON type
    contradicts the model fails the query naming the file and line
    (https://duckdb.org/docs/stable/data/json/loading_json#parameters).
    """
    names = ", ".join(_quote(str(f)) for f in files)
    spec = ", ".join(f"{_ident(k)}: {_quote(duckdb_type(v))}" for k, v in columns.items())
    return (
        f"read_json([{names}], format = 'newline_delimited', records = true, "
        f"columns = {{{spec}}}, maximum_object_size = 1073741824)"
    )


def write_typed_parquet(
    model: Model, resource_type: str, files: Iterable[Path], target: Path, con: Any
) -> None:
    """Write NDJSON ``files`` of ``resource_type`` to ``target`` in the typed layout.

    The typed columns come from DuckDB's ``read_json`` with the model's types (a
    value whose JSON type contradicts the model fails the conversion naming the file
    and line, rather than becoming NULL); the ``resource`` text from a second scan of
    the same lines, joined by position.

    Args:
        model: the FHIR model.
        resource_type: the type every line holds.
        files: NDJSON (optionally gzip) files.
        target: the Parquet file written.
        con: a DuckDB connection.
    """
    paths = list(files)
    names = ", ".join(_quote(str(f)) for f in paths)
    typed = read_json_sql(paths, structure(model, resource_type))
    con.execute(
        f"COPY (SELECT _r.json::VARCHAR AS resource, _t.* "
        f"FROM read_ndjson_objects([{names}]) AS _r POSITIONAL JOIN {typed} AS _t) "
        f"TO {_quote(str(target))} "
        f"(FORMAT parquet, COMPRESSION zstd, KV_METADATA {{'{LAYOUT_KEY}': '{LAYOUT_TYPED}'}})"
    )


def is_typed_parquet(files: Iterable[Path]) -> bool:
    """Whether every file is a Parquet file of the typed layout (by its metadata)."""
    import pyarrow.parquet as pq

    paths = list(files)
    if not paths:
        return False
    for path in paths:
        try:
            metadata = pq.read_metadata(path).metadata or {}
        except (OSError, ValueError):
            return False
        if metadata.get(LAYOUT_KEY.encode()) != LAYOUT_TYPED.encode():
            return False
    return True
