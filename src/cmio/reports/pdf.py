"""A report as PDF (fpdf2, https://py-pdf.github.io/fpdf2/).

Title block, section headings (also PDF outline entries), metric tiles, tables that split
across pages with the header row repeated
(https://py-pdf.github.io/fpdf2/Tables.html#repeating-table-headings-on-new-page), charts
as PNG at scale 2, "page N of M" and the generation time in every footer, and the title
in the document information. Text is Latin-1 (see :mod:`cmio.reports.text`).
"""

from __future__ import annotations

from io import BytesIO

from fpdf import FPDF
from fpdf.fonts import FontFace

from cmio.reports.charts import chart_png
from cmio.reports.html import format_number
from cmio.reports.model import Chart, Metric, MetricRow, Paragraph, Report, Table
from cmio.reports.text import latin1

__all__ = ["render_pdf"]

_FONT = "Helvetica"
_BLUE = (31, 78, 121)
_TILE_FILL = (245, 248, 251)
_HEAD_FILL = (228, 236, 244)
_TILES_PER_ROW = 4
_PX_TO_MM = 25.4 / 96


class _Document(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_text = latin1(footer_text)
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(auto=True, margin=18)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, size=8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, self.footer_text, align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def render_pdf(report: Report) -> bytes:
    """Render ``report`` as a PDF document.

    Args:
        report: the report.

    Returns:
        The PDF bytes (``%PDF-1.x``).

    Raises:
        ReportError: a chart could not be rendered.
    """
    stamp = report.generated.strftime("%Y-%m-%d %H:%M %Z").strip()
    pdf = _Document(f"{report.title} - generated {stamp}")
    pdf.set_title(latin1(report.title))
    pdf.set_subject(latin1(report.subtitle))
    pdf.set_creator("cmio")
    pdf.set_creation_date(report.generated)
    pdf.add_page()
    pdf.set_font(_FONT, "B", 20)
    pdf.set_text_color(*_BLUE)
    pdf.multi_cell(0, 9, latin1(report.title), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    if report.subtitle:
        pdf.set_font(_FONT, "", 12)
        pdf.multi_cell(0, 6, latin1(report.subtitle), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, "", 9)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(0, 6, f"Generated {stamp}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(*_BLUE)
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, pdf.get_y() + 1, pdf.w - pdf.r_margin, pdf.get_y() + 1)
    pdf.ln(5)
    for section in report.sections:
        if pdf.get_y() > pdf.h - 50:
            pdf.add_page()
        pdf.start_section(latin1(section.heading))
        pdf.set_font(_FONT, "B", 14)
        pdf.set_text_color(*_BLUE)
        pdf.multi_cell(0, 8, latin1(section.heading), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.ln(1)
        for block in section.blocks:
            if isinstance(block, Paragraph):
                _paragraph(pdf, block)
            elif isinstance(block, MetricRow):
                _metrics(pdf, block)
            elif isinstance(block, Table):
                _table(pdf, block)
            else:
                _chart(pdf, block)
            pdf.ln(3)
    return bytes(pdf.output())


def _paragraph(pdf: FPDF, block: Paragraph) -> None:
    pdf.set_font(_FONT, "", 10)
    pdf.multi_cell(0, 5, latin1(block.text), align="L", new_x="LMARGIN", new_y="NEXT")


def _metrics(pdf: FPDF, row: MetricRow) -> None:
    metrics = list(row.metrics)
    width = pdf.w - pdf.l_margin - pdf.r_margin
    gap = 3.0
    for start in range(0, len(metrics), _TILES_PER_ROW):
        chunk = metrics[start : start + _TILES_PER_ROW]
        tile_w = (width - gap * (_TILES_PER_ROW - 1)) / _TILES_PER_ROW
        height = 22.0
        if pdf.will_page_break(height):
            pdf.add_page()
        top = pdf.get_y()
        for i, metric in enumerate(chunk):
            _tile(pdf, metric, pdf.l_margin + i * (tile_w + gap), top, tile_w, height)
        pdf.set_xy(pdf.l_margin, top + height + 2)


def _tile(pdf: FPDF, metric: Metric, x: float, y: float, w: float, h: float) -> None:
    pdf.set_fill_color(*_TILE_FILL)
    pdf.set_draw_color(184, 199, 217)
    pdf.set_line_width(0.3)
    pdf.rect(x, y, w, h, style="DF")
    inner = w - 4
    pdf.set_xy(x + 2, y + 1.5)
    pdf.set_font(_FONT, "", 8)
    pdf.cell(inner, 4, _fit(pdf, latin1(metric.label), inner))
    pdf.set_xy(x + 2, y + 6)
    pdf.set_font(_FONT, "B", 14)
    pdf.cell(inner, 7, _fit(pdf, latin1(metric.value), inner))
    if metric.detail:
        pdf.set_xy(x + 2, y + 14.5)
        pdf.set_font(_FONT, "", 7)
        pdf.set_text_color(80, 80, 80)
        pdf.cell(inner, 4, _fit(pdf, latin1(metric.detail), inner))
        pdf.set_text_color(0, 0, 0)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _table(pdf: FPDF, table: Table) -> None:
    if table.caption:
        pdf.set_font(_FONT, "B", 10)
        pdf.multi_cell(0, 5, latin1(table.caption), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, "", 8)
    texts = [[_text(cell) for cell in row] for row in table.rows]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in table.rows)
        and any(row[i] is not None for row in table.rows)
        for i in range(len(table.columns))
    ]
    widths = []
    for i, column in enumerate(table.columns):
        longest = max([len(column)] + [len(row[i]) for row in texts[:200]])
        widths.append(min(max(longest, 4), 40))
    with pdf.table(
        col_widths=widths,
        text_align=tuple("RIGHT" if n else "LEFT" for n in numeric),
        headings_style=FontFace(emphasis="BOLD", fill_color=_HEAD_FILL),
        line_height=4.5,
        repeat_headings=1,
        width=pdf.w - pdf.l_margin - pdf.r_margin,
    ) as grid:
        head = grid.row()
        for column in table.columns:
            head.cell(latin1(column))
        for row in texts:
            line = grid.row()
            for text in row:
                line.cell(text)


def _text(cell: object) -> str:
    if cell is None:
        return ""
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return format_number(cell)
    return latin1(str(cell))


def _chart(pdf: FPDF, chart: Chart) -> None:
    png = chart_png(chart, scale=2)
    width_px = int.from_bytes(png[16:20], "big") / 2
    height_px = int.from_bytes(png[20:24], "big") / 2
    max_w = pdf.w - pdf.l_margin - pdf.r_margin
    max_h = (pdf.h - pdf.t_margin - pdf.b_margin) * 0.6
    w = min(width_px * _PX_TO_MM, max_w)
    h = height_px * _PX_TO_MM * (w / (width_px * _PX_TO_MM)) if width_px else 0
    if h > max_h:
        w, h = w * max_h / h, max_h
    if pdf.will_page_break(h + 12):
        pdf.add_page()
    pdf.set_font(_FONT, "B", 10)
    pdf.multi_cell(0, 5, latin1(chart.title), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.image(BytesIO(png), x=pdf.l_margin, w=w, h=h, alt_text=latin1(chart.description))
    pdf.set_font(_FONT, "I", 8)
    pdf.multi_cell(0, 4, latin1(chart.description), align="L", new_x="LMARGIN", new_y="NEXT")
