r"""Does a world model's planner believe its plans? One half-cheetah episode of DE planning with
a world model; at every control step, the model's predicted return of the chosen plan beside the
simulator's return of the same plan from the same state (open loop, the task's planning costs
included in both).

    python results/world-model-loop/predicted_vs_simulator.py \
        --model checkpoints/half-cheetah-world-model.pt
"""

import argparse

import numpy as np

from envs.planning_state import read_planning_state
from envs.registry import make_env
from planner.action_scaling import ActionScaling
from planner.threads import use_planning_threads
from policies.setup import PlanningSetup

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", required=True, help="world model checkpoint")
parser.add_argument("--seed", type=int, default=1000, help="a validation seed, never 0-9")
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--every", type=int, default=10, help="print every this many steps")
args = parser.parse_args()

use_planning_threads(1)
env = make_env("half-cheetah")
setup = PlanningSetup("half-cheetah", reward="world-model", world_model=args.model, seed=args.seed)
planner = setup.resolve(env).planner()
simulator = PlanningSetup("half-cheetah", seed=args.seed).resolve(env).objective
scaling = ActionScaling(env.action_space.low, env.action_space.high)
observation, _ = env.reset(seed=args.seed)
predicted, true, episode_return = [], [], 0.0
for step in range(args.steps):
    result = planner.plan(observation)
    predicted.append(result.predicted_reward)
    true.append(float(simulator(read_planning_state(env), result.plan[None])[0]))
    if step % args.every == 0:
        print(f"step {step:3d}: model {predicted[-1]:8.2f}  simulator {true[-1]:8.2f}")
    observation, reward, *_ = env.step(scaling.to_env(result.action))
    episode_return += reward
print(f"mean over the episode: model {np.mean(predicted):.2f}, simulator {np.mean(true):.2f}")
print(f"episode return: {episode_return:.1f}")
