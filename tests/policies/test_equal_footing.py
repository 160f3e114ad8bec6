"""Every planner on equal footing: exact budgets, the same safeguards, the same fallback."""

import copy

import numpy as np
import pytest

from planner.knots import KnotSchedule
from planner.planning import Budget
from planner.safeguards import Safeguards
from policies.planners import PLANNERS, build_planner

H, A, N, T = 8, 2, 16, 3
FILL = (-0.75, 0.5)  # a fill action no search produces by accident
GOAL = np.array([0.5, -0.3])


def point_mass(state, actions):
    """x_{t+1} = x_t + 0.1 a_t; reward = -distance of the end point to GOAL."""
    end = np.asarray(state)[None] + 0.1 * actions.sum(axis=1)
    return -np.linalg.norm(end - GOAL, axis=1)


class Counting:
    """An objective that counts every candidate it scores and can turn to NaN or a target."""

    def __init__(self):
        self.count = 0
        self.horizons = set()
        self.invalid = False
        self.target = None

    def __call__(self, state, actions):
        self.count += len(actions)
        self.horizons.add(actions.shape[1])
        if self.invalid:
            return np.full(len(actions), np.nan)
        if self.target is not None:  # only this exact plan scores 0, everything else < 0
            return -np.abs(actions - self.target).sum(axis=(1, 2))
        return point_mass(state, actions)


def build(kind, objective, safeguards, tiny_action_prior, population=N):
    prior = tiny_action_prior if kind == "de" else None
    budget = Budget(H, A, population, T)
    return build_planner(kind, objective, budget, 1, prior, safeguards=safeguards)


SAFEGUARDS = {
    "all": Safeguards(fill_action=FILL),
    "keep": Safeguards(fill_action=FILL, safe_plan=False),
    "none": Safeguards(keep_previous_plan=False),
}


@pytest.mark.parametrize("population", [4, N])  # 4: the smallest budget of the suites, 4x2
@pytest.mark.parametrize("safeguards", sorted(SAFEGUARDS))
@pytest.mark.parametrize("kind", PLANNERS)
def test_every_planner_spends_exactly_its_budget(kind, safeguards, population, tiny_action_prior):
    objective = Counting()
    planner = build(kind, objective, SAFEGUARDS[safeguards], tiny_action_prior, population)
    state = np.zeros(2)
    for _ in range(3):
        before = objective.count
        result = planner.plan(state)
        assert result.reward_evaluations == objective.count - before == population * T
        assert planner.budget.evaluations == population * T
        state = state + 0.1 * result.action


@pytest.mark.parametrize("interpolation", ["hold", "linear", "cubic"])
@pytest.mark.parametrize("kind", PLANNERS)
def test_every_planner_at_k_knots_scores_n_by_t_rollouts_of_h_steps(
    kind, interpolation, tiny_action_prior
):
    """K = 8 knots over H = 32 steps: every planner searches the knots, and every candidate it
    scores is one rollout of H steps, N x T of them per control step."""
    horizon, knots = 32, tiny_action_prior.horizon
    prior = copy.deepcopy(tiny_action_prior)
    prior.knot_schedule = KnotSchedule(horizon, knots, interpolation)
    budget = Budget(horizon, A, N, T, knots, interpolation)
    objective = Counting()
    safeguards = SAFEGUARDS["all"]
    planner = build_planner(kind, objective, budget, 1, prior, safeguards=safeguards)
    assert planner.budget == budget
    state = np.zeros(2)
    for _ in range(3):
        before = objective.count
        result = planner.plan(state)
        assert result.reward_evaluations == objective.count - before == N * T
        assert result.plan.shape == (horizon, A) and result.knots.shape == (knots, A)
        np.testing.assert_allclose(result.plan, budget.schedule.actions(result.knots))
        np.testing.assert_array_equal(result.action, result.plan[0])
        state = state + 0.1 * result.action
    assert objective.horizons == {horizon}


@pytest.mark.parametrize(
    "knots, interpolation, horizon", [(4, "hold", 32), (8, "linear", 32), (8, "hold", 16)]
)
def test_a_prior_over_knots_refuses_another_schedule(
    knots, interpolation, horizon, tiny_action_prior
):
    prior = copy.deepcopy(tiny_action_prior)
    prior.knot_schedule = KnotSchedule(32, 8, "hold")
    budget = Budget(horizon, A, N, T, knots, interpolation)
    with pytest.raises(ValueError, match="the prior plans 8 knots of 2 actions over H=32"):
        build_planner("de", Counting(), budget, 1, prior)


