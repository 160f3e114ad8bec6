"""experiments/check_world_model.py: a world model's planner, every chosen plan also scored by
the simulator from the state it was chosen in, with the same helpers."""

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

from envs.planning_state import read_planning_state
from envs.registry import get_task, make_env
from experiments import check_world_model
from experiments.harness.cli import UsageError, parse_args
from experiments.harness.collection import PlannerEpisode, collect_episode, planner_episode
from policies.setup import PlanningSetup


def run(*argv: str) -> dict:
    return check_world_model.main(parse_args(check_world_model.CheckArgs, "", list(argv)))


def test_the_simulator_scores_with_the_world_model_planners_helpers():
    # hopper's world model plans with its critic: so does the simulator that checks it
    hopper = check_world_model.simulator_setup(PlanningSetup("hopper", reward="world-model"))
    assert hopper.value() == PlanningSetup("hopper", reward="world-model").value()
    assert hopper.value() is not None
    # a world model's planner told to plan without: the simulator's check must not add it
    none = PlanningSetup("walker2d", reward="world-model", value_agent="none")
    assert PlanningSetup("walker2d").value() is not None
    assert check_world_model.simulator_setup(none).value() is None
    told = PlanningSetup("hopper", reward="world-model", value_weight=0.5, costs="none")
    checked = check_world_model.simulator_setup(told)
    assert checked.value()[1] == 0.5
    assert checked.costs == told.costs == ()


class RecordingPlanner:
    """Plans a fixed ramp and says it is worth its step number."""

    def __init__(self):
        self.step = 0

    def reset(self):
        self.step = 0

    def plan(self, observation, cond=None):
        assert cond is None  # an unconditioned prior's planner
        self.step += 1
        plan = np.full((4, 3), 0.1 * self.step)
        return SimpleNamespace(
            action=plan[0], plan=plan, predicted_reward=float(self.step), candidates=None
        )


def test_each_plan_is_scored_from_the_state_it_was_chosen_in():
    env = make_env("hopper")
    seen = []

    def simulator(state, plans):
        seen.append((np.array(state, copy=True), plans.copy()))
        return np.array([-float(len(seen))])

    planning = SimpleNamespace(
        planner=RecordingPlanner, objective=None, plans_from_observation=True, conditioned=False
    )
    source = check_world_model.CheckedPlanner(planning, simulator)
    episode = collect_episode(env, source, seed=3, max_steps=4, action_noise=0.0, rng=None)
    # replaying the episode's actions gives the states the simulator must have been handed
    env.reset(seed=3)
    for step, (state, plans) in enumerate(seen):
        np.testing.assert_array_equal(state, read_planning_state(env))
        np.testing.assert_allclose(plans, np.full((1, 4, 3), 0.1 * (step + 1)))
        env.step(episode["actions"][step])
    assert source.model_scores == [1.0, 2.0, 3.0, 4.0]
    assert source.simulator_scores == [-1.0, -2.0, -3.0, -4.0]
    summary = check_world_model.episode_summary(episode, source)
    assert summary["most_overrated_step"] == 3 and summary["most_overrated_by"] == 8.0
    # a planner that recorded no population: no ranking, said so
    assert np.isnan(source.ranking["rank_correlation"]).all()
    assert summary["mean_rank_correlation"] is None


def test_a_population_ranking_compares_the_model_with_the_simulator():
    ranking = check_world_model.population_ranking
    simulator = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    same = ranking(2 * simulator + 1, simulator, elites=2)
    assert same == pytest.approx(
        {
            "rank_correlation": 1.0, "elite_overlap": 1.0, "regret": 0.0,
            "spread": simulator.std(), "reordering_error": simulator.std(),
        }
    )  # fmt: skip
    # an error every candidate shares reorders nothing
    shifted = ranking(simulator + 100.0, simulator, elites=2)
    assert shifted["rank_correlation"] == pytest.approx(1.0) and shifted["reordering_error"] == 0
    reversed_ = ranking(-simulator, simulator, elites=2)
    assert reversed_["rank_correlation"] == pytest.approx(-1.0)
    assert reversed_["elite_overlap"] == 0.0 and reversed_["regret"] == 5.0
    # the model's elites are 0 and 2, the simulator's 0 and 1: half shared; its best is the
    # simulator's best, so no regret
    half = ranking(np.array([9.0, 1.0, 8.0, 0.0, 0.0, 0.0]), simulator, elites=2)
    assert half["elite_overlap"] == 0.5 and half["regret"] == 0.0
    # a candidate either scores NaN (a diverged rollout) is left out of every measure
    model = np.array([np.nan, 4.0, 3.0, 2.0, 1.0, 0.0])
    kept = ranking(model, simulator, elites=1)
    assert kept["spread"] == pytest.approx(simulator[1:].std())
    assert {k: kept[k] for k in ("rank_correlation", "elite_overlap", "regret")} == pytest.approx(
        {"rank_correlation": 1.0, "elite_overlap": 1.0, "regret": 0.0}
    )
    assert all(np.isnan(v) for v in ranking(np.full(6, np.nan), simulator, 2).values())
    assert np.isnan(ranking(np.ones(6), simulator, 2)["rank_correlation"])  # a constant score


