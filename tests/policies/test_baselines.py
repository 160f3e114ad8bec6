"""Action-space baselines share the planner interface and improve on a toy objective."""

import numpy as np
import pytest

from planner.mpc import PlannerConfig
from policies.cem import make_cem
from policies.icem import ICEMConfig, ICEMPlanner, colored_noise
from policies.mppi import MPPIConfig, MPPIPlanner
from policies.random_shooting import RandomShootingPlanner

H, A, N, T = 10, 2, 32, 3
GOAL = np.array([0.6, 0.4])


def point_mass(state, actions):
    end = state[None, :] + 0.1 * actions.sum(axis=1)
    return -np.linalg.norm(end - GOAL, axis=1)


BUILDERS = {
    "cem": lambda seed: make_cem(
        point_mass, H, A, PlannerConfig(population=N, iterations=T, init_std=0.5), seed
    ),
    "icem": lambda seed: ICEMPlanner(
        point_mass, H, A, ICEMConfig(population=N, iterations=T), seed
    ),
    "mppi": lambda seed: MPPIPlanner(
        point_mass, H, A, MPPIConfig(population=N, iterations=T), seed
    ),
    "random": lambda seed: RandomShootingPlanner(point_mass, H, A, N, T, seed),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_planner_contract_and_improvement(name):
    planner = BUILDERS[name](0)
    result = planner.plan(np.zeros(2))
    assert result.action.shape == (A,)
    assert result.plan.shape == (H, A)
    assert np.all(np.abs(result.plan) <= 1.0)
    assert result.reward_evaluations == N * T  # equal budgets, extras included
    executed = point_mass(np.zeros(2), result.plan[None])[0]
    do_nothing = point_mass(np.zeros(2), np.zeros((1, H, A)))[0]
    assert executed > do_nothing + 0.2, (executed, do_nothing)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_predicted_reward_is_the_reward_of_the_returned_plan(name):
    planner, state = BUILDERS[name](0), np.zeros(2)
    for _ in range(3):
        result = planner.plan(state)
        assert result.predicted_reward == pytest.approx(point_mass(state, result.plan[None])[0])
        state = state + 0.1 * result.action


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_same_seed_same_actions(name):
    first, second = BUILDERS[name](7), BUILDERS[name](7)
    for _ in range(3):
        np.testing.assert_array_equal(
            first.plan(np.zeros(2)).action, second.plan(np.zeros(2)).action
        )


def test_red_noise_is_smoother_than_white_noise():
    rng = np.random.default_rng(0)
    red = colored_noise(2.0, (256, 32, 2), rng)
    white = colored_noise(0.0, (256, 32, 2), rng)
    np.testing.assert_allclose(red.std(axis=1).mean(), 1.0, atol=1e-6)
    step_red = np.abs(np.diff(red, axis=1)).mean()
    step_white = np.abs(np.diff(white, axis=1)).mean()
    assert step_red < 0.5 * step_white, (step_red, step_white)


def test_mppi_does_not_touch_the_global_torch_rng():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    BUILDERS["mppi"](0).plan(np.zeros(2))
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())
