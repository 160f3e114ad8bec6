"""SB3 agents' critics as a planner's terminal value."""

import numpy as np
import pytest
from stable_baselines3 import PPO

from envs.registry import CHECKPOINTS, make_env
from policies.sb3_agents import CriticValue, load_sb3_agent


def test_an_agent_without_a_q_critic_is_refused():
    with pytest.raises(ValueError, match=r"no actor and Q critic.*SAC, TD3 or DDPG"):
        CriticValue(PPO("MlpPolicy", make_env("hopper"), device="cpu"))


def test_observations_of_another_size_are_refused_saying_so():
    value = CriticValue(load_sb3_agent(CHECKPOINTS / "agents" / "hopper-sac.zip"))
    assert value(np.zeros((3, 11))).shape == (3,)
    with pytest.raises(ValueError, match=r"observations \(N, 11\), got \(3, 17\).*another task"):
        value(np.zeros((3, 17)))
