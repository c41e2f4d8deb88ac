"""``cmio report``: the steering-committee report written as PDF and HTML."""

from __future__ import annotations

import re
import zlib
from html import unescape
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cmio.cli.main import app
from cmio.oversight import ReportingPeriod
from cmio.oversight.areas import AREAS, AreaInputs, collect
from cmio.reports.text import latin1
from cmio.testing.web import build_store


def _pdf_text(pdf: bytes) -> str:
    shown: list[str] = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            data = zlib.decompress(match.group(1))
        except zlib.error:
            continue
        shown += [m.decode("latin-1") for m in re.findall(rb"\((.*?)(?<!\\)\)\s*Tj", data)]
    return re.sub(r"\\([()\\])", r"\1", "\n".join(shown))


CHEAP = ("ehr-use", "governance")
"""Areas quick to compute (every area runs in tests/web/test_reports.py)."""


def test_report_writes_pdf_and_html_with_the_areas_figures(
    tmp_path: Path, monkeypatch: Any
) -> None:
    url = build_store(tmp_path / "site", patients=12)
    monkeypatch.setenv("CMIO_HL7_JOURNAL", str(tmp_path / "no-journal.db"))
    monkeypatch.setenv("CMIO_TERMINOLOGY_DB", str(tmp_path / "no-terminology.db"))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["report", "--period", "2025", "--database-url", url, "--out", str(out)]
        + [f"--area={key}" for key in CHEAP],
    )
    assert result.exit_code == 0, result.output
    pdf, html = out / "steering-2025.pdf", out / "steering-2025.html"
    assert str(pdf) in result.output and str(html) in result.output
    assert pdf.read_bytes().startswith(b"%PDF-") and pdf.read_bytes().rstrip().endswith(b"%%EOF")
    pdf_text, html_text = _pdf_text(pdf.read_bytes()), unescape(html.read_text("utf-8"))

    from cmio.indexing import SearchIndexer
    from cmio.model import load_model
    from cmio.store import open_repository

    repository = open_repository(url, indexer=SearchIndexer(load_model()))
    areas = [a for a in AREAS if a.key in CHEAP]
    try:
        period = ReportingPeriod.parse("2025")
        direct = collect(AreaInputs(repository), period, areas=areas, sections=True)
    finally:
        repository.close()
    assert [r.area.key for r in direct] == list(CHEAP)
    for text, form in ((pdf_text, latin1), (html_text, str)):
        assert "Executive summary" in text and "Period 2025: 2025-01-01 to 2025-12-31" in text
        for r in direct:
            if not r.available:
                assert r.area.title in text
            for section in r.sections:
                assert form(section.heading) in text
            for headline in r.headlines:
                assert form(headline.value) in text
        assert f"of {len(CHEAP)} areas reported" in text


def test_report_refuses_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cmio.db'}"
    bad = runner.invoke(app, ["report", "--period", "2026-13", "--database-url", url])
    assert bad.exit_code != 0 and "bad month" in bad.output
    fmt = runner.invoke(
        app, ["report", "--period", "2026", "--format", "docx", "--database-url", url]
    )
    assert fmt.exit_code != 0 and "docx" in fmt.output
    area = runner.invoke(
        app, ["report", "--period", "2026", "--area", "weather", "--database-url", url]
    )
    assert area.exit_code != 0 and "weather" in area.output
