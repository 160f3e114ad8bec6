"""Trajectory datasets: the seed's unicycle arcs, smooth random actions, the unicycle action mix."""

import numpy as np
import pytest

from envs.datasets import smooth_random_actions, unicycle_action_dataset, unicycle_arcs
from envs.unicycle_world import UnicycleConfig, UnicycleObjective


@pytest.fixture(scope="module")
def arcs():
    return unicycle_arcs(20_000, seed=0)


def test_arc_shapes_and_bounds(arcs):
    num, horizon = 20_000, 64
    assert arcs.states.shape == (num, horizon, 2)
    assert arcs.actions.shape == arcs.actions_normalized.shape == (num, horizon, 2)
    assert arcs.in_bounds.shape == arcs.theta0.shape == (num,)
    assert np.all(np.abs(arcs.actions_normalized) <= 1.0)
    assert np.all(arcs.actions == arcs.actions[:, :1])  # constant along each arc
    assert 0.99 < arcs.in_bounds.mean() < 1.0  # measured 0.9969: a few arcs turn too hard


def test_arc_statistics_match_the_stated_distributions(arcs):
    half = np.pi / 8
    assert -half <= arcs.theta0.min() < -half + 0.01 and half - 0.01 < arcs.theta0.max() <= half
    assert abs(arcs.theta0.mean()) < 0.01
    assert arcs.theta0.std() == pytest.approx(2 * half / np.sqrt(12), rel=0.02)
    assert 0.5 <= arcs.speed.min() < 0.51 and 0.99 < arcs.speed.max() <= 1.0
    assert arcs.speed.std() == pytest.approx(0.5 / np.sqrt(12), rel=0.02)
    assert abs(arcs.curvature.mean()) < 0.03
    assert arcs.curvature.std() == pytest.approx(1.0, rel=0.02)
    np.testing.assert_allclose(arcs.actions[:, 0, 1], arcs.speed * arcs.curvature)
    lengths = np.linalg.norm(np.diff(arcs.states, axis=1), axis=2).sum(1)
    np.testing.assert_allclose(lengths, arcs.speed * 0.63, rtol=1e-3)  # 63 chords after step 1


def test_blog_goal_is_among_the_arc_endpoints(arcs):
    distance = np.linalg.norm(arcs.states[:, -1] - [0.4, 0.2], axis=1)
    assert distance.min() < 0.01  # measured 0.0026
    assert (distance < 0.02).sum() >= 40  # measured 87 of 20k


def test_arcs_follow_the_env_integrator():
    config = UnicycleConfig(dt=0.01)
    arcs = unicycle_arcs(8, seed=3, config=config)
    objective = UnicycleObjective(config)
    for index in np.flatnonzero(arcs.in_bounds):
        state = np.array([0.0, 0.0, arcs.theta0[index], 100.0, 0.0])  # goal far away
        poses = objective.rollout_states(state, arcs.actions_normalized[index][None])[0]
        np.testing.assert_allclose(poses[1:, :2], arcs.states[index], atol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: unicycle_arcs(50, seed=seed).states,
        lambda seed: smooth_random_actions(50, 16, 3, seed=seed),
        lambda seed: unicycle_action_dataset(50, seed=seed),
    ],
)
def test_datasets_are_deterministic_under_seed(make):
    np.testing.assert_array_equal(make(5), make(5))
    np.testing.assert_array_equal(make(np.random.default_rng(5)), make(5))
    assert not np.array_equal(make(5), make(6))


def test_smooth_random_actions_shapes_bounds_and_smoothness():
    actions = smooth_random_actions(4000, 32, 3, seed=0, segments=(2, 2), ramp_steps=(4.0, 4.0))
    assert actions.shape == (4000, 32, 3)
    assert np.all(np.abs(actions) <= 1.0)
    # one switch through a smoothstep of width 4: at most 1.5 / 4 of a level gap (<= 2) per step
    assert np.abs(np.diff(actions, axis=1)).max() <= 0.75 + 1e-12
    held = np.abs(np.diff(actions, axis=1)) < 1e-12
    assert held.mean() > 0.8  # measured 0.848: long constant stretches ("turn, then straight")
    constant = smooth_random_actions(100, 16, 2, seed=0, segments=(1, 1))
    assert np.all(constant == constant[:, :1])


def test_smooth_random_actions_uses_and_checks_the_level_sampler():
    ones = smooth_random_actions(10, 8, 2, seed=0, level_sampler=lambda rng, shape: np.ones(shape))
    assert np.all(ones == 1.0)
    with pytest.raises(ValueError, match="clip its output"):
        smooth_random_actions(10, 8, 2, seed=0, level_sampler=lambda rng, shape: 2 * np.ones(shape))
    with pytest.raises(ValueError, match="segments"):
        smooth_random_actions(10, 8, 2, seed=0, segments=(0, 2))
    with pytest.raises(TypeError, match="seed"):
        smooth_random_actions(10, 8, 2, seed=1.5)


def test_unicycle_action_dataset_covers_the_manoeuvres():
    actions = unicycle_action_dataset(10_000, seed=0)
    speed, yaw = actions[..., 0], actions[..., 1]
    assert actions.shape == (10_000, 16, 2) and np.all(np.abs(actions) <= 1.0)
    # measured fractions of steps: full speed 0.41, stopped 0.071, straight 0.185, hardest
    # left/right turn 0.072/0.071, turning in place 0.014; constant sequences (arcs) 0.306
    assert (speed == 1.0).mean() > 0.3
    assert (speed == -1.0).mean() > 0.04
    assert (yaw == 0.0).mean() > 0.12
    assert (yaw == 1.0).mean() > 0.04 and (yaw == -1.0).mean() > 0.04
    assert ((speed == -1.0) & (np.abs(yaw) == 1.0)).mean() > 0.007
    assert 0.3 <= np.all(actions == actions[:, :1], axis=(1, 2)).mean() < 0.35
    turn_then_straight = (np.abs(yaw[:, 0]) > 0.5) & (yaw[:, -1] == 0.0)
    assert turn_then_straight.mean() > 0.025  # measured 0.053
    with pytest.raises(ValueError, match="<= 1"):
        unicycle_action_dataset(10, straight_probability=0.6, full_turn_probability=0.6)
