"""The oversight measures' SQL engine, kept importable here for the EHR-use callers.

Its home is :mod:`cmio.measures.sqlengine` (the cost and data-quality measures run on
it too).
"""

from cmio.measures.sqlengine import ENGINES, Period, SqlEngine, open_engine

__all__ = ["ENGINES", "Period", "SqlEngine", "open_engine"]
