"""trajectories.png on MuJoCo tasks: each plan's predicted return against the reward realised
over its steps, and the path of the body the task moves, read from the recorded states."""

import numpy as np
import pytest

from envs.registry import get_task, make_env
from experiments.harness.drawing import (
    BODY_PATHS,
    body_positions,
    episodes_figure,
    plot_episodes,
    realised_returns,
)
from experiments.harness.episodes import run_episode
from policies.setup import PlanningSetup

HORIZON = 3
STEPS = 6


def short_episode(name: str, seed: int = 0) -> tuple:
    """The env of task ``name`` and one CEM episode of STEPS steps (8 candidates over HORIZON)."""
    spec = get_task(name)
    env = make_env(spec.name)
    setup = PlanningSetup(spec.name, "cem", population=8, iterations=1, horizon=HORIZON, seed=seed)
    policy = setup.policy(env)
    return env, run_episode(env, policy, seed, STEPS, None)


@pytest.fixture(scope="module")
def cheetah():
    env, episode = short_episode("half-cheetah")
    yield env, episode
    env.close()


def test_realised_returns_sum_the_rewards_each_plan_covers():
    np.testing.assert_array_equal(realised_returns([1.0, 2.0, 3.0, 4.0], 2), [3.0, 5.0, 7.0])
    assert realised_returns([1.0, 2.0], 3).size == 0  # no step saw its whole horizon


def test_body_positions_are_read_from_the_recorded_states(cheetah):
    env, episode = cheetah
    path = body_positions(env, episode["states"], "torso")
    assert path.shape == (STEPS + 1, 3)
    env.reset(seed=0)  # the episode's first state again
    np.testing.assert_allclose(path[0], env.unwrapped.data.body("torso").xpos)
    assert path[-1, 0] != path[0, 0]  # it moved
    reacher, reached = short_episode("reacher", seed=1)
    target = body_positions(reacher, reached["states"][:1], "target")[0]
    reacher.reset(seed=1)
    np.testing.assert_allclose(target, reacher.unwrapped.get_body_com("target"))
    reacher.close()


def test_a_mujoco_picture_shows_plans_against_outcomes_and_the_bodys_path(cheetah, tmp_path):
    env, episode = cheetah
    figure = episodes_figure(env, [episode], HORIZON)
    returns, plans, path = figure.axes
    np.testing.assert_allclose(returns.get_lines()[0].get_ydata(), np.cumsum(episode["rewards"]))
    assert "predicted" in plans.get_title()
    realised, predicted = (line.get_ydata() for line in plans.get_lines())
    np.testing.assert_allclose(realised, realised_returns(episode["rewards"], HORIZON))
    np.testing.assert_allclose(predicted, episode["predicted_rewards"])
    assert len(predicted) == STEPS and len(realised) == STEPS - HORIZON + 1
    torso = path.get_lines()[0]
    positions = body_positions(env, episode["states"], "torso")
    np.testing.assert_allclose(torso.get_xdata(), positions[:, 0])  # side view: x, z
    np.testing.assert_allclose(torso.get_ydata(), positions[:, 2])
    assert path.get_xlabel() == "torso x (m)"
    assert plot_episodes(env, [episode], tmp_path / "trajectories.png", HORIZON).stat().st_size


def test_every_mujoco_task_names_a_body_of_its_model():
    from envs.mujoco_tasks import TASKS

    assert set(BODY_PATHS) == {info.env_id for info in TASKS.values()}
    for info in TASKS.values():
        env = make_env(info.short_name)
        view = BODY_PATHS[info.env_id]
        for body in filter(None, (view.body, view.target)):
            env.unwrapped.model.body(body)  # KeyError if it has no such body
        env.close()
