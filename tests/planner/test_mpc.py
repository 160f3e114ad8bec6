"""RecedingHorizonPlanner on a toy point-mass objective with an identity decoder."""

import numpy as np
import pytest

from planner.mpc import PlannerConfig, RecedingHorizonPlanner
from planner.safeguards import Safeguards
from policies.cem import ActionSpaceDecoder

H, A = 8, 2
GOAL = np.array([0.5, -0.3])


def point_mass(state: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """x_{t+1} = x_t + 0.1 a_t; reward = -distance of the end point to GOAL."""
    end = state[None, :] + 0.1 * actions.sum(axis=1)
    return -np.linalg.norm(end - GOAL, axis=1)


def make(
    config: PlannerConfig = PlannerConfig(population=32, iterations=3),
    objective=point_mass,
    safeguards: Safeguards = Safeguards(),
):
    decoder = ActionSpaceDecoder(H, A)
    return RecedingHorizonPlanner(decoder, objective, config, 3, "cpu", safeguards)


def test_plan_improves_on_doing_nothing():
    result = make().plan(np.zeros(2))
    assert result.action.shape == (A,)
    assert result.plan.shape == (H, A)
    assert np.all(np.abs(result.plan) <= 1.0)
    do_nothing = point_mass(np.zeros(2), np.zeros((1, H, A)))[0]
    assert result.predicted_reward > do_nothing + 0.2
    assert result.reward_evaluations == 32 * 3  # the final decode's re-score comes out of N*T
    assert set(result.timing) == {"decode", "reward", "other"}


def test_replan_every_k_executes_the_cached_plan_in_between():
    planner = make(PlannerConfig(population=16, iterations=2, replan_every=3))
    first = planner.plan(np.zeros(2))
    second, third = planner.plan(np.zeros(2)), planner.plan(np.zeros(2))
    np.testing.assert_array_equal(second.action, first.plan[1])
    np.testing.assert_array_equal(third.action, first.plan[2])
    assert second.reward_evaluations == third.reward_evaluations == 0
    # N*T in all: the final decode and the previous plan shifted to now come out of it.
    assert planner.plan(np.zeros(2)).reward_evaluations == 16 * 2


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


FILL = (0.25, -0.5)  # a fill action no search or shift would produce by accident


@pytest.mark.parametrize("keep", [True, False])
def test_previous_plan_shifted_past_the_cached_step_is_executed_when_only_it_scores(keep):
    """With replan_every=2, after the first plan and one cached step only the exact previous
    plan shifted 2 steps to now (filled with ``fill_action``) earns the top reward, 0; a
    5-sample search cannot hit it exactly. So the executed plan is that shift if and only if
    the planner keeps the previous plan, and a wrong shift (off by one step, wrong fill) scores
    below 0 and is not executed either. (The 1-step shift, for every planner:
    tests/policies/test_equal_footing.py.)"""
    target = {}

    def only_the_target(state, actions):
        if "plan" not in target:
            return point_mass(state, actions)
        return -np.abs(actions - target["plan"]).sum(axis=(1, 2))

    config = PlannerConfig(population=5, iterations=1, replan_every=2)
    safeguards = Safeguards(fill_action=FILL, keep_previous_plan=keep, safe_plan=False)
    planner = make(config, only_the_target, safeguards)
    first = planner.plan(np.zeros(2))
    planner.plan(np.zeros(2))  # executes the cached plan
    target["plan"] = np.concatenate([first.plan[2:], np.repeat([FILL], 2, 0)])
    result = planner.plan(np.zeros(2))
    assert result.iterations == 1
    if keep:
        np.testing.assert_array_equal(result.plan, target["plan"])
        np.testing.assert_array_equal(result.action, first.plan[2])
        assert result.predicted_reward == 0.0
    else:
        assert np.all(result.action != first.plan[2])
        assert result.predicted_reward < -0.1
    assert result.reward_evaluations == 5  # N*T, whatever the safeguards add


def test_the_safeguards_candidates_are_scored_in_the_last_populations_call():
    """One objective call per iteration: the previous plan (shifted) rides with the last
    population, as iCEM's and random shooting's do, not in a call of its own (a world model
    pays a whole rollout per call, however few its rows)."""
    calls = []

    def recorded(state, actions):
        calls.append(actions.copy())
        return point_mass(state, actions)

    safeguards = Safeguards(keep_previous_plan=True, safe_plan=False)
    planner = make(PlannerConfig(population=8, iterations=2), recorded, safeguards)
    planner.plan(np.zeros(2))
    (shifted,) = planner.memory.candidates(1)
    calls.clear()
    second = planner.plan(np.zeros(2))
    assert [len(c) for c in calls] == [8, 8] and second.reward_evaluations == 16
    np.testing.assert_array_equal(calls[-1][-1], shifted)


def test_the_safeguards_candidates_are_scored_when_the_search_stops_early():
    """Every searched candidate invalid in the first iteration: the search stops, and the
    previous plan is still scored (alone) and executed."""
    previous = {}

    def only_the_previous_plan(state, actions):
        if "plan" not in previous:
            return point_mass(state, actions)
        match = (actions == previous["plan"]).all(axis=(1, 2))
        return np.where(match, 1.0, -np.inf)

    safeguards = Safeguards(keep_previous_plan=True, safe_plan=False)
    planner = make(PlannerConfig(population=8, iterations=2), only_the_previous_plan, safeguards)
    planner.plan(np.zeros(2))
    (previous["plan"],) = planner.memory.candidates(1)
    result = planner.plan(np.zeros(2))
    assert result.iterations == 0 and not result.fallback
    assert result.predicted_reward == 1.0 and result.reward_evaluations == 9
    np.testing.assert_array_equal(result.plan, previous["plan"])


@pytest.fixture(params=["identity", "prior"])
def decoder(request):
    """The identity decoder (CEM) and a trained prior, whose search (S=2) and final (S=5)
    decodes differ, so the three options the planner picks from score differently."""
    if request.param == "identity":
        return ActionSpaceDecoder(H, A)
    return request.getfixturevalue("tiny_action_prior")


@pytest.mark.parametrize("execute", ["best", "mean"])
@pytest.mark.parametrize("keep", [True, False])
def test_predicted_reward_is_the_objective_of_the_executed_plan(decoder, keep, execute):
    """Over a closed loop, the reported reward is the objective re-evaluated on the returned
    plan, and the returned action is that plan's first step, whichever option won."""
    config = PlannerConfig(population=8, iterations=2, execute=execute)
    safeguards = Safeguards(fill_action=(0.1, 0.2), keep_previous_plan=keep)
    planner = RecedingHorizonPlanner(decoder, point_mass, config, 5, "cpu", safeguards)
    state = np.array([-0.2, 0.4])
    for _ in range(6):
        result = planner.plan(state)
        assert result.predicted_reward == pytest.approx(
            point_mass(state, result.plan[None])[0], rel=1e-12, abs=1e-12
        )
        np.testing.assert_array_equal(result.action, result.plan[0])
        state = state + 0.1 * result.action


@pytest.mark.parametrize("replan_every", [H, H + 1])
def test_replan_every_up_to_the_horizon(replan_every):
    """k <= H executes the whole cached plan then replans; k > H is refused when built, since
    the plan would run out before the next search."""
    config = PlannerConfig(population=5, iterations=1, replan_every=replan_every)
    if replan_every > H:
        with pytest.raises(ValueError, match=rf"replan_every={H + 1}.*horizon H={H}"):
            make(config)
        return
    planner = make(config)
    first = planner.plan(np.zeros(2))
    executed = [planner.plan(np.zeros(2)).action for _ in range(H - 1)]
    np.testing.assert_array_equal(np.array(executed), first.plan[1:])
    assert planner.plan(np.zeros(2)).iterations == 1
