"""Plans as K knots: each interpolation maps K knots to H actions as stated, plans shift in env
steps, and a search distribution moves by whole knots."""

import numpy as np
import pytest

from planner.knots import INTERPOLATIONS, KnotClock, KnotObjective, KnotSchedule, over_knots

RNG = np.random.default_rng(0)


def test_hold_repeats_each_knot_over_its_span():
    knots = RNG.uniform(-1, 1, (4, 2))
    actions = KnotSchedule(16, 4, "hold").actions(knots)
    assert actions.shape == (16, 2)
    np.testing.assert_array_equal(actions, np.repeat(knots, 4, axis=0))


def test_hold_spans_cover_a_horizon_not_divisible_by_the_knots():
    actions = KnotSchedule(10, 3, "hold").actions(np.array([[0.0], [1.0], [2.0]]) / 2)
    np.testing.assert_array_equal(actions[:, 0] * 2, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_linear_and_cubic_pass_through_the_knots(interpolation):
    knots = RNG.uniform(-0.5, 0.5, (4, 3))
    actions = KnotSchedule(13, 4, interpolation).actions(knots)  # knots at steps 0, 4, 8, 12
    assert actions.shape == (13, 3)
    np.testing.assert_allclose(actions[[0, 4, 8, 12]], knots, atol=1e-12)


def test_linear_is_the_straight_line_between_knots():
    actions = KnotSchedule(5, 2, "linear").actions(np.array([[-1.0], [1.0]]))
    np.testing.assert_allclose(actions[:, 0], [-1, -0.5, 0, 0.5, 1])


def test_cubic_is_smooth_and_stays_in_the_action_box():
    knots = np.array([[-1.0], [1.0], [-1.0], [1.0]])
    actions = KnotSchedule(31, 4, "cubic").actions(knots)
    assert np.all(np.abs(actions) <= 1.0)
    # It reproduces a straight line exactly (finite-difference slopes of a line are its slope).
    line = np.linspace(-0.9, 0.9, 4)[:, None]
    np.testing.assert_allclose(
        KnotSchedule(31, 4, "cubic").actions(line)[:, 0], np.linspace(-0.9, 0.9, 31), atol=1e-12
    )


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_a_knot_per_step_is_the_identity(interpolation):
    schedule = KnotSchedule(6, None, interpolation)
    assert schedule.identity and schedule.knots == 6
    plan = RNG.uniform(-1, 1, (5, 6, 2))
    assert schedule.actions(plan) is plan
    np.testing.assert_array_equal(schedule.matrix, np.eye(6))
    fill = np.array([0.25, -0.5])
    shifted = schedule.shift(plan, 2, fill)
    np.testing.assert_array_equal(shifted[:, :4], plan[:, 2:])
    np.testing.assert_array_equal(shifted[:, 4:], np.broadcast_to(fill, (5, 2, 2)))
    np.testing.assert_array_equal(schedule.shift(plan, 1)[:, -1], plan[:, -1])


def test_a_held_plan_shifts_by_a_knot_when_its_span_has_passed():
    schedule = KnotSchedule(16, 4, "hold")
    knots = RNG.uniform(-1, 1, (4, 2))
    fill = np.zeros(2)
    np.testing.assert_array_equal(schedule.shift(knots, 1, fill), knots)  # still in knot 0
    np.testing.assert_array_equal(schedule.shift(knots, 4, fill), np.vstack([knots[1:], fill]))


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_a_shifted_plan_is_the_trajectory_resampled_steps_later(interpolation):
    schedule = KnotSchedule(13, 4, interpolation)
    knots = RNG.uniform(-0.5, 0.5, (4, 2))
    shifted = schedule.shift(knots, 2)
    expected = schedule.weights(np.array([2.0, 6.0, 10.0])) @ knots
    np.testing.assert_allclose(shifted[:3], expected, atol=1e-12)
    np.testing.assert_array_equal(shifted[3], knots[-1])  # past the end: the last action
    np.testing.assert_allclose(schedule.actions(knots)[[2, 6, 10]], expected, atol=1e-12)


@pytest.mark.parametrize("interpolation", ["hold", "linear"])
def test_fit_recovers_the_knots_of_interpolated_actions(interpolation):
    schedule = KnotSchedule(20, 5, interpolation)
    knots = RNG.uniform(-1, 1, (3, 5, 2))
    np.testing.assert_allclose(schedule.fit(schedule.actions(knots)), knots, atol=1e-10)


def test_the_clock_moves_whole_knots_within_half_a_knot_of_time():
    clock = KnotClock(KnotSchedule(16, 4))
    moved = [clock.advance(1) for _ in range(16)]
    assert sum(moved) == 4 and set(moved) <= {0, 1}
    elapsed = np.cumsum(np.ones(16)) - 4 * np.cumsum(moved)
    assert np.all(np.abs(elapsed) <= 2)
    assert [KnotClock(KnotSchedule(8)).advance(k) for k in (1, 3)] == [1, 3]


def test_the_objective_scores_the_interpolated_actions():
    seen = []

    def objective(state, actions):
        seen.append(actions.shape)
        return actions.sum(axis=(1, 2))

    schedule = KnotSchedule(12, 3, "hold")
    wrapped = over_knots(objective, schedule)
    assert (
        isinstance(wrapped, KnotObjective) and over_knots(objective, KnotSchedule(4)) is objective
    )
    knots = np.ones((5, 3, 2))
    np.testing.assert_array_equal(wrapped(None, knots), np.full(5, 24.0))
    np.testing.assert_array_equal(wrapped.bind(None)(knots), np.full(5, 24.0))
    assert seen == [(5, 12, 2), (5, 12, 2)]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((8, 9), "exceeds the horizon"),
        ((8, 0), "KnotSchedule.knots"),
        ((8, 4, "spline"), "interpolation must be one of"),
        ((8, 1, "linear"), "at least 2 knots"),
    ],
)
def test_a_bad_schedule_is_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        KnotSchedule(*arguments)
