"""Distributions of a figure across clinicians or departments: quartiles, percentile
ranks and the outlier rule the oversight pages use.

Quantiles are continuous (linear interpolation between order statistics, the R-7 /
``QUANTILE_CONT`` / ``numpy.percentile`` default,
https://en.wikipedia.org/wiki/Quantile#Estimating_quantiles_from_a_sample), the same
definition as the peer percentiles of :mod:`cmio.measures.ehr_use`. Percentile ranks are
SQL's ``PERCENT_RANK``: the share of the *other* values that are strictly lower.

Outlier rule (Tukey's fences, https://en.wikipedia.org/wiki/Outlier#Tukey's_fences):
with at least :data:`MIN_FOR_OUTLIERS` values, a value is an **outlier** when it lies
beyond the fence on the unfavourable side (above Q3 + 1.5 IQR when more is worse, below
Q1 - 1.5 IQR when more is better) and **high** (or **low**) when it is past the 90th
(10th) percentile but inside the fence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["MIN_FOR_OUTLIERS", "Distribution", "distribution", "percent_rank", "quantile"]

MIN_FOR_OUTLIERS = 4
"""Fewer values than this give no outliers (quartiles of three numbers say little)."""


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """The continuous ``q`` quantile (0-1) of ascending ``ordered`` values (None if empty)."""
    if not ordered:
        return None
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is not between 0 and 1")
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def percent_rank(values: Sequence[float], value: float) -> float:
    """``PERCENT_RANK`` of ``value`` among ``values`` (which include it): the share of the
    other values strictly below it; 0 when it is alone."""
    if len(values) <= 1:
        return 0.0
    below = sum(1 for v in values if v < value)
    return below / (len(values) - 1)


@dataclass(frozen=True, slots=True)
class Distribution:
    """One figure across a population (e.g. EHR-Time8 across clinicians).

    Attributes:
        count: how many values. minimum, p10, q1, median, q3, p90, maximum: the
            continuous quantiles (None without values).
        higher_is_worse: the unfavourable direction (for the outlier rule).
    """

    count: int
    minimum: float | None
    p10: float | None
    q1: float | None
    median: float | None
    q3: float | None
    p90: float | None
    maximum: float | None
    higher_is_worse: bool = True

    @property
    def iqr(self) -> float | None:
        """The interquartile range Q3 - Q1."""
        if self.q1 is None or self.q3 is None:
            return None
        return self.q3 - self.q1

    @property
    def fence(self) -> float | None:
        """Tukey's fence on the unfavourable side (None below :data:`MIN_FOR_OUTLIERS`)."""
        iqr = self.iqr
        if iqr is None or self.q1 is None or self.q3 is None or self.count < MIN_FOR_OUTLIERS:
            return None
        return self.q3 + 1.5 * iqr if self.higher_is_worse else self.q1 - 1.5 * iqr

    def flag(self, value: float | None) -> str:
        """``outlier``, ``high`` (``low`` when more is better) or empty (see the module)."""
        fence = self.fence
        if value is None or fence is None:
            return ""
        if self.higher_is_worse:
            if value > fence:
                return "outlier"
            return "high" if self.p90 is not None and value > self.p90 else ""
        if value < fence:
            return "outlier"
        return "low" if self.p10 is not None and value < self.p10 else ""

    def rule(self, flag: str) -> str:
        """The rule behind a flag, in words with the threshold."""
        side = "above" if self.higher_is_worse else "below"
        if flag == "outlier" and self.fence is not None:
            bound = "Q3 + 1.5 IQR" if self.higher_is_worse else "Q1 - 1.5 IQR"
            return f"{side} {bound} ({self.fence:.2f})"
        limit = self.p90 if self.higher_is_worse else self.p10
        if flag in ("high", "low") and limit is not None:
            return (
                f"{side} the {'90th' if self.higher_is_worse else '10th'} percentile ({limit:.2f})"
            )
        return ""


def distribution(values: Iterable[float | None], *, higher_is_worse: bool = True) -> Distribution:
    """The :class:`Distribution` of the non-missing ``values``."""
    ordered = sorted(float(v) for v in values if v is not None and not math.isnan(v))
    return Distribution(
        count=len(ordered),
        minimum=ordered[0] if ordered else None,
        p10=quantile(ordered, 0.1),
        q1=quantile(ordered, 0.25),
        median=quantile(ordered, 0.5),
        q3=quantile(ordered, 0.75),
        p90=quantile(ordered, 0.9),
        maximum=ordered[-1] if ordered else None,
        higher_is_worse=higher_is_worse,
    )
