"""Termination rules on observations agree with the envs' own termination."""

import numpy as np
import pytest

from envs.registry import make_env
from envs.world_model_rules import termination_fn


@pytest.mark.parametrize("name", ["hopper", "inverted-pendulum"])
def test_the_rule_on_observations_matches_the_env(name):
    env = make_env(name)
    rule = termination_fn(env)
    rng = np.random.default_rng(0)
    ended = 0
    for episode in range(5):
        env.reset(seed=episode)
        for _ in range(200):
            action = rng.uniform(env.action_space.low, env.action_space.high)
            observation, _, terminated, truncated, _ = env.step(action)
            assert bool(rule(observation[None])[0]) == terminated
            if terminated or truncated:
                ended += terminated
                break
    assert ended > 0  # the rule was seen to fire


@pytest.mark.parametrize("name", ["reacher", "half-cheetah"])
def test_tasks_that_never_end_have_no_rule(name):
    assert termination_fn(make_env(name)) is None


def test_a_non_finite_observation_ends_the_episode():
    rule = termination_fn(make_env("hopper"))
    assert rule(np.full((1, 11), np.nan))[0]
