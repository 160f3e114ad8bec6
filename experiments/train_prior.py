"""Train a trajectory diffusion prior and write its checkpoint, a loss plot and a record.

    python experiments/train_prior.py --env unicycle-goal --kind action
    python experiments/train_prior.py --env unicycle-goal --kind state

``--kind action``: a prior over normalised action chunks (N, H, A), used by the MPC planner.
``--kind state``: the original experiment's prior over (x, y) trajectories (the seed's arcs).
Unicycle datasets are made by code (envs/datasets.py); other tasks read a data file written
by experiments/collect_data.py (``--data PATH``).

Writes ``<out>`` (default ``checkpoints/<env family>-<kind>.pt``), ``<out stem>.json`` (the exact
command, seed, configs and losses) and ``<out stem>.loss.png``.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from envs.datasets import unicycle_action_dataset, unicycle_arcs
from planner.denoiser import DenoiserConfig
from planner.training import TrainingConfig, train_prior
from script_support import REPO_ROOT, arg, parse_args, write_json


@dataclass
class TrainArgs:
    """Arguments of train_prior.py."""

    env: str = arg("unicycle-goal", "task the prior is for (unicycle-* or a MuJoCo task)")
    kind: str = arg("action", "trajectories the prior generates", ("action", "state"))
    data: str | None = arg(None, "trajectory file from collect_data.py (non-unicycle tasks)")
    samples: int = arg(20000, "trajectories generated for unicycle datasets")
    horizon: int | None = arg(None, "H (default: 16 for action priors, 64 for state priors)")
    denoiser: str = arg("unet", "denoiser network", ("unet", "mlp"))
    base_channels: int = arg(16, "UNet width (channels of the first level)")
    steps: int = arg(4000, "optimizer steps")
    batch_size: int = arg(256, "batch size")
    learning_rate: float = arg(2e-3, "peak learning rate (AdamW, cosine decay)")
    seed: int = arg(0, "seed of the dataset and of training")
    device: str = arg("cpu", "torch device")
    out: str | None = arg(None, "checkpoint path (default: checkpoints/<family>-<kind>.pt)")


def make_dataset(args: TrainArgs) -> np.ndarray:
    """Trajectories (N, H, C) for the requested prior."""
    if args.data is not None:
        with np.load(args.data) as archive:
            key = "actions" if args.kind == "action" else "observations"
            if key not in archive:
                raise SystemExit(f"{args.data} has no '{key}' array; found {sorted(archive)}")
            return archive[key]
    if not args.env.startswith("unicycle"):
        raise SystemExit(
            f"--env {args.env}: pass --data PATH written by experiments/collect_data.py"
        )
    if args.kind == "action":
        return unicycle_action_dataset(args.samples, horizon=args.horizon or 16, seed=args.seed)
    return unicycle_arcs(args.samples, horizon=args.horizon or 64, seed=args.seed).states


def plot_losses(history: dict, path: Path) -> None:
    """Training and validation loss against step, log scale."""
    figure = Figure(figsize=(6, 4), dpi=90)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    ax.plot(history["step"], history["train_loss"], label="train")
    ax.plot(history["step"], history["val_loss"], label="validation (EMA weights)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("v-prediction loss")
    ax.legend()
    figure.tight_layout()
    figure.savefig(path)


def main(args: TrainArgs) -> Path:
    trajectories = make_dataset(args)
    family = "unicycle" if args.env.startswith("unicycle") else args.env
    out = Path(args.out) if args.out else REPO_ROOT / "checkpoints" / f"{family}-{args.kind}.pt"
    denoiser = DenoiserConfig(
        kind=args.denoiser,
        horizon=trajectories.shape[1],
        channels=trajectories.shape[2],
        base_channels=args.base_channels,
    )
    training = TrainingConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        device=args.device,
    )
    prior, history = train_prior(trajectories, denoiser, training)
    prior.save(out)
    plot_losses(history, out.with_suffix(".loss.png"))
    record = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "arguments": asdict(args),
        "dataset_shape": list(trajectories.shape),
        "denoiser": asdict(denoiser),
        "training": asdict(training),
        "final_train_loss": history["train_loss"][-1],
        "final_val_loss": history["val_loss"][-1],
        "history": history,
    }
    write_json(out.with_suffix(".json"), record)
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), val loss {history['val_loss'][-1]:.4f}"
    )
    return out


if __name__ == "__main__":
    main(parse_args(TrainArgs, __doc__))
