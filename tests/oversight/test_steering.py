"""The steering-committee report: executive summary with period-over-period changes,
each area's sections, and areas that are not available, rendered to PDF and HTML."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime
from typing import Any

from cmio.oversight import Headline, ReportingPeriod
from cmio.oversight.areas import Area, AreaInputs, collect
from cmio.oversight.steering import gather, headline_number, steering_report
from cmio.reports import Paragraph, Section, Table, render_html, render_pdf

HERE = __name__
FAKE = Area("fake", "Fake area", "/fake", HERE, "fake_summary")
BROKEN = Area("broken", "Broken area", "/broken", HERE, "broken_summary")
MISSING = Area("missing", "Missing area", "/missing", HERE + "_absent", "nothing")
AREAS = (FAKE, BROKEN, MISSING)


def fake_summary(repository: Any, period: ReportingPeriod) -> dict[str, Any]:
    """A summary whose figures depend on the period (so deltas are predictable)."""
    return {"year": period.start.year, "months": len(period.months()), "label": period.label}


def broken_summary(repository: Any, period: ReportingPeriod) -> dict[str, Any]:
    raise RuntimeError("the store is on fire")


def headlines(summary: dict[str, Any]) -> list[Headline]:
    year = summary["year"]
    return [
        Headline("fake", "Share", f"{year % 100 + 0.5:.1f}%", "target <= 30%", "good", "/fake/x"),
        # an area that states its own change (from unrounded figures): the report keeps it
        Headline("fake", "Rate", "10.0%", f"\u22120.9 pts vs {year - 1} (exact)"),
        Headline("fake", "Spend", f"${year * 2:,}", trend=(("2025-01", 1.0), ("2025-02", 2.0))),
    ]


def report_sections(summary: dict[str, Any]) -> list[Section]:
    rows = [["months", summary["months"]], ["period", summary["label"]]]
    return [Section("Fake figures", [Table(["what", "value"], rows, caption="Fake table")])]


def _inputs() -> AreaInputs:
    return AreaInputs(repository=None)  # type: ignore[arg-type]


def test_collect_reports_missing_and_failing_areas() -> None:
    period = ReportingPeriod.parse("2025")
    fake, broken, missing = collect(_inputs(), period, areas=AREAS, sections=True)
    assert fake.available and [h.value for h in fake.headlines] == ["25.5%", "10.0%", "$4,050"]
    assert fake.sections[0].heading == "Fake figures"
    assert not broken.available and "RuntimeError: the store is on fire" in broken.error
    assert not missing.available and "not installed" in missing.error


def test_collect_uses_the_memo_by_area_and_period() -> None:
    memo: dict[str, Any] = {}

    def get(key: str, compute: Any) -> Any:
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    period = ReportingPeriod.parse("2025-Q3")
    collect(_inputs(), period, areas=(FAKE,), get=get)
    assert list(memo) == ["fake:2025-Q3"]
    memo["fake:2025-Q3"] = {"year": 1999, "months": 0, "label": "cached"}
    (again,) = collect(_inputs(), period, areas=(FAKE,), get=get)
    assert again.headlines[0].value == "99.5%"


def test_headline_number() -> None:
    assert headline_number("18.2%") == 18.2
    assert headline_number("$1,204 PMPM") == 1204
    assert headline_number("\u22123.5 h") == -3.5
    assert headline_number("none") is None


def _report() -> tuple[Any, Any]:
    steps: list[str] = []
    data = gather(_inputs(), ReportingPeriod.parse("2025"), areas=AREAS, step=steps.append)
    assert steps == [f"{label} {a.key}" for label in ("2025", "2024") for a in AREAS]
    stamp = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    return data, steering_report(data, generated=stamp)


def test_report_has_summary_deltas_sections_and_gaps() -> None:
    data, report = _report()
    assert data.previous.label == "2024"
    assert report.subtitle == "Period 2025: 2025-01-01 to 2025-12-31"
    headings = [s.heading for s in report.sections]
    assert headings == ["Executive summary", "Fake figures", "Broken area", "Missing area"]
    summary = report.sections[0]
    table = next(b for b in summary.blocks if isinstance(b, Table))
    assert list(table.columns) == ["Area", "Headline", "2025", "2024", "Change"]
    assert [list(r) for r in table.rows] == [
        ["Fake area", "Share", "25.5%", "24.5%", "+1.0 pts"],
        ["Fake area", "Rate", "10.0%", "10.0%", "-0.9 pts"],
        ["Fake area", "Spend", "$4,050", "$4,048", "+$2"],
    ]
    intro = summary.blocks[0]
    assert isinstance(intro, Paragraph)
    assert "1 of 3 areas reported; not available: Broken area, Missing area." in intro.text
    broken = report.sections[2].blocks[0]
    assert isinstance(broken, Paragraph) and "the store is on fire" in broken.text


def _pdf_text(pdf: bytes) -> str:
    shown: list[str] = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            data = zlib.decompress(match.group(1))
        except zlib.error:
            continue
        shown += [m.decode("latin-1") for m in re.findall(rb"\((.*?)(?<!\\)\)\s*Tj", data)]
    return "\n".join(shown)


def test_report_renders_to_pdf_and_html() -> None:
    _, report = _report()
    pdf = render_pdf(report)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = _pdf_text(pdf)
    for needle in ("Executive summary", "Fake figures", "+1.0 pts", "$4,050", "Missing area"):
        assert needle in text
    html = render_html(report)
    assert html.count("<h1>") == 1
    for needle in ("<h2", "Executive summary", "+$2", "Fake table", "not installed"):
        assert needle in html
