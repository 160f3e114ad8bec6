"""Confidence intervals of the evaluation tables, checked against hand computations."""

import math

import numpy as np
import pytest

from experiments.harness.statistics import (
    Interval,
    mean_interval,
    paired_difference,
    proportion_interval,
)

T_975 = {2: 4.302652729911275, 3: 3.182446305284263}
"""Student t quantiles at 0.975 by degrees of freedom (from tables)."""
Z_975 = 1.959963984540054


def test_t_interval_of_a_mean_matches_the_hand_computation():
    interval = mean_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    # mean 2.5, sample standard deviation sqrt(5/3), n = 4: half-width t * sd / sqrt(4)
    half = T_975[3] * math.sqrt(5 / 3) / 2
    assert interval.mean == pytest.approx(2.5)
    assert (interval.low, interval.high) == pytest.approx((2.5 - half, 2.5 + half))
    assert interval.half_width == pytest.approx(half)
    assert interval.count == 4
    assert str(interval) == f"2.5 ± {half:.3g}"


def test_one_value_has_no_interval_and_none_has_no_mean():
    assert mean_interval(np.array([3.0])) == Interval(3.0, -math.inf, math.inf, 1)
    assert str(mean_interval(np.array([]))) == "n/a"


def test_wilson_interval_matches_the_textbook_value():
    interval = proportion_interval(np.array([1] * 8 + [0] * 2))
    assert interval.mean == 0.8
    assert (interval.low, interval.high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert str(interval) == "0.8 [0.49, 0.943]"


@pytest.mark.parametrize("hits", [0, 10])
def test_wilson_interval_keeps_a_width_at_none_and_all(hits):
    interval = proportion_interval(np.array([1] * hits + [0] * (10 - hits), dtype=bool))
    width = Z_975**2 / (10 + Z_975**2)  # the Wilson bound at 0/n is z^2 / (n + z^2)
    assert interval.mean == hits / 10
    assert interval.high - interval.low == pytest.approx(width)
    assert 0.0 <= interval.low <= interval.mean <= interval.high <= 1.0


def test_paired_difference_is_a_t_interval_on_the_differences():
    first, second = np.array([3.0, 5.0, 7.0]), np.array([1.0, 2.0, 3.0])
    interval = paired_difference(first, second)
    # differences 2, 3, 4: mean 3, standard deviation 1
    half = T_975[2] / math.sqrt(3)
    assert (interval.mean, interval.low, interval.high) == pytest.approx((3, 3 - half, 3 + half))
    # unpaired, the spread of each side would swamp the same difference
    assert interval.half_width < mean_interval(first).half_width


def test_paired_difference_needs_the_same_seeds_on_both_sides():
    with pytest.raises(ValueError, match="one value per seed"):
        paired_difference(np.zeros(3), np.zeros(4))
