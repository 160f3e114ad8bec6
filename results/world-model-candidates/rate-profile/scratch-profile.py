"""Scratch (stop 41): where one TS-inf call of half-cheetah's shipped world model spends its time.

64 candidates x 16 steps, one thread, the computed reward; then the network alone for the same 16
steps, and cProfile's top entries. Run from the repository root with PYTHONPATH=.
"""

import cProfile
import pstats
import time

import gymnasium as gym
import numpy as np
import torch

from envs.world_model_rules import reward_fn
from planner.world_model import WorldModel, WorldModelObjective
from policies.setup import termination_fn

torch.set_num_threads(1)
env = gym.make("HalfCheetah-v5")
observation, _ = env.reset(seed=0)
model = WorldModel.load("checkpoints/half-cheetah-world-model.pt")
objective = WorldModelObjective(
    model, termination_fn(env), "tsinf", reward_fn=reward_fn(env), threads=1
)
actions = np.random.default_rng(0).uniform(-1, 1, (64, 16, 6))
for _ in range(20):
    objective(observation, actions)


def milliseconds(function, repeats=200):
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats * 1e3


predict = model.predictor()
members = model.ensemble_size
states, moves = torch.zeros(members, 64, 17), torch.zeros(members, 64, 6)
print("one call, ms", milliseconds(lambda: objective(observation, actions)))
print(
    "the network alone, 16 steps, ms",
    milliseconds(lambda: [predict.outputs(states, moves) for _ in range(16)]),
)
cProfile.run("for _ in range(200): objective(observation, actions)", "/tmp/profile.out")
pstats.Stats("/tmp/profile.out").sort_stats("tottime").print_stats(12)
