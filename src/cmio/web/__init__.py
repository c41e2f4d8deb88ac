"""The web app: executive overview, quality, EHR use, cost, the patient chart, the
informatics workbench and the steering-committee report (issue 12)."""

from cmio.oversight.period import ReportingPeriod
from cmio.web.app import WebApp, create_web_app, page_modules
from cmio.web.context import FhirCallError, Forbidden, Viewer, WebContext

__all__ = [
    "FhirCallError",
    "Forbidden",
    "ReportingPeriod",
    "Viewer",
    "WebApp",
    "WebContext",
    "create_web_app",
    "page_modules",
]