def test_the_value_split_tells_which_part_of_the_score_the_model_ranks_wrongly():
    split = check_world_model.value_split
    simulator_return = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    simulator_value = np.array([0.0, 10.0, 2.0, 8.0, 4.0, 6.0])
    simulator = simulator_return + simulator_value
    # the model gets the return right and reads the value backwards
    model_return = simulator_return + 1.0
    model = model_return - simulator_value
    found = split(model, model_return, simulator, simulator_return)
    assert found["return_rank_correlation"] == pytest.approx(1.0)
    assert found["value_rank_correlation"] == pytest.approx(-1.0)
    # read at the true end state, its ranking would be the simulator's own
    assert found["exact_value_rank_correlation"] == pytest.approx(1.0)
    assert found["value_spread"] == pytest.approx(simulator_value.std())
    assert found["value_reordering_error"] == pytest.approx((2 * simulator_value).std())
    # a candidate any of the four scores non-finitely is left out of every part
    model[0] = -np.inf
    kept = split(model, model_return, simulator, simulator_return)
    assert kept["value_spread"] == pytest.approx(simulator_value[1:].std())
    assert all(np.isnan(v) for v in split(model[:2], model_return[:2], simulator[:2],
                                          simulator_return[:2] * np.nan).values())  # fmt: skip


class PopulationPlanner:
    """Plans three candidates and ranks them as the test says."""

    def reset(self):
        pass

    def plan(self, observation, cond=None):
        candidates = np.arange(3, dtype=float)[:, None, None] * np.ones((3, 4, 3))
        return SimpleNamespace(
            action=np.zeros(3), plan=candidates[0], predicted_reward=9.0,
            candidates=candidates, candidate_rewards=np.array([3.0, 1.0, 2.0]),
            elite_indices=np.array([0]),
        )  # fmt: skip


def test_the_population_is_scored_without_the_value_from_the_observation_and_the_state():
    env = make_env("hopper")
    calls = []

    def simulator(state, plans):  # the chosen plan, then the population
        return np.array([0.0, 3.0, 2.0, 1.0])

    def model_return(observation, candidates):
        calls.append(("model", np.array(observation, copy=True), candidates.shape))
        return np.array([1.0, 2.0, 3.0])

    def simulator_return(state, candidates):
        calls.append(("simulator", np.array(state, copy=True), candidates.shape))
        return np.array([1.0, 2.0, 3.0])

    planning = SimpleNamespace(
        planner=PopulationPlanner, objective=None, plans_from_observation=True, conditioned=False
    )
    source = check_world_model.CheckedPlanner(
        planning, simulator, returns=(model_return, simulator_return)
    )
    collect_episode(env, source, seed=3, max_steps=2, action_noise=0.0, rng=None)
    observation, _ = env.reset(seed=3)
    assert [c[0] for c in calls] == ["model", "simulator"] * 2
    np.testing.assert_array_equal(calls[0][1], observation)
    np.testing.assert_array_equal(calls[1][1], read_planning_state(env))
    assert calls[0][2] == calls[1][2] == (3, 4, 3)
    # the returns agree exactly; the model's values 2, -1, -1 against the simulator's 2, 0, -2
    # put its ranking off (0.5), which the simulator's values would have set right
    assert source.ranking["rank_correlation"] == pytest.approx([0.5, 0.5])
    assert source.ranking["return_rank_correlation"] == pytest.approx([1.0, 1.0])
    assert source.ranking["value_rank_correlation"] == pytest.approx([np.sqrt(3) / 2] * 2)
    assert source.ranking["exact_value_rank_correlation"] == pytest.approx([1.0, 1.0])


