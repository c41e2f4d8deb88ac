"""Reporting periods: the text forms people type, and the period before."""

from __future__ import annotations

from datetime import date

import pytest

from cmio.oversight import ReportingPeriod


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2025", date(2025, 1, 1), date(2025, 12, 31)),
        ("2025-Q1", date(2025, 1, 1), date(2025, 3, 31)),
        ("2024-q4", date(2024, 10, 1), date(2024, 12, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2025-03/2025-05", date(2025, 3, 1), date(2025, 5, 31)),
        ("2025-03-02/2025-03-09", date(2025, 3, 2), date(2025, 3, 9)),
    ],
)
def test_parse(text: str, start: date, end: date) -> None:
    period = ReportingPeriod.parse(text)
    assert (period.start, period.end) == (start, end)
    assert period.span == f"{start.isoformat()}/{end.isoformat()}"


@pytest.mark.parametrize("text", ["", "25", "2025-13", "2025-Q5", "2025-05/2025-03", "last year"])
def test_bad_periods_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="period"):
        ReportingPeriod.parse(text)


def test_previous_periods_and_months() -> None:
    assert ReportingPeriod.parse("2025").previous().label == "2024"
    assert ReportingPeriod.parse("2025-Q1").previous().label == "2024-Q4"
    assert ReportingPeriod.parse("2025-01").previous().label == "2024-12"
    week = ReportingPeriod.parse("2025-03-08/2025-03-14").previous()
    assert (week.start, week.end) == (date(2025, 3, 1), date(2025, 3, 7))
    assert ReportingPeriod.parse("2025-Q4").months() == ["2025-10", "2025-11", "2025-12"]
    assert ReportingPeriod.parse("2024").days == 366
