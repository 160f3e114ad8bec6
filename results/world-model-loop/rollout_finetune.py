r"""Fine-tune a world model on its own k-step rollouts (a one-off measurement, not a product flag).

Each member rolls its own mean prediction k steps along recorded actions from a recorded
observation; the loss is the mean squared error, per step, of the predicted observation and reward
against the recorded ones, each divided by the model's target scale. Windows never cross an
episode; a tenth of the episodes (seeded) is held out, and the epoch with the lowest held-out loss
is kept. The model's normalisers stay as trained.

    D=data/half-cheetah
    python results/world-model-loop/rollout_finetune.py --checkpoint base.pt --out tuned.pt \
        --data $D-sac-noise.npz,$D-random.npz,$D-sac.npz
"""

import argparse
import copy
import time

import numpy as np
import torch

from planner.world_model import WorldModel

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--checkpoint", required=True, help="the trained world model")
parser.add_argument("--data", required=True, help="collect_data.py files, comma-separated")
parser.add_argument("--out", required=True, help="where the fine-tuned model goes")
parser.add_argument("--steps", type=int, default=8, help="k, rollout steps of the loss")
parser.add_argument("--minutes", type=float, default=1.0, help="training time")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

torch.set_num_threads(1)
torch.manual_seed(args.seed)
model = WorldModel.load(args.checkpoint)
fields = ("observations", "actions", "rewards", "next_observations")
parts: dict[str, list] = {name: [] for name in (*fields, "episode_index")}
for path in args.data.split(","):
    data = np.load(path)
    offset = sum(len(np.unique(e)) for e in parts["episode_index"])
    for name in fields:
        parts[name].append(data[name])
    parts["episode_index"].append(np.unique(data["episode_index"], return_inverse=True)[1] + offset)
obs, act, rew, nxt, episode = (np.concatenate(parts[n]) for n in (*fields, "episode_index"))
k = args.steps
starts = np.flatnonzero(episode[: len(episode) - k + 1] == episode[k - 1 :])
rng = np.random.default_rng(args.seed)
episodes = np.unique(episode)
held = rng.choice(episodes, max(1, len(episodes) // 10), replace=False)
held_out = np.isin(episode[starts], held)
train, val = starts[~held_out], starts[held_out]
obs, act, rew, nxt = (torch.as_tensor(x, dtype=torch.float32) for x in (obs, act, rew, nxt))
network, inputs, targets = model.network, model.input_normalizer, model.target_normalizer
members = model.ensemble_size


def rollout_loss(rows: np.ndarray) -> torch.Tensor:
    """Mean over the k steps of the scaled squared errors of every member's own rollout."""
    index = torch.as_tensor(rows)
    state = obs[index].expand(members, -1, -1)
    total = torch.zeros(())
    for t in range(k):
        action = act[index + t].expand(members, -1, -1)
        mean, _ = network(inputs.normalize(torch.cat([state, action], dim=-1)))
        predicted = mean * targets.scale + targets.center
        state = state + predicted[..., :-1]
        total = total + (((state - nxt[index + t]) / targets.scale[:-1]) ** 2).mean()
        total = total + (((predicted[..., -1] - rew[index + t]) / targets.scale[-1]) ** 2).mean()
    return total / k


optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
with torch.no_grad():
    best = float(rollout_loss(val))
best_state, start, epoch = copy.deepcopy(network.state_dict()), time.time(), 0
print(f"held-out {k}-step loss before: {best:.4f}")
while time.time() - start < 60 * args.minutes:
    network.train()
    order = rng.permutation(train)
    for first in range(0, len(order) - 255, 256):
        optimizer.zero_grad()
        rollout_loss(order[first : first + 256]).backward()
        optimizer.step()
    network.eval()
    epoch += 1
    with torch.no_grad():
        loss = float(rollout_loss(val))
    print(f"epoch {epoch}: held-out {loss:.4f}")
    if loss < best:
        best, best_state = loss, copy.deepcopy(network.state_dict())
network.load_state_dict(best_state)
model.save(args.out)
print(f"kept held-out {best:.4f}; wrote {args.out}")
