"""Physician EHR use from audit logs: the core measures of Sinsky et al. (JAMIA 2020).

Spec: https://doi.org/10.1093/jamia/ocz223. :func:`compute_ehr_use` reads AuditEvents
(and vendor audit-log CSVs), schedules and orders through SQL on FHIR views and
runs the measure SQL on DuckDB, PostgreSQL or Spark (:class:`SqlEngine`).
"""

from cmio.measures.ehr_use.inputs import CsvMapping, read_audit_csv, read_views
from cmio.measures.ehr_use.metrics import (
    METRICS,
    OUTPUTS,
    SessionRules,
    compute_ehr_use,
    ehr_use,
)
from cmio.measures.sqlengine import ENGINES, Period, SqlEngine, open_engine

__all__ = [
    "ENGINES",
    "METRICS",
    "OUTPUTS",
    "CsvMapping",
    "Period",
    "SessionRules",
    "SqlEngine",
    "compute_ehr_use",
    "ehr_use",
    "open_engine",
    "read_audit_csv",
    "read_views",
]
