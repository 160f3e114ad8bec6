"""Train a trajectory diffusion prior and write its checkpoint, a loss plot and a record.

    python experiments/train_prior.py --env unicycle-goal --kind action
    python experiments/train_prior.py --env unicycle-goal --kind state
    python experiments/train_prior.py --env reacher --data data/reacher-sac.npz [--condition]

``--kind action``: a prior over normalised action chunks (N, H, A), used by the MPC planner.
``--kind state``: the original experiment's prior over (x, y) trajectories (the seed's arcs).
Unicycle datasets are made by code (envs/datasets.py); other tasks read a data file written
by experiments/collect_data.py (``--data PATH``: its action chunks and their horizon; with
``--condition`` also each chunk's first observation, for a prior conditioned on it).

Writes ``<out>``, ``<out stem>.json`` (the exact command, seed, configs, losses and task) and
``<out stem>.loss.png``. The default ``<out>`` is ``<family>-<kind>[-cond].pt`` in a new run
folder, ``runs/train_prior__<family>-<kind>[-cond]__<time>/``: never a shipped checkpoint,
which the planner would then silently use (copy it to ``checkpoints/`` to ship it). An
existing ``--out`` is refused unless ``--overwrite`` is given. The prior records the task
family it is for (``unicycle`` for both unicycle tasks, else the task name): the scripts refuse
it for other tasks unless they are given ``--force-prior``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from envs.datasets import unicycle_action_dataset, unicycle_arcs
from envs.registry import get_task, task_names
from experiments.harness.cli import (
    ScriptArgs,
    UsageError,
    arg,
    check_device,
    command_line,
    run_main,
    write_json,
)
from experiments.harness.outputs import check_output, new_run_file, overwrite_arg
from experiments.harness.plots import plot_losses
from planner.denoiser import DenoiserConfig
from planner.training import TrainingConfig, train_prior


@dataclass
class TrainArgs(ScriptArgs):
    """Arguments of train_prior.py."""

    env: str = arg("unicycle-goal", "task the prior is for", tuple(task_names()))
    kind: str = arg("action", "trajectories the prior generates", ("action", "state"))
    data: str | None = arg(None, "trajectory file from collect_data.py (non-unicycle tasks)")
    samples: int = arg(20000, "trajectories generated for unicycle datasets", minimum=2)
    horizon: int | None = arg(
        None, "H (default: 16 for action priors, 64 for state priors)", minimum=1
    )
    denoiser: str = arg("unet", "denoiser network", ("unet", "mlp"))
    base_channels: int = arg(16, "UNet width (channels of the first level)", minimum=1)
    steps: int = arg(4000, "optimizer steps", minimum=1)
    batch_size: int = arg(256, "batch size", minimum=1)
    learning_rate: float = arg(2e-3, "peak learning rate (AdamW, cosine decay)")
    seed: int = arg(0, "seed of the dataset and of training")
    device: str = arg("cpu", "torch device", check=check_device)
    threads: int | None = arg(None, "torch CPU threads (default: torch's choice)", minimum=1)
    condition: bool = arg(False, "condition the prior on the first observation (needs --data)")
    out: str | None = arg(
        None, "checkpoint path (default: <family>-<kind>[-cond].pt in a new folder of runs/)"
    )
    overwrite: bool = overwrite_arg()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate}")


RECORDS = (".json", ".loss.png")
"""What is written beside the checkpoint: its record and its loss plot."""


def output_path(args: TrainArgs) -> Path:
    """``--out``, or ``<family>-<kind>[-cond].pt`` in a new run folder."""
    name = f"{get_task(args.env).family}-{args.kind}{'-cond' if args.condition else ''}.pt"
    return Path(args.out) if args.out else new_run_file("train_prior", name)


def make_dataset(args: TrainArgs) -> tuple[np.ndarray, np.ndarray | None]:
    """Trajectories (N, H, C) for the requested prior and, with ``--condition``, cond (N, O)."""
    if args.data is not None:
        return read_chunks(args)
    if args.condition:
        raise UsageError("--condition needs observations: pass --data PATH from collect_data.py")
    if get_task(args.env).family != "unicycle":
        raise UsageError(
            f"--env {args.env}: pass --data PATH written by experiments/collect_data.py"
        )
    if args.kind == "action":
        data = unicycle_action_dataset(args.samples, horizon=args.horizon or 16, seed=args.seed)
    else:
        data = unicycle_arcs(args.samples, horizon=args.horizon or 64, seed=args.seed).states
    return data, None


def read_chunks(args: TrainArgs) -> tuple[np.ndarray, np.ndarray | None]:
    """The action chunks (K, H, A) of a collect_data.py file (and their first observations
    (K, O) with ``--condition``), checked against the arguments."""
    if args.kind != "action":
        raise UsageError(
            "--data files hold action chunks only: use --kind action (state priors are trained "
            "on the unicycle arcs, without --data)"
        )
    keys = ["chunk_actions", "metadata"] + (["chunk_observations"] if args.condition else [])
    with np.load(args.data) as archive:
        missing = [key for key in keys if key not in archive]
        if missing:
            raise UsageError(
                f"{args.data} lacks {missing} (found {sorted(archive)}); write it with "
                "experiments/collect_data.py"
            )
        chunks = archive["chunk_actions"]
        cond = archive["chunk_observations"] if args.condition else None
        metadata = json.loads(str(archive["metadata"]))
    if metadata.get("env") != args.env:
        raise UsageError(f"{args.data} was collected on {metadata.get('env')}: pass --env to match")
    if chunks.ndim != 3 or len(chunks) < 2:
        raise UsageError(f"{args.data}: chunk_actions must be (K >= 2, H, A), got {chunks.shape}")
    if args.horizon is not None and args.horizon != chunks.shape[1]:
        raise UsageError(
            f"--horizon {args.horizon} but {args.data} holds chunks of H={chunks.shape[1]}: drop "
            "--horizon or collect the data again with collect_data.py --horizon"
        )
    return chunks, cond


def main(args: TrainArgs) -> Path:
    """Train the prior, write its checkpoint, loss plot and record; return the checkpoint path."""
    out = output_path(args)
    check_output(out, args.overwrite, RECORDS)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    trajectories, cond = make_dataset(args)
    family = get_task(args.env).family
    denoiser = DenoiserConfig(
        kind=args.denoiser,
        horizon=trajectories.shape[1],
        channels=trajectories.shape[2],
        cond_dim=0 if cond is None else cond.shape[1],
        base_channels=args.base_channels,
    )
    training = TrainingConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        device=args.device,
    )
    prior, history = train_prior(trajectories, denoiser, training, cond=cond)
    prior.task = family
    prior.save(out)
    plot_losses(history, out.with_suffix(".loss.png"))
    record = {
        "command": command_line(),
        "arguments": asdict(args),
        "dataset_shape": list(trajectories.shape),
        "denoiser": asdict(denoiser),
        "training": asdict(training),
        "final_train_loss": history["train_loss"][-1],
        "final_val_loss": history["val_loss"][-1],
        "history": history,
        "task": family,
    }
    write_json(out.with_suffix(".json"), record)
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), val loss {history['val_loss'][-1]:.4f}"
    )
    return out


if __name__ == "__main__":
    run_main(main, TrainArgs, __doc__)