def test_a_checked_hopper_episode_writes_its_scores_and_errors(tmp_path):
    out = tmp_path / "check"
    result = run("--env", "hopper", "--episodes", "1", "--max-steps", "6", "--out", str(out))
    with open(out / "steps.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(6))
    assert all(np.isfinite(float(r["simulator_score"])) for r in rows)
    # DE's last population is ranked on every step; a correlation lies in [-1, 1]
    correlations = [float(r["rank_correlation"]) for r in rows]
    assert all(-1.0 <= c <= 1.0 for c in correlations)
    assert all(0.0 <= float(r["elite_overlap"]) <= 1.0 for r in rows)
    assert all(float(r["regret"]) >= 0.0 for r in rows)
    # hopper's planner adds its critic: every ranking is split into the return and the value
    for part in ("return", "value", "exact_value"):
        assert all(-1.0 <= float(r[f"{part}_rank_correlation"]) <= 1.0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"][0]["seed"] == 1000 and summary["episodes"][0]["steps"] == 6
    errors = summary["k_step_error"]
    assert errors["1"] > 0 and errors["5"] > 0
    assert errors["10"] is None and errors["16"] is None  # no 6-step episode holds them
    assert summary["value"][0] == str(get_task("hopper").value_agent_path)
    assert result["k_step_error"] == errors
    by_dimension = summary["k_step_error_by_dimension"]  # hopper: 11 observation dims
    assert len(by_dimension["1"]) == 11 and by_dimension["10"] is None
    assert np.sqrt(np.mean(np.square(by_dimension["5"]))) == pytest.approx(errors["5"])
    episode = summary["episodes"][0]
    assert episode["mean_rank_correlation"] == pytest.approx(np.mean(correlations))
    assert "rank_correlations" not in episode  # per step: steps.csv's
    assert (out / "scores.png").stat().st_size > 0
    with pytest.raises(UsageError, match="--overwrite"):
        run("--env", "hopper", "--episodes", "1", "--max-steps", "2", "--out", str(out))


def test_checking_changes_no_episode(tmp_path):
    # each episode is the one evaluate.py and collect_data.py plan on its seed, to the digit
    out = tmp_path / "check"
    run("--env", "hopper", "--episodes", "2", "--max-steps", "5", "--out", str(out))
    with open(out / "steps.csv") as handle:
        rows = list(csv.DictReader(handle))
    setup = PlanningSetup("hopper", reward="world-model")
    for seed in (1000, 1001):
        plain = planner_episode(PlannerEpisode(setup, seed, max_steps=5))
        checked = [float(r["reward"]) for r in rows if int(r["seed"]) == seed]
        assert checked == plain["rewards"].tolist()


def test_a_conditioned_prior_plans_on_the_observation_as_the_policy_plans(tmp_path):
    # walker2d's prior is conditioned on the observation: the planner must be handed it
    out = tmp_path / "walker"
    run("--env", "walker2d", "--episodes", "1", "--max-steps", "2", "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"][0]["steps"] == 2
    # its prior plans 32 steps: the error at k = H is asked for too (none in 2 steps)
    assert list(summary["k_step_error"]) == ["1", "5", "10", "16", "32"]


def test_a_planner_without_a_value_has_no_value_split(tmp_path):
    out = tmp_path / "no-value"
    run("--env", "hopper", "--value-agent", "none", "--episodes", "1", "--max-steps", "2",
        "--out", str(out))  # fmt: skip
    with open(out / "steps.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert all(-1.0 <= float(r["rank_correlation"]) <= 1.0 for r in rows)
    assert all(np.isnan(float(r["value_rank_correlation"])) for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"][0]["mean_value_rank_correlation"] is None


def test_the_largest_dimensions_of_the_k_step_error_come_first():
    line = check_world_model.largest_dimensions([0.1, 0.5, 0.3, 0.2], count=2)
    assert line == "dim 1 0.50, dim 2 0.30"
