"""SQL on FHIR v2 views: flatten FHIR resources into tables.

Implements ViewDefinitions (https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html)::

    import cmio.views

    table = cmio.views.run(view_json, "export/", engine="duckdb")   # -> pyarrow.Table
    table.to_pandas()

Layers: :mod:`~cmio.views.parse` validates a ViewDefinition into the projection
tree of :mod:`~cmio.views.tree`; :mod:`~cmio.views.memory` evaluates it row by
row with the FHIRPath engine (the reference); :mod:`~cmio.views.compiler`
compiles it to one SQL query through a :mod:`~cmio.views.dialects` dialect;
:mod:`~cmio.views.runner` runs it over a source (:mod:`~cmio.views.sources`).
"""

from cmio.views.columns import arrow_schema
from cmio.views.compiler import ViewCompiler
from cmio.views.memory import MemoryEvaluator, view_functions
from cmio.views.parse import ViewDefinitionError, parse_view
from cmio.views.runner import DuckDbRunner, load_view, run
from cmio.views.sources import SourceError, ndjson_to_parquet, resolve_source
from cmio.views.sqlpath import UnsupportedExpression
from cmio.views.tree import (
    Column,
    Constant,
    ForEach,
    ForEachOrNull,
    Repeat,
    Select,
    View,
    Where,
)

__all__ = [
    "Column",
    "Constant",
    "DuckDbRunner",
    "ForEach",
    "ForEachOrNull",
    "MemoryEvaluator",
    "Repeat",
    "Select",
    "SourceError",
    "UnsupportedExpression",
    "View",
    "ViewCompiler",
    "ViewDefinitionError",
    "Where",
    "arrow_schema",
    "load_view",
    "ndjson_to_parquet",
    "parse_view",
    "resolve_source",
    "run",
    "view_functions",
]
