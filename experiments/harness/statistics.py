"""Confidence intervals for evaluation tables: per-row means and paired differences over seeds.

Episodes of one row are independent draws (one seed each), so a row's mean gets a Student-t
interval; success and collision rates, which are proportions, get a Wilson score interval
(the t interval collapses to zero width at 0% or 100%, which no finite sample justifies, and
the Wilson interval is asymmetric there, so an interval keeps both of its bounds).
Two planners run on the same seeds are compared by their paired differences, which cancels
the seed-to-seed spread of the task itself (a hard layout is hard for every planner).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


class Interval(NamedTuple):
    """An estimate and its confidence interval ``[low, high]`` from ``count`` values."""

    mean: float
    low: float
    high: float
    count: int

    @property
    def half_width(self) -> float:
        """The larger distance from the estimate to a bound (the ``h`` of ``mean ± h``)."""
        return max(self.mean - self.low, self.high - self.mean)

    def __str__(self) -> str:
        """``mean ± h`` if symmetric, else ``mean [low, high]``; ``n/a`` without values."""
        if self.count == 0:
            return "n/a"
        if math.isclose(self.mean - self.low, self.high - self.mean, rel_tol=1e-9, abs_tol=1e-12):
            return f"{_fmt(self.mean)} ± {_fmt(self.half_width)}"
        return f"{_fmt(self.mean)} [{_fmt(self.low)}, {_fmt(self.high)}]"


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def mean_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Mean of ``values (n,)`` with a Student-t interval (infinitely wide for n = 1, NaN for 0)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(values.mean())
    if n == 1:
        return Interval(mean, -math.inf, math.inf, 1)
    sem = values.std(ddof=1) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sem)
    return Interval(mean, mean - half, mean + half, n)


def interval_record(values: np.ndarray, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """:func:`mean_interval` of ``values (n,)`` as JSON-ready numbers (``mean``, ``low``,
    ``high``) and as text (``text``: ``mean ± h``)."""
    interval = mean_interval(values, confidence)
    return {
        "mean": interval.mean,
        "low": interval.low,
        "high": interval.high,
        "text": str(interval),
    }


def proportion_interval(hits: np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Rate of ``hits (n,)`` (booleans) with its Wilson score interval.

    The estimate is the observed rate; the bounds are Wilson's, which stay inside [0, 1] and
    keep a non-zero width at 0/n and n/n.
    """
    hits = np.asarray(hits, dtype=bool)
    n = len(hits)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    rate = float(hits.mean())
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    spread = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    # The Wilson interval holds the observed rate; the clamps keep rounding (a bound of
    # 0.9999999999999999 at n/n) from putting the rate outside it
    low, high = min(rate, max(0.0, centre - spread)), max(rate, min(1.0, centre + spread))
    return Interval(rate, low, high, n)


def paired_difference(
    first: np.ndarray, second: np.ndarray, confidence: float = CONFIDENCE
) -> Interval:
    """Mean of ``first - second`` (each ``(n,)``, same seeds), with a t interval on differences."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError(
            f"a paired comparison needs one value per seed on both sides, got {first.shape} "
            f"and {second.shape}"
        )
    return mean_interval(first - second, confidence)
