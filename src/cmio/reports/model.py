"""The report document model: sections of paragraphs, metric tiles, tables and charts.

Rendered by :func:`cmio.reports.render_html` and :func:`cmio.reports.render_pdf`. Charts
are [Vega-Lite v5](https://vega.github.io/vega-lite/docs/spec.html) specifications with
inline data (``data.values``); anything else is refused with :class:`ReportError` when the
block is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
]

Cell = str | int | float | None

_VIEW_KEYS = ("mark", "layer", "facet", "hconcat", "vconcat", "concat", "repeat")


class ReportError(ValueError):
    """A report block is malformed (the message names the block and the problem)."""


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A paragraph of plain text."""

    text: str


@dataclass(frozen=True, slots=True)
class Metric:
    """One headline figure: ``Metric("CMS122 poor control", "18.2%", "target <= 20%")``."""

    label: str
    value: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MetricRow:
    """A row of metric tiles."""

    metrics: Sequence[Metric]


@dataclass(frozen=True, slots=True)
class Table:
    """A table: header ``columns`` and ``rows`` of cells (each row as long as ``columns``)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    caption: str = ""

    def __post_init__(self) -> None:
        if not self.columns:
            raise ReportError(f"Table {self.caption!r}: no columns")
        for i, row in enumerate(self.rows):
            if isinstance(row, str) or len(row) != len(self.columns):
                raise ReportError(
                    f"Table {self.caption!r}: row {i} has {len(row)} cells, "
                    f"expected {len(self.columns)}"
                )


@dataclass(frozen=True, slots=True)
class Chart:
    """A Vega-Lite v5 chart with inline data; ``description`` is its alt text."""

    spec: Mapping[str, Any]
    title: str
    description: str

    def __post_init__(self) -> None:
        check_vega_lite(self.spec, self.title)
        if not self.description.strip():
            raise ReportError(f"Chart {self.title!r}: a description (alt text) is required")


Block = Paragraph | MetricRow | Table | Chart


@dataclass(frozen=True, slots=True)
class Section:
    """A headed section of blocks."""

    heading: str
    blocks: Sequence[Block]


@dataclass(frozen=True, slots=True)
class Report:
    """A whole report."""

    title: str
    subtitle: str
    generated: datetime
    sections: Sequence[Section]


def check_vega_lite(spec: object, title: str) -> None:
    """Refuse what is not a self-contained Vega-Lite specification.

    Args:
        spec: the candidate specification.
        title: the chart's title, for the message.

    Raises:
        ReportError: not a mapping, a Vega (not Vega-Lite) ``$schema``, no view
            (``mark``, ``layer``, ``facet``, ``concat``, ``repeat``), or data by URL
            (reports are standalone files, https://vega.github.io/vega-lite/docs/data.html).
    """
    where = f"Chart {title!r}"
    if not isinstance(spec, Mapping):
        raise ReportError(f"{where}: the spec must be a JSON object, not {type(spec).__name__}")
    schema = spec.get("$schema")
    if schema is not None and (not isinstance(schema, str) or "vega-lite" not in schema):
        raise ReportError(f"{where}: $schema {schema!r} is not a Vega-Lite schema")
    if not any(key in spec for key in _VIEW_KEYS):
        raise ReportError(
            f"{where}: not a Vega-Lite specification (needs one of {', '.join(_VIEW_KEYS)})"
        )
    _check_data(spec, where)


def _check_data(node: object, where: str) -> None:
    if isinstance(node, Mapping):
        data = node.get("data")
        if isinstance(data, Mapping) and "url" in data:
            raise ReportError(f"{where}: data.url is not allowed; inline the data (data.values)")
        for value in node.values():
            _check_data(value, where)
    elif isinstance(node, list):
        for value in node:
            _check_data(value, where)
