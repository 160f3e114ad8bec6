"""Half-cheetah's root pitch and reward per step in 1000-step episodes of the world model's
planner: R2 (stop 36, the raw pitch) beside R3s (stop 37, the pitch on the circle).

    python results/world-model-candidates/flips/flips.py \
        --runs R2=r2-1000-1003.json,R3s=r3s-1000-1003.json

``--runs``: ``run_mpc.py --out`` files (with their per-step ``states`` and ``rewards``, which the
committed copies in ``validation/`` drop). Writes ``flips.csv`` (model, seed, step, pitch in rad,
the env's reward) beside this file, then ``flips.png`` from it; with no ``--runs``, redraws the
plot from the committed ``flips.csv``.
"""

import argparse
import csv
import json
from pathlib import Path

import gymnasium
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from envs.mujoco_tasks import MujocoTask

HERE = Path(__file__).parent
COLUMNS = ("model", "seed", "step", "pitch", "reward")


def rows_of(label: str, path: str) -> list[dict]:
    """One row per step of every episode in the ``run_mpc.py --out`` file ``path``; the pitch is
    ``qpos[2]`` of the recorded simulator state."""
    env = gymnasium.make("HalfCheetah-v5")
    task = MujocoTask(env)
    rows = []
    for episode in json.loads(Path(path).read_text())["episodes"]:
        rewards = episode["rewards"]  # states also holds the state after the last step
        for step, (state, reward) in enumerate(
            zip(episode["states"][: len(rewards)], rewards, strict=True)
        ):
            task.restore(env, np.asarray(state))
            pitch = float(env.unwrapped.data.qpos[2])
            rows.append(
                dict(zip(COLUMNS, (label, episode["seed"], step, pitch, reward), strict=True))
            )
    env.close()
    return rows


def draw(rows: list[dict]) -> Figure:
    """Pitch (top) and the return so far (bottom) against the step, a line per model and seed."""
    figure = Figure(figsize=(9, 5.5), dpi=90)
    FigureCanvasAgg(figure)
    pitch_ax, return_ax = figure.subplots(2, 1, sharex=True)
    for key in sorted({(row["model"], int(row["seed"])) for row in rows}):
        mine = [row for row in rows if (row["model"], int(row["seed"])) == key]
        steps = [int(row["step"]) for row in mine]
        label = f"{key[0]}, seed {key[1]}"
        pitch_ax.plot(steps, [float(row["pitch"]) for row in mine], label=label)
        return_ax.plot(steps, np.cumsum([float(row["reward"]) for row in mine]), label=label)
    for turn in (1, 2, 3):
        pitch_ax.axhline(2 * np.pi * turn, color="grey", lw=0.5, ls=":")
    pitch_ax.set_ylabel("root pitch (rad)")
    pitch_ax.set_title("half-cheetah, world model's planner (DE 64 x 3), validation seeds")
    return_ax.set_ylabel("return so far")
    return_ax.set_xlabel("control step")
    pitch_ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="", help="LABEL=run_mpc.py --out file, comma-separated")
    args = parser.parse_args()
    table = HERE / "flips.csv"
    if args.runs:
        rows = [row for item in args.runs.split(",") for row in rows_of(*item.split("=", 1))]
        with table.open("w", newline="") as file:
            writer = csv.DictWriter(file, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    with table.open() as file:
        rows = list(csv.DictReader(file))
    draw(rows).savefig(HERE / "flips.png")
    print(f"wrote {HERE / 'flips.png'} from {table}")


if __name__ == "__main__":
    main()
