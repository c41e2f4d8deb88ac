"""Reports: a small document model rendered to standalone HTML and to PDF.

Used by the governance impact analysis (issue 11) and the steering-committee report
(issue 12). See docs/governance.md, section "Impact analysis".
"""

from __future__ import annotations

from cmio.reports.html import render_html
from cmio.reports.model import (
    Block,
    Cell,
    Chart,
    Metric,
    MetricRow,
    Paragraph,
    Report,
    ReportError,
    Section,
    Table,
)
from cmio.reports.pdf import render_pdf

__all__ = [
    "Block",
    "Cell",
    "Chart",
    "Metric",
    "MetricRow",
    "Paragraph",
    "Report",
    "ReportError",
    "Section",
    "Table",
    "render_html",
    "render_pdf",
]
