"""The episode loop's progress and records, and run summaries that show what a task is judged by."""

import re

import pytest

from envs.registry import get_task, make_env
from experiments.harness.episodes import (
    print_summary,
    run_episode,
    run_episodes,
    step_limit,
    summarise,
)
from planner.planning import Budget
from policies.setup import PlanningSetup


class Counter:
    """A progress bar stand-in: counts its updates."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int) -> None:
        self.n += n


class Predictions:
    """A recorder that keeps each step's predicted return, as the planner reported it."""

    def __init__(self) -> None:
        self.rewards: list[float] = []

    def add(self, env, state, result) -> None:
        self.rewards.append(result.predicted_reward)


@pytest.fixture(scope="module")
def pendulum():
    """Inverted pendulum under random shooting with 2 candidates over 1 step: it falls within
    10 steps, long before the env's limit."""
    spec = get_task("inverted-pendulum")
    env = make_env(spec.name)

    def policy(seed: int):
        setup = PlanningSetup(spec.name, "random", population=2, iterations=1, horizon=1, seed=seed)
        return setup.policy(env)

    yield env, policy
    env.close()


def test_each_control_step_advances_the_progress_and_records_the_plans_prediction(pendulum):
    env, policy = pendulum
    progress, recorder = Counter(), Predictions()
    episode = run_episode(env, policy(0), 0, 5, recorder, progress)
    assert progress.n == episode["steps"] == 5
    assert episode["predicted_rewards"] == recorder.rewards
    assert all(isinstance(reward, float) for reward in episode["predicted_rewards"])


def test_one_bar_over_all_control_steps_ends_full_when_episodes_end_early(pendulum, capsys):
    env, policy = pendulum
    episodes = run_episodes(env, policy(0), [0, 1], 50, None, "pendulum")
    steps = sum(episode["steps"] for episode in episodes)
    assert steps < 20  # both fell long before the cut at 50
    bar = capsys.readouterr().err.split("\r")[-1]
    assert "pendulum: 100%" in bar and f" {steps}/{steps} " in bar and "episode 2/2" in bar, bar


def test_the_step_limit_is_the_cut_or_the_envs_own():
    reacher, unicycle = make_env("reacher"), make_env("unicycle-goal")
    assert step_limit(reacher, None) == 50 and step_limit(reacher, 20) == 20
    assert step_limit(reacher, 500) == 50
    assert step_limit(unicycle, None) == unicycle.unwrapped.config.max_episode_steps
    reacher.close()
    unicycle.close()


def fake_episode(seed: int, success: bool) -> dict:
    return {
        "seed": seed,
        "return": 1760.0 + seed,
        "steps": 200 - seed,
        "success": success,
        "collision": False,
        "seconds": 2.0,
        "plan_ms": [10.0, 12.0],
        "reward_evaluations": [128, 128],
        "mean_abs_action_change": 0.1,
    }


@pytest.mark.parametrize("env", ["half-cheetah", "unicycle-goal"])
def test_a_summary_shows_what_its_task_is_judged_by_in_at_most_8_columns(env, capsys):
    episodes = [fake_episode(0, True), fake_episode(1, False)]
    summary = summarise(
        env, episodes, Budget(horizon=16, action_dim=6, population=64, iterations=3)
    )
    assert summary["env_steps_per_control_step"] == 64 * 3 * 16  # N x T rollouts of H
    table = print_summary(env, summary)
    assert capsys.readouterr().out.strip() == table
    header, _, values = table.splitlines()
    columns = header.split()
    assert len(columns) <= 8 and len(values.split()) == len(columns)
    assert {"episodes", "control_hz", "budget"} <= set(columns)
    assert summary["budget"] == "64x3" and summary["mean_return"] == 1760.5
    goal = {"success_rate", "collision_rate", "mean_steps_to_success"}
    if env == "unicycle-goal":
        assert goal <= set(summary) and goal <= set(columns)
        assert summary["success_rate"] == 0.5 and summary["mean_steps_to_success"] == 200
    else:  # MuJoCo: no success to report, and steps survived beside the return
        assert not goal & set(summary) and not re.search("success|collision", table)
        assert {"mean_return", "mean_steps"} <= set(columns)
        assert "1760.5" in values  # not 1.76e+03
