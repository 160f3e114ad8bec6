"""ActionScaling: the one map between planner actions in [-1, 1] and an env's units."""

import numpy as np
import pytest

from planner.action_scaling import ActionScaling

UNICYCLE = ActionScaling([0.0, -2.5], [1.0, 2.5])  # speed in [0, 1], yaw rate within +-2.5


def uniform(shape, seed=0, bound=1.0):
    return np.random.default_rng(seed).uniform(-bound, bound, size=shape)


def test_round_trip_for_uneven_bounds():
    scaling = ActionScaling([-3.0, 0.5, 10.0], [1.0, 0.75, 400.0])
    normalised = uniform((100, 3))
    in_env = scaling.to_env(normalised)
    assert np.all(in_env >= scaling.low) and np.all(in_env <= scaling.high)
    np.testing.assert_allclose(scaling.to_normalised(in_env), normalised, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(
        scaling.to_env([[-1.0] * 3, [1.0] * 3]), [scaling.low, scaling.high]
    )
    np.testing.assert_array_equal(scaling.to_env(np.zeros(3)), [-1.0, 0.625, 205.0])


def test_out_of_range_actions_are_clipped_both_ways():
    np.testing.assert_array_equal(
        UNICYCLE.to_env([[3.0, -7.0], [-1.5, 1.01]]), [[1, -2.5], [0, 2.5]]
    )
    outside = np.array([2.0, -5.0])  # twice the top speed, twice the yaw rate to the right
    np.testing.assert_array_equal(UNICYCLE.to_normalised(outside), [1.0, -1.0])
    np.testing.assert_array_equal(UNICYCLE.to_normalised(outside, clip=False), [3.0, -2.0])


def test_unit_bounds_are_the_identity_bit_for_bit():
    scaling = ActionScaling(-np.ones(4), np.ones(4))
    actions = np.concatenate(
        [uniform((1000, 4)), [[-1.0, 1.0, 0.0, 1e-300], [5e-324, -0.0, 1, -1]]]
    )
    np.testing.assert_array_equal(scaling.to_env(actions), actions)
    np.testing.assert_array_equal(scaling.to_normalised(actions), actions)


def test_unicycle_matches_the_formulas_it_replaced_bit_for_bit():
    """Speed = 0.5 (a0 + 1), yaw rate = 2.5 a1: what the unicycle computed before, so episodes
    and shipped results are unchanged by the shared scaling."""
    actions = np.concatenate([uniform((10_000, 2), seed=1), [[-1.0, -1.0], [1.0, 1.0], [0, 0]]])
    expected = np.stack([0.5 * (actions[:, 0] + 1.0), actions[:, 1] * 2.5], axis=-1)
    np.testing.assert_array_equal(UNICYCLE.to_env(actions), expected)


@pytest.mark.parametrize("low, high", [([-np.inf], [np.inf]), ([0.0, -1.0], [1.0, np.inf])])
def test_infinite_bounds_point_to_the_wrapper(low, high):
    with pytest.raises(ValueError, match=r"must be finite.*ClipAction"):
        ActionScaling(low, high)


@pytest.mark.parametrize("low, high", [([0.0, 1.0], [1.0, 1.0]), ([0.0, 2.0], [1.0, 1.0])])
def test_bounds_need_low_below_high(low, high):
    with pytest.raises(ValueError, match="low < high in every dimension"):
        ActionScaling(low, high)


def test_bounds_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match=r"two \(A,\) arrays"):
        ActionScaling([0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"two \(A,\) arrays"):
        ActionScaling(np.zeros((2, 2)), np.ones((2, 2)))