@pytest.mark.parametrize("kind", PLANNERS)
def test_an_all_invalid_step_is_counted_and_falls_back_alike(kind, tiny_action_prior):
    objective = Counting()
    planner = build(kind, objective, SAFEGUARDS["keep"], tiny_action_prior)
    first = planner.plan(np.zeros(2))
    objective.invalid = True
    before = objective.count
    second = planner.plan(np.zeros(2))
    assert second.fallback and np.isnan(second.predicted_reward) and second.iterations == 0
    assert set(second.timing) == {"decode", "reward", "other"}
    assert second.reward_evaluations == objective.count - before
    assert 0 < second.reward_evaluations <= N * T
    np.testing.assert_array_equal(second.plan, np.concatenate([first.plan[1:], [FILL]]))


@pytest.mark.parametrize("kind", PLANNERS)
def test_an_all_invalid_first_step_raises_alike(kind, tiny_action_prior):
    objective = Counting()
    objective.invalid = True
    planner = build(kind, objective, SAFEGUARDS["keep"], tiny_action_prior)
    with pytest.raises(RuntimeError, match="no previous plan to fall back on"):
        planner.plan(np.zeros(2))


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("kind", PLANNERS)
def test_every_planner_keeps_the_previous_plan_shifted_with_the_fill_action(
    kind, keep, tiny_action_prior
):
    """After the first step only the previous plan shifted one step, its tail the fill action,
    scores 0 (the best); every planner executes it when it keeps the previous plan."""
    objective = Counting()
    safeguards = Safeguards(fill_action=FILL, keep_previous_plan=keep, safe_plan=False)
    planner = build(kind, objective, safeguards, tiny_action_prior)
    first = planner.plan(np.zeros(2))
    objective.target = np.concatenate([first.plan[1:], [FILL]])
    result = planner.plan(np.zeros(2))
    if keep:
        np.testing.assert_array_equal(result.plan, objective.target)
        assert result.predicted_reward == 0.0
    else:
        assert result.predicted_reward < 0.0


@pytest.mark.parametrize("kind", PLANNERS)
def test_no_planner_executes_a_plan_predicted_worse_than_the_safe_plan(kind, tiny_action_prior):
    """Only holding the fill action scores 0; any other plan scores below. Every planner with
    the safe plan on executes it from the first step, without it none finds it."""
    for safe_plan, expected in ((True, 0.0), (False, None)):
        objective = Counting()
        objective.target = np.tile(FILL, (H, 1))
        safeguards = Safeguards(fill_action=FILL, safe_plan=safe_plan)
        result = build(kind, objective, safeguards, tiny_action_prior).plan(np.zeros(2))
        if expected is None:
            assert result.predicted_reward < 0.0
        else:
            np.testing.assert_array_equal(result.plan, objective.target)
            assert result.predicted_reward == expected


def test_sub_env_planners_get_distinct_reproducible_seeds():
    from stable_baselines3.common.vec_env import DummyVecEnv

    from envs.registry import make_env
    from policies.planners import sub_env_seed
    from policies.setup import PlanningSetup

    seeds = [sub_env_seed(7, index) for index in range(4)]
    assert seeds[0] == 7 and len(set(seeds)) == 4  # a single env keeps the seed it was given
    assert seeds == [sub_env_seed(7, index) for index in range(4)]
    vec_env = DummyVecEnv([lambda: make_env("unicycle-goal")] * 3)
    policy = PlanningSetup("unicycle-goal", "cem", 8, 1, seed=7).policy(vec_env)
    vec_env.seed(0)
    policy.predict(vec_env.reset())
    used = [planner.elites.generator.initial_seed() for planner in policy.planners]
    assert used == seeds[:3]


@pytest.mark.parametrize("kind", PLANNERS)
def test_every_recording_planner_returns_its_last_population_with_the_rewards_it_saw(
    kind, tiny_action_prior
):
    # check_world_model.py ranks these candidates by the simulator against these rewards
    prior = tiny_action_prior if kind == "de" else None
    planner = build_planner(kind, point_mass, Budget(H, A, N, T), 1, prior, record=True)
    state = np.array([0.2, 0.1])
    for _ in range(2):  # the second step has a previous plan and a warm start
        result = planner.plan(state)
        assert result.candidates.ndim == 3 and result.candidates.shape[1:] == (H, A)
        assert result.candidate_rewards.shape == (len(result.candidates),)
        np.testing.assert_allclose(
            result.candidate_rewards, point_mass(state, result.candidates), rtol=1e-6
        )
        assert len(result.elite_indices) >= 1
        state = state + 0.1 * result.action
    quiet = build_planner(kind, point_mass, Budget(H, A, N, T), 1, prior).plan(state)
    assert quiet.candidates is None and quiet.candidate_rewards is None
