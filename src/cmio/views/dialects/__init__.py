"""SQL dialects the view compiler renders to: one :class:`~cmio.views.dialects.base.Dialect` per engine.

The compiler (:mod:`cmio.views.compiler`) builds engine-neutral sqlglot
expressions through the small set of operations a dialect implements; see
:mod:`cmio.views.dialects.base` for the contract.
"""

from cmio.views.dialects.base import Dialect, SqlKind
from cmio.views.dialects.duckdb import DuckDbDialect

__all__ = ["Dialect", "DuckDbDialect", "SqlKind"]
