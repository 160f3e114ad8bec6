"""Terminal-value measurements: train the hopper survival value on saved episodes.

Runs against commit 5eb0761 (branch value), which has the terminal-value hook and
planner/value.py; both were reverted after these measurements (see README.md).
"""

import argparse
import glob

import numpy as np
import torch

from envs.hopper_value import FEATURES, episode_dataset
from planner.value import ValueConfig, train_value

parser = argparse.ArgumentParser()
parser.add_argument("--data", nargs="+", required=True, help="npz files or globs")
parser.add_argument("--out", required=True)
parser.add_argument("--epochs", type=int, default=300)
parser.add_argument("--horizon", type=int, default=100)
args = parser.parse_args()
torch.set_num_threads(1)
files = sorted(f for pattern in args.data for f in glob.glob(pattern))
episodes = []
for f in files:
    d = np.load(f)
    steps, max_steps = int(d["steps"]), int(d["max_steps"])
    episodes.append((d["states"], steps, steps < max_steps))
x, y = episode_dataset(episodes, args.horizon)
print(f"{len(files)} episodes, {len(x)} labelled states, target mean {y.mean():.1f}")
# every 5th episode held out
xt, yt = episode_dataset([e for i, e in enumerate(episodes) if i % 5], args.horizon)
xv, yv = episode_dataset([e for i, e in enumerate(episodes) if not i % 5], args.horizon)
model, losses = train_value(xt, yt, ValueConfig(FEATURES, args.horizon), args.epochs)
pred = model.predict(xv)
print(
    f"train loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
    f"held-out episodes MAE {np.abs(pred - yv).mean():.1f} steps "
    f"(constant predictor {np.abs(yv - yt.mean()).mean():.1f})"
)
model, losses = train_value(x, y, ValueConfig(FEATURES, args.horizon), args.epochs)
model.save(args.out, task="hopper")
print("saved", args.out)
