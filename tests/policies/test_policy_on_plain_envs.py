"""The policy on envs as users make them: plain ``gymnasium.make`` MuJoCo envs, action wrappers."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import ClipAction, RescaleAction, TransformAction
from stable_baselines3.common.evaluation import evaluate_policy

from envs.planning_state import state_reader
from envs.registry import get_task, make_env
from planner.planning import Budget
from policies.diffusion_elites import DiffusionElitesPolicy, plannable_action_space
from policies.planners import build_planner

STEPS = 30


def cem_policy(env, task: str, population: int = 32, iterations: int = 2):
    """Action-space CEM behind the policy, scored by the task's objective on ``env``'s model."""
    objective = get_task(task).make_objective(env)
    budget = Budget(16, env.action_space.shape[0], population, iterations)
    return DiffusionElitesPolicy.for_env(
        env, lambda i: build_planner("cem", objective, budget, seed=i)
    )


def test_a_plain_gymnasium_mujoco_env_runs_under_evaluate_policy():
    env = gym.make("InvertedPendulum-v5", max_episode_steps=STEPS)
    policy = cem_policy(env, "inverted-pendulum")
    rewards, lengths = evaluate_policy(
        policy, env, n_eval_episodes=2, return_episode_rewards=True, warn=False
    )
    # +1 per step alive: planning keeps the pole up for the whole episode (random actions
    # drop it within ~5-15 steps).
    assert lengths == [STEPS, STEPS] and rewards == [float(STEPS)] * 2


def test_the_plain_env_state_is_its_full_mujoco_snapshot():
    env = gym.make("Reacher-v5")
    env.reset(seed=0)
    (state,) = state_reader(env)()
    wrapped = make_env("reacher")
    wrapped.reset(seed=0)
    np.testing.assert_array_equal(state, wrapped.get_wrapper_attr("planning_state")())


@pytest.mark.parametrize(
    "wrap, low, high",
    [
        (ClipAction, -3.0, 3.0),
        (lambda env: ClipAction(RescaleAction(env, -0.5, 0.5)), -0.5, 0.5),
        (lambda env: RescaleAction(env, -0.5, 0.5), -0.5, 0.5),
    ],
    ids=["clip", "rescale-then-clip", "rescale"],
)
def test_action_wrappers_give_finite_actions_within_the_real_bounds(wrap, low, high):
    env = wrap(gym.make("InvertedPendulum-v5", max_episode_steps=STEPS))
    space = plannable_action_space(env)
    assert space.low[0] == low and space.high[0] == high
    policy = cem_policy(env, "inverted-pendulum", population=16)
    observation, _ = env.reset(seed=0)
    for _ in range(5):
        action, _ = policy.predict(observation)
        assert np.isfinite(action).all() and low <= action[0] <= high
        observation, reward, terminated, _, _ = env.step(action)
        assert np.isfinite(reward) and not terminated


def test_clip_action_on_the_unicycle_drives_exactly_like_the_bare_env():
    outcomes = []
    for env in (make_env("unicycle-goal"), ClipAction(make_env("unicycle-goal"))):
        policy = cem_policy(env, "unicycle-goal", population=16)
        observation, _ = env.reset(seed=3)
        total, info = 0.0, {}
        for _ in range(120):
            action, _ = policy.predict(observation)
            observation, reward, terminated, truncated, info = env.step(action)
            total += reward
            if terminated or truncated:
                break
        outcomes.append((total, info["success"]))
    assert outcomes[0] == outcomes[1] and outcomes[0][1], outcomes


def test_an_action_wrapper_with_infinite_bounds_is_refused_clearly():
    inner = gym.make("InvertedPendulum-v5")
    unbounded = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    env = TransformAction(inner, lambda a: 0.1 * a, action_space=unbounded)
    with pytest.raises(ValueError, match="infinite bounds"):
        cem_policy(env, "inverted-pendulum")


def test_envs_without_a_readable_state_are_refused_when_the_policy_is_built():
    with pytest.raises(TypeError, match="cannot read the simulator state of PendulumEnv"):
        state_reader(gym.make("Pendulum-v1"))
    with pytest.raises(NotImplementedError, match="no planning objective for Ant-v5"):
        state_reader(gym.make("Ant-v5"))
