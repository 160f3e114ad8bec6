"""Train a world model (probabilistic ensemble) on recorded transitions; score its k-step error.

    python experiments/train_world_model.py --env half-cheetah \\
        --data data/half-cheetah-sac-noise.npz,data/half-cheetah-random.npz --out kstep.json

``--data``: one or more npz files from experiments/collect_data.py (comma-separated; mixing an
agent's, noisy and random episodes gives better models). A share of each file's episodes
(``--test-episodes``) is held out whole: never trained on, used for the open-loop k-step
prediction error (see :func:`planner.world_model.k_step_errors`, normalised per observation
dimension by the data's std).

Writes ``<checkpoint>`` (default ``<env>-world-model.pt`` in a new run folder,
``runs/train_world_model__<env>-world-model__<time>/``, never the shipped model),
``<checkpoint stem>.json`` (the exact command, configs, data, losses, k-step errors) and
``<checkpoint stem>.kstep.png`` (validation loss per epoch and error against k); ``--out PATH``
also writes ``{"env": ..., "k_step_error": {"1": e1, "5": e5, "10": e10, "20": e20}}``. Files
that exist are refused unless ``--overwrite`` is given.
Plan with it: ``python experiments/run_mpc.py --env <env> --reward world-model``.

``--start-from MODEL`` continues from a trained model (its weights and normalisers; the same
task and shape) instead of a fresh one: with ``--epochs 0 --rollout-steps K`` it only fine-tunes
MODEL on its members' own K-step rollouts. An ``--ensemble`` below MODEL's keeps its first
members (with ``--epochs 0`` and no rollout stage, as they are). The record holds MODEL's path
and sha256.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from envs.registry import get_task
from experiments.harness.cli import (
    UsageError,
    arg,
    check_device,
    command_line,
    run_main,
    write_json,
)
from experiments.harness.outputs import check_output, new_run_file, overwrite_arg
from experiments.harness.world_models import WorldModelArgs, world_model_task_arg
from planner.files import file_sha256
from planner.world_model import WorldModel, WorldModelConfig, k_step_errors
from planner.world_model_training import train_world_model

KS = (1, 5, 10, 20)
RECORDS = (".json", ".kstep.png")
"""What is written beside the model: its record and its plot."""
FIELDS = ("observations", "actions", "rewards", "next_observations", "episode_index")


@dataclass
class TrainArgs(WorldModelArgs):
    """Arguments of train_world_model.py."""

    env: str = world_model_task_arg("reacher")
    data: str = arg("", "comma-separated npz files from collect_data.py (required)")
    checkpoint: str | None = arg(
        None, "model path (default: <env>-world-model.pt in a new folder of runs/)"
    )
    start_from: str | None = arg(
        None,
        "continue from this world model checkpoint (same task, --hidden and --depth; a smaller "
        "--ensemble keeps its first members) instead of a fresh one",
    )
    out: str | None = arg(None, "also write the k-step error JSON here")
    overwrite: bool = overwrite_arg()
    test_episodes: float = arg(0.1, "share of each file's episodes held out for the k-step error")
    seed: int = arg(0, "seed of the split and of training")
    device: str = arg("cpu", "torch device", check=check_device)
    threads: int | None = arg(None, "torch CPU threads (default: torch's choice)", minimum=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.data:
            raise ValueError("--data is required: npz files written by experiments/collect_data.py")
        if not 0 < self.test_episodes < 1:
            raise ValueError(f"--test-episodes must be in (0, 1), got {self.test_episodes}")
        if self.epochs == 0 and not self.start_from:
            raise ValueError("--epochs 0 trains nothing: give --start-from MODEL, or --epochs >= 1")


def read_transitions(args: TrainArgs) -> tuple[dict, dict, list[dict]]:
    """Training and held-out test transitions (episodes renumbered across files), and per-file
    sizes."""
    rng = np.random.default_rng(args.seed)
    task = get_task(args.env).name  # --env may be a Gymnasium id
    train, test, files, offset = [], [], [], 0
    for name in (part.strip() for part in args.data.split(",") if part.strip()):
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"no data file {path}: make it with experiments/collect_data.py")
        with np.load(path) as archive:
            metadata = json.loads(str(archive["metadata"]))
            arrays = {key: archive[key] for key in FIELDS}
        if metadata["env"] != task:
            raise UsageError(f"{path} holds {metadata['env']} data, not {task}")
        episodes = np.unique(arrays["episode_index"])
        held = rng.choice(episodes, max(1, round(args.test_episodes * len(episodes))), False)
        is_test = np.isin(arrays["episode_index"], held)
        arrays["episode_index"] = arrays["episode_index"] + offset
        offset += int(episodes.max()) + 1
        train.append({key: value[~is_test] for key, value in arrays.items()})
        test.append({key: value[is_test] for key, value in arrays.items()})
        files.append(
            {"path": str(path), "transitions": len(is_test), "test_episodes": sorted(held.tolist())}
        )
    merge = lambda parts: {key: np.concatenate([p[key] for p in parts]) for key in FIELDS}  # noqa: E731
    return merge(train), merge(test), files


def read_start(args: TrainArgs, config: WorldModelConfig) -> tuple[WorldModel | None, dict | None]:
    """The model of ``--start-from`` and its record (path, sha256); (None, None) without the
    flag. One for another task, or of another shape than ``config``, is refused."""
    if not args.start_from:
        return None, None
    path = Path(args.start_from)
    if not path.is_file():
        raise UsageError(f"no world model {path} (--start-from): train one with this script")
    model = WorldModel.load(path, task=get_task(args.env).name, device=args.device)
    theirs = model.config
    if config.ensemble_size < theirs.ensemble_size:
        model = model.first_members(config.ensemble_size)
    if model.config != config:
        raise UsageError(
            f"{path} has --ensemble {theirs.ensemble_size} --hidden {theirs.hidden} --depth "
            f"{theirs.depth} (observations {theirs.obs_dim}, actions {theirs.action_dim}): give "
            "the same --hidden and --depth, --ensemble at most the same, and data of the same task"
        )
    return model, {"path": str(path), "sha256": file_sha256(path)}


def plot(history: dict, errors: dict[int, float], path: Path) -> None:
    """Validation error per epoch (and the rollout stage's held-out loss, when it ran) and
    held-out k-step error against k."""
    rollout = history.get("rollout")
    panels = 3 if rollout else 2
    figure = Figure(figsize=(5 * panels, 3.5), dpi=90)
    FigureCanvasAgg(figure)
    loss, kstep = figure.add_subplot(1, panels, 1), figure.add_subplot(1, panels, panels)
    loss.plot([0, *history["epoch"]], [history["initial_val_mse"], *history["val_mse"]])
    loss.set(xlabel="epoch", ylabel="validation MSE (normalised targets)", yscale="log")
    loss.axvline(history["best_epoch"], color="grey", linestyle=":")
    if rollout:
        stage = figure.add_subplot(1, panels, 2)
        stage.plot([0, *rollout["epoch"]], [rollout["initial_val_loss"], *rollout["val_loss"]])
        stage.set(xlabel="rollout-stage epoch", ylabel="held-out rollout loss", yscale="log")
        stage.axvline(rollout["best_epoch"], color="grey", linestyle=":")
    kstep.plot(list(errors), list(errors.values()), marker="o")
    kstep.set(xlabel="k (open-loop steps)", ylabel="normalised RMSE, held-out episodes")
    kstep.set_yscale("log")
    figure.tight_layout()
    figure.savefig(path)


def summary(history: dict, args: TrainArgs) -> str:
    """Each stage that ran: its best epoch and its validation score before and after."""
    stages = []
    if history["epoch"]:
        stages.append(
            f"best epoch {history['best_epoch']}, validation MSE "
            f"{history['initial_val_mse']:.4f} -> {history['best_val_mse']:.4f}"
        )
    if rollout := history.get("rollout"):
        stages.append(
            f"{args.rollout_steps}-step rollouts: best epoch {rollout['best_epoch']}, held-out "
            f"loss {rollout['initial_val_loss']:.4f} -> {rollout['best_val_loss']:.4f}"
        )
    return (
        "; ".join(stages)
        or f"{args.start_from}'s weights as they are (no epochs, no rollout stage)"
    )


def output_path(args: TrainArgs) -> Path:
    """``--checkpoint``, or ``<env>-world-model.pt`` in a new run folder."""
    name = f"{get_task(args.env).name}-world-model.pt"
    return Path(args.checkpoint) if args.checkpoint else new_run_file("train_world_model", name)


def main(args: TrainArgs) -> dict:
    """Train, score, write the checkpoint, its record and plot; return the record."""
    checkpoint = output_path(args)
    check_output(checkpoint, args.overwrite, RECORDS, flag="--checkpoint")
    if args.out:
        check_output(Path(args.out), args.overwrite)
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = get_task(args.env)
    train, test, files = read_transitions(args)
    obs_dim, action_dim = train["observations"].shape[1], train["actions"].shape[1]
    config = args.world_model_config(obs_dim, action_dim, spec.name)
    start, start_record = read_start(args, config)
    training = args.world_model_training(args.seed, args.device)
    model, history = train_world_model(
        *(train[key] for key in FIELDS[:4]), config, training, task=spec.name, start=start
    )
    scale = np.maximum(np.std(train["observations"], axis=0), 1e-6)
    errors = k_step_errors(
        model,
        *(test[key] for key in FIELDS[:2]),
        *(test[key] for key in FIELDS[3:]),
        ks=KS,
        obs_scale=scale,
    )
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    model.save(checkpoint)
    k_step = {str(k): v for k, v in errors.items()}
    record = {
        "env": spec.name,
        "command": command_line(),
        "arguments": asdict(args),
        "config": asdict(config),
        "training": asdict(training),
        "start_from": start_record,
        "data": files,
        "sizes": {
            "train_transitions": len(train["rewards"]),
            "test_transitions": len(test["rewards"]),
        },
        "history": history,
        "k_step_error": k_step,
    }
    write_json(checkpoint.with_suffix(".json"), record)
    plot(history, errors, checkpoint.with_suffix(".kstep.png"))
    if args.out:
        write_json(Path(args.out), {"env": spec.name, "k_step_error": k_step})
    print(
        f"wrote {checkpoint}: {summary(history, args)}; k-step error "
        + ", ".join(f"{k}: {v:.3g}" for k, v in errors.items())
    )
    return record


if __name__ == "__main__":
    run_main(main, TrainArgs, __doc__)
