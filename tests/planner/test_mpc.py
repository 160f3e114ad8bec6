"""RecedingHorizonPlanner on a toy point-mass objective with an identity decoder."""

import numpy as np
import pytest
import torch

from planner.mpc import PlannerConfig, RecedingHorizonPlanner
from policies.cem import ActionSpaceDecoder

H, A = 8, 2
GOAL = np.array([0.5, -0.3])


def point_mass(state: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """x_{t+1} = x_t + 0.1 a_t; reward = -distance of the end point to GOAL."""
    end = state[None, :] + 0.1 * actions.sum(axis=1)
    return -np.linalg.norm(end - GOAL, axis=1)


def make(config: PlannerConfig = PlannerConfig(population=32, iterations=3), objective=point_mass):
    return RecedingHorizonPlanner(ActionSpaceDecoder(H, A), objective, config, seed=3)


def test_plan_improves_on_doing_nothing():
    result = make().plan(np.zeros(2))
    assert result.action.shape == (A,)
    assert result.plan.shape == (H, A)
    assert np.all(np.abs(result.plan) <= 1.0)
    do_nothing = point_mass(np.zeros(2), np.zeros((1, H, A)))[0]
    assert result.predicted_reward > do_nothing + 0.2
    assert result.reward_evaluations == 32 * 3 + 1
    assert set(result.timing) == {"decode", "reward", "other"}


def test_same_seed_same_plans():
    first, second = make(), make()
    for step in range(3):
        state = np.array([0.05 * step, 0.0])
        a, b = first.plan(state), second.plan(state)
        np.testing.assert_array_equal(a.plan, b.plan)


def test_shift_warm_start_moves_the_mean_one_step():
    planner = make()
    planner.plan(np.zeros(2))
    mean_after_search = planner.elites.mean.clone()
    seen = []
    ask = planner.elites.ask

    def spy():
        seen.append(planner.elites.mean.clone())
        return ask()

    planner.elites.ask = spy
    planner.plan(np.zeros(2))
    torch.testing.assert_close(seen[0][:-1], mean_after_search[1:])
    torch.testing.assert_close(seen[0][-1], torch.zeros(A))


def test_inversion_warm_start_centres_on_the_shifted_plan():
    planner = make(PlannerConfig(population=32, iterations=2, warm_start="inversion"))
    first = planner.plan(np.zeros(2))
    seen = []
    ask = planner.elites.ask
    planner.elites.ask = lambda: (seen.append(planner.elites.mean.clone()), ask())[1]
    planner.plan(np.zeros(2))
    expected = np.concatenate([first.plan[1:], first.plan[-1:]])
    np.testing.assert_allclose(seen[0].numpy(), expected, atol=1e-6)


def test_replan_every_k_executes_the_cached_plan_in_between():
    planner = make(PlannerConfig(population=16, iterations=2, replan_every=3))
    first = planner.plan(np.zeros(2))
    second, third = planner.plan(np.zeros(2)), planner.plan(np.zeros(2))
    np.testing.assert_array_equal(second.action, first.plan[1])
    np.testing.assert_array_equal(third.action, first.plan[2])
    assert second.reward_evaluations == third.reward_evaluations == 0
    # N*T candidates, the final decode, and the previous plan shifted to now.
    assert planner.plan(np.zeros(2)).reward_evaluations == 16 * 2 + 2


def test_all_invalid_step_keeps_the_previous_plan_and_says_so():
    calls = {"n": 0}

    def breaks_after_first_step(state, actions):
        calls["n"] += 1
        rewards = point_mass(state, actions)
        return rewards if calls["n"] <= 3 else np.full_like(rewards, np.nan)

    planner = make(PlannerConfig(population=16, iterations=2), breaks_after_first_step)
    first = planner.plan(np.zeros(2))
    assert not first.fallback
    second = planner.plan(np.zeros(2))
    assert second.fallback
    np.testing.assert_array_equal(second.action, first.plan[1])


def test_all_invalid_first_step_raises_a_clear_error():
    planner = make(objective=lambda state, actions: np.full(len(actions), np.inf))
    with pytest.raises(RuntimeError, match="non-finite reward on the first planning step"):
        planner.plan(np.zeros(2))


def test_objective_with_wrong_shape_is_reported():
    planner = make(objective=lambda state, actions: np.zeros((len(actions), 1)))
    with pytest.raises(ValueError, match="one reward per candidate"):
        planner.plan(np.zeros(2))


@pytest.mark.parametrize(
    "bad",
    [{"warm_start": "previous"}, {"execute": "median"}, {"iterations": 0}, {"shift_std_scale": 0}],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="PlannerConfig"):
        PlannerConfig(**bad)


@pytest.mark.parametrize("keep", [True, False])
def test_keeping_the_previous_plan_never_executes_a_worse_one(keep):
    config = PlannerConfig(population=4, iterations=1, keep_previous_plan=keep)
    planner = make(config)
    state = np.zeros(2)
    result = planner.plan(state)
    regressions = 0
    for _ in range(8):
        state = state + 0.1 * result.action
        previous = np.concatenate([result.plan[1:], result.plan[-1:]])
        result = planner.plan(state)
        regressions += result.predicted_reward < point_mass(state, previous[None])[0] - 1e-12
    # With a 4-sample search, replanning alone often finds worse plans than the one it had.
    assert regressions == 0 if keep else regressions > 0
