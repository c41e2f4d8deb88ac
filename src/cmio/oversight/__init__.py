"""Oversight summaries for a reporting period: quality, physician EHR use, cost,
interfaces, data quality and governance, as the dashboards and the steering-committee
report present them. Each area module computes a summary from the store; the web app
caches and draws it, ``cmio report`` prints it.
"""

from cmio.oversight.headline import Headline
from cmio.oversight.period import ReportingPeriod

__all__ = ["Headline", "ReportingPeriod"]
