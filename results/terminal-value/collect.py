"""Terminal-value measurements: run hopper planner episodes; print and save steps, return.

Runs against commit 5eb0761 (branch value), which has the terminal-value hook and
planner/value.py; both were reverted after these measurements (see README.md).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from envs.mujoco_tasks import MujocoTask
from envs.registry import get_task, make_env
from experiments.harness.episodes import run_episode
from experiments.harness.wiring import load_prior, make_budget, make_policy, planner_settings

parser = argparse.ArgumentParser()
parser.add_argument("--planner", default="cem")
parser.add_argument("--seeds", type=int, nargs="+", required=True)
parser.add_argument("--max-steps", type=int, default=200)
parser.add_argument("--value", default=None)
parser.add_argument("--weight", type=float, default=1.0)
parser.add_argument("--save", default=None, help="folder for per-episode npz")
parser.add_argument("--forward-weight", type=float, default=None)
parser.add_argument("--log", default="results.jsonl")
args = parser.parse_args()

torch.set_num_threads(1)
spec = get_task("hopper")
prior = load_prior(args.planner, spec)
env_kwargs = {} if args.forward_weight is None else {"forward_reward_weight": args.forward_weight}
env = make_env("hopper", **env_kwargs)
task = MujocoTask(env)
terminal_value = None
if args.value:
    from envs.hopper_value import hopper_terminal_value
    from planner.value import SurvivalValue

    model = SurvivalValue.load(args.value)
    terminal_value = hopper_terminal_value(model, task.reward.alive_bonus, args.weight)
objective = task.objective(threads=1, terminal_value=terminal_value)
budget = make_budget(spec, env, prior, 64, 3)
config = planner_settings(spec)
for seed in args.seeds:
    policy = make_policy(env, spec, args.planner, objective, budget, seed, prior, config)
    tic = time.time()
    ep = run_episode(env, policy, seed, args.max_steps, None)
    record = {
        "planner": args.planner,
        "value": args.value,
        "weight": args.weight,
        "fw": args.forward_weight,
        "seed": seed,
        "max_steps": args.max_steps,
        "steps": ep["steps"],
        "return": round(ep["return"], 1),
        "seconds": round(time.time() - tic, 1),
    }
    print(json.dumps(record), flush=True)
    with open(args.log, "a") as f:
        f.write(json.dumps(record) + "\n")
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
        np.savez(
            Path(args.save) / f"{args.planner}-fw{args.forward_weight}-{seed}.npz",
            states=np.asarray(ep["states"]),
            steps=ep["steps"],
            max_steps=args.max_steps,
        )
