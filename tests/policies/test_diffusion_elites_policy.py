"""The planner behind SB3's predict contract, on the unicycle envs."""

import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from envs.registry import get_task, make_env
from planner.mpc import PlannerConfig
from planner.planning import Budget
from policies.diffusion_elites import DiffusionElitesPolicy
from policies.planners import build_planner


def cem_factory(env, horizon=12):
    objective = get_task("unicycle-goal").make_objective(env)
    budget = Budget(horizon=horizon, action_dim=2, population=32, iterations=3)
    return lambda i: build_planner("cem", objective, budget, seed=i)


def test_evaluate_policy_runs_unchanged_on_a_vec_env_of_two():
    vec_env = DummyVecEnv([lambda: make_env("unicycle-goal") for _ in range(2)])
    vec_env.seed(0)
    # Each sub-env has its own objective instance through its own planning state; the unicycle
    # objective only depends on the state, so one objective serves both planners.
    policy = DiffusionElitesPolicy.for_env(vec_env, cem_factory(vec_env.envs[0]))
    rewards, lengths = evaluate_policy(
        policy, vec_env, n_eval_episodes=4, return_episode_rewards=True, warn=False
    )
    assert len(rewards) == 4
    assert len(policy.planners) == 2
    # Reaching a goal 2-3.5 away yields progress reward close to the start distance.
    assert np.mean(rewards) > 1.5, rewards
    assert max(lengths) < 120, lengths


class SpyPlanner:
    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def plan(self, state, cond=None):
        from planner.planning import PlanResult

        return PlanResult(
            action=np.array([2.0, -0.5]),
            plan=np.zeros((4, 2)),
            predicted_reward=0.0,
            iterations=1,
            reward_evaluations=1,
            timing={},
        )


def test_episode_start_resets_only_that_sub_env_and_actions_are_clipped():
    env = make_env("unicycle-goal")
    env.reset(seed=0)
    spies = [SpyPlanner(), SpyPlanner()]
    policy = DiffusionElitesPolicy(
        lambda i: spies[i],
        lambda: [env.get_wrapper_attr("planning_state")()] * 2,
        env.action_space,
        env.observation_space,
    )
    observation = np.zeros((2, *env.observation_space.shape), dtype=np.float32)
    actions, _ = policy.predict(observation, episode_start=np.array([True, False]))
    assert [s.resets for s in spies] == [1, 0]
    np.testing.assert_array_equal(actions, [[1.0, -0.5], [1.0, -0.5]])


def test_a_single_observation_gets_a_single_action():
    env = make_env("unicycle-goal")
    observation, _ = env.reset(seed=0)
    policy = DiffusionElitesPolicy.for_env(env, lambda i: SpyPlanner())
    action, state = policy.predict(observation, state="untouched")
    assert action.shape == (2,) and action.dtype == np.float32
    assert state == "untouched"


def test_wrong_number_of_states_is_reported():
    env = make_env("unicycle-goal")
    env.reset(seed=0)
    policy = DiffusionElitesPolicy(
        lambda i: SpyPlanner(), lambda: [], env.action_space, env.observation_space
    )
    with pytest.raises(ValueError, match="returned 0 states for 1 observations"):
        policy.predict(np.zeros(env.observation_space.shape, dtype=np.float32))


def test_de_policy_plans_with_a_prior(tiny_action_prior):
    env = make_env("unicycle-goal")
    objective = get_task("unicycle-goal").make_objective(env)
    budget = Budget(horizon=tiny_action_prior.horizon, action_dim=2, population=16, iterations=2)
    config = PlannerConfig(search_steps=2, final_steps=2)
    policy = DiffusionElitesPolicy.for_env(
        env, lambda i: build_planner("de", objective, budget, 0, tiny_action_prior, config)
    )
    observation, _ = env.reset(seed=1)
    action, _ = policy.predict(observation)
    assert action.shape == (2,) and np.all(np.abs(action) <= 1.0)
    result = policy.last_results[0]
    assert result.reward_evaluations == 16 * 2
    # the env gets the plan's first action (the unicycle's action space is [-1, 1] itself) ...
    np.testing.assert_array_equal(action, result.action.astype(np.float32))
    # ... of a plan made from the env's current state
    state = env.get_wrapper_attr("planning_state")()
    assert result.predicted_reward == pytest.approx(objective(state, result.plan[None])[0])


def test_a_conditioned_prior_gets_each_sub_envs_observation():
    import torch

    from envs.datasets import unicycle_action_dataset
    from planner.denoiser import DenoiserConfig
    from planner.training import TrainingConfig, train_prior

    data = unicycle_action_dataset(256, horizon=8, seed=0)
    observations = np.random.default_rng(0).normal(size=(256, 7)).astype(np.float32)
    config = DenoiserConfig(kind="mlp", horizon=8, channels=2, cond_dim=7, mlp_hidden=32)
    prior, _ = train_prior(
        data, config, TrainingConfig(steps=5, batch_size=32), cond=observations, progress=False
    )
    seen = []
    decoding = prior.decoding
    prior.decoding = lambda steps, cond=None: (seen.append(cond), decoding(steps, cond))[1]
    env = make_env("unicycle-goal")
    objective = get_task("unicycle-goal").make_objective(env)
    budget = Budget(horizon=8, action_dim=2, population=8, iterations=1)
    policy = DiffusionElitesPolicy.for_env(
        env,
        lambda i: build_planner("de", objective, budget, 0, prior, PlannerConfig()),
        condition_on_observation=True,
    )
    observation, _ = env.reset(seed=2)
    policy.predict(observation)
    assert len(seen) == 2  # the search's decoder and the final decode's
    assert all(c is not None and c.shape == (7,) for c in seen)
    torch.testing.assert_close(seen[0], torch.as_tensor(observation))
