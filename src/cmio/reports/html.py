"""A report as one standalone, accessible HTML file.

Semantic headings (one ``h1``, an ``h2`` per section), tables with ``<caption>`` and
``<th scope="col">`` (https://www.w3.org/WAI/tutorials/tables/), charts inlined as SVG
with ``role="img"`` and ``<title>``/``<desc>`` alt text
(https://www.w3.org/TR/svg-aam-1.0/#mapping_additional_nd), and print CSS.
"""

from __future__ import annotations

import re
from html import escape

from cmio.reports.charts import chart_svg
from cmio.reports.model import Block, Cell, Chart, MetricRow, Paragraph, Report, Table

__all__ = ["render_html"]

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
  max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45;
  overflow-wrap: anywhere; }
header { border-bottom: 2px solid #1f4e79; margin-bottom: 1.5rem; }
h1 { font-size: 1.8rem; margin: 0 0 .25rem; color: #1f4e79; }
.subtitle { margin: 0 0 .25rem; font-size: 1.1rem; }
.generated { margin: 0 0 .75rem; color: #4a4a4a; font-size: .9rem; }
h2 { font-size: 1.35rem; color: #1f4e79; margin-top: 2rem; }
.metrics { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; padding: 0;
  list-style: none; }
.metric { border: 1px solid #b8c7d9; border-radius: 6px; padding: .6rem .9rem;
  min-width: 10rem; flex: 1 1 10rem; background: #f5f8fb; }
.metric .label { font-size: .85rem; color: #333; display: block; }
.metric .value { font-size: 1.5rem; font-weight: 700; display: block; }
.metric .detail { font-size: .8rem; color: #4a4a4a; display: block; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding-bottom: .35rem; }
th, td { border: 1px solid #c9d3de; padding: .3rem .5rem; text-align: left;
  vertical-align: top; }
thead th { background: #e4ecf4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: .9rem; color: #333; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  h2 { break-after: avoid; }
  thead { display: table-header-group; }
  tr, figure, .metric { break-inside: avoid; }
  a { color: inherit; }
}
"""

_SVG_OPEN = re.compile(r"<svg\b[^>]*>")


def render_html(report: Report) -> str:
    """Render ``report`` as a standalone HTML5 document (no external resources).

    Args:
        report: the report.

    Returns:
        The HTML text.

    Raises:
        ReportError: a chart could not be rendered.
    """
    ids = _Ids()
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(report.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{escape(report.title)}</h1>",
    ]
    if report.subtitle:
        out.append(f'<p class="subtitle">{escape(report.subtitle)}</p>')
    stamp = report.generated.isoformat(timespec="seconds")
    out += [
        f'<p class="generated">Generated <time datetime="{escape(stamp)}">'
        f"{escape(_human_time(report))}</time></p>",
        "</header>",
        "<main>",
    ]
    for section in report.sections:
        heading_id = ids.next("section")
        out.append(f'<section aria-labelledby="{heading_id}">')
        out.append(f'<h2 id="{heading_id}">{escape(section.heading)}</h2>')
        out += [_block(block, ids) for block in section.blocks]
        out.append("</section>")
    out += ["</main>", "</body>", "</html>", ""]
    return "\n".join(out)


def _human_time(report: Report) -> str:
    text = report.generated.strftime("%Y-%m-%d %H:%M")
    offset = report.generated.strftime("%z")
    return f"{text} UTC" if offset in ("+0000", "") else f"{text} {offset}"


class _Ids:
    def __init__(self) -> None:
        self.count = 0

    def next(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.count}"


def _block(block: Block, ids: _Ids) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, MetricRow):
        return _metrics(block)
    if isinstance(block, Table):
        return _table(block)
    return _chart(block, ids)


def _metrics(row: MetricRow) -> str:
    items = []
    for metric in row.metrics:
        detail = f'<span class="detail">{escape(metric.detail)}</span>' if metric.detail else ""
        items.append(
            f'<li class="metric"><span class="label">{escape(metric.label)}</span>'
            f'<span class="value">{escape(metric.value)}</span>{detail}</li>'
        )
    return f'<ul class="metrics">{"".join(items)}</ul>'


def _table(table: Table) -> str:
    parts = ["<table>"]
    if table.caption:
        parts.append(f"<caption>{escape(table.caption)}</caption>")
    head = "".join(f'<th scope="col">{escape(col)}</th>' for col in table.columns)
    parts.append(f"<thead><tr>{head}</tr></thead><tbody>")
    for row in table.rows:
        cells = "".join(_cell(value) for value in row)
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _cell(value: Cell) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{'' if value is None else escape(str(value))}</td>"
    if isinstance(value, int | float):
        return f'<td class="num">{escape(format_number(value))}</td>'
    return f"<td>{escape(value)}</td>"


def format_number(value: int | float) -> str:
    """Integers with thousands separators, floats to at most 2 decimals."""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value == value else "NaN"


def _chart(chart: Chart, ids: _Ids) -> str:
    svg = chart_svg(chart)
    title_id, desc_id = ids.next("chart-title"), ids.next("chart-desc")
    match = _SVG_OPEN.search(svg)
    if match is None:  # pragma: no cover - vl_convert always returns an <svg> root
        svg_open, rest = "<svg>", svg
    else:
        svg_open, rest = match.group(0), svg[match.end() :]
    svg_open = svg_open[:-1] + f' role="img" aria-labelledby="{title_id} {desc_id}">'
    return (
        f'<figure>{svg_open}<title id="{title_id}">{escape(chart.title)}</title>'
        f'<desc id="{desc_id}">{escape(chart.description)}</desc>{rest}'
        f"<figcaption>{escape(chart.title)}</figcaption></figure>"
    )
