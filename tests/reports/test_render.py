"""cmio.reports: HTML and PDF rendering of the report model."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

from cmio.reports import (
    Chart,
    Metric,
    MetricRow,
    Paragraph,
    Report,
    ReportError,
    Section,
    Table,
    render_html,
    render_pdf,
)
from cmio.reports.text import latin1


def _bar_spec() -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": [{"clinician": "A", "n": 3}, {"clinician": "B", "n": 7}]},
        "mark": "bar",
        "encoding": {
            "x": {"field": "clinician", "type": "nominal"},
            "y": {"field": "n", "type": "quantitative"},
        },
    }


def _report(rows: int = 5) -> Report:
    table = Table(
        ["Patient", "Resource", "Count"],
        [[f"Patient/p{i}", f"Condition/c{i}", i] for i in range(rows)],
        caption="Newly matching resources",
    )
    return Report(
        title="Impact of diabetes value set 2.0.0",
        subtitle="Proposed change ≤ steering committee — draft",
        generated=datetime(2026, 11, 27, 3, 30, tzinfo=UTC),
        sections=[
            Section(
                "Summary",
                [
                    Paragraph("Two codes added; one removed."),
                    MetricRow([Metric("Patients newly matching", "12", "of 30"), Metric("X", "5")]),
                ],
            ),
            Section("Resources", [table]),
            Section(
                "By clinician",
                [Chart(_bar_spec(), "Denominator by clinician", "Bar chart: A has 3, B has 7")],
            ),
        ],
    )


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))


def test_html_is_standalone_and_accessible() -> None:
    html = render_html(_report())
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<h1>") == 1 and html.count("<h2 ") == 3
    assert '<th scope="col">Patient</th>' in html
    assert "<caption>Newly matching resources</caption>" in html
    assert "≤" in html  # Unicode kept in HTML
    # the chart is inline SVG with alt text
    assert re.search(
        r'<svg[^>]*role="img"[^>]*aria-labelledby="chart-title-\d+ chart-desc-\d+"', html
    )
    assert "<desc id=" in html and "Bar chart: A has 3, B has 7</desc>" in html
    assert "@media print" in html
    assert "http://" not in html.replace("http://www.w3.org", "")  # no external resources
    assert '<td class="num">4</td>' in html


def test_html_escapes_text() -> None:
    report = Report(
        "a <b> & c",
        "",
        datetime(2026, 1, 1, tzinfo=UTC),
        [Section("<script>", [Paragraph("<img src=x>")])],
    )
    html = render_html(report)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


def test_pdf_parses_with_title_and_pages() -> None:
    pdf = render_pdf(_report())
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert _pages(pdf) >= 1
    # document information: the title, and the subtitle with "≤" as "<="
    assert b"/Title (Impact of diabetes value set 2.0.0)" in pdf
    assert b"/Subject (Proposed change <= steering committee - draft)" in pdf


def test_pdf_text_readable_with_fpdf_page_count() -> None:
    pdf = render_pdf(_report(rows=3))
    text = _uncompressed_text(pdf)
    assert "Impact of diabetes value set 2.0.0" in text
    assert "page 1 of" in text


def test_pdf_long_table_spans_pages_and_repeats_header() -> None:
    pdf = render_pdf(_report(rows=300))
    pages = _pages(pdf)
    assert pages >= 4
    texts = _page_texts(pdf)
    assert len(texts) == pages
    # every page the table covers starts it with the header row
    table_pages = [t for t in texts if "Condition/c" in t]
    assert len(table_pages) >= 3
    for text in table_pages:
        assert text.index("Patient\nResource\nCount") < text.index("Condition/c")
    assert all(f"page {i} of" in t for i, t in enumerate(texts, 1))


def test_bad_chart_spec_is_refused() -> None:
    with pytest.raises(ReportError, match="not a Vega-Lite specification"):
        Chart({"foo": 1}, "Broken", "alt")
    with pytest.raises(ReportError, match="not a Vega-Lite schema"):
        Chart({"$schema": "https://vega.github.io/schema/vega/v5.json", "marks": []}, "V", "a")
    with pytest.raises(ReportError, match=r"data\.url"):
        Chart({"mark": "bar", "data": {"url": "https://example.org/d.json"}}, "Remote", "a")
    with pytest.raises(ReportError, match="JSON object"):
        Chart(["mark"], "List", "a")  # type: ignore[arg-type]
    with pytest.raises(ReportError, match="alt text"):
        Chart(_bar_spec(), "No alt", " ")


def test_renderer_error_names_the_chart() -> None:
    bad = Chart({"mark": "nonsense-mark", "data": {"values": []}}, "Odd chart", "alt")
    report = Report("t", "", datetime(2026, 1, 1, tzinfo=UTC), [Section("s", [bad])])
    with pytest.raises(ReportError, match="Odd chart"):
        render_html(report)


def test_table_row_length_checked() -> None:
    with pytest.raises(ReportError, match="row 1 has 1 cells, expected 2"):
        Table(["a", "b"], [[1, 2], [3]])


def test_latin1_fallback() -> None:
    assert latin1("HbA1c ≤ 9 % \u2013 café → Ő ✓ 日") == "HbA1c <= 9 % - café -> O yes ?"


def _page_texts(pdf: bytes) -> list[str]:
    """The text shown by each page's content stream (fpdf2 compresses them with zlib)."""
    texts = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            data = zlib.decompress(match.group(1))
        except zlib.error:
            continue
        shown = [m.decode("latin-1") for m in re.findall(rb"\((.*?)(?<!\\)\)\s*Tj", data)]
        if shown:
            texts.append("\n".join(shown))
    return texts


def _uncompressed_text(pdf: bytes) -> str:
    return "\n".join(_page_texts(pdf))
