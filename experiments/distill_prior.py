"""Distil a trained prior's S-step DDIM decode into a one-step student and write it.

    python experiments/distill_prior.py --prior checkpoints/hopper-action-sac452k.pt
    python experiments/distill_prior.py --prior checkpoints/hopper-action-sac452k.pt --steps 5 \\
        --train-steps 8000 --out runs/hopper-action-sac452k-student.pt

The student (planner/distilled.py) is the teacher's network, started from its weights and
trained to give the teacher's S-step decode in one call (planner/distillation.py). Writes
``<out>`` (default ``<teacher stem>-student.pt`` in a new run folder,
``runs/distill_prior__<teacher stem>-student__<time>/``), ``<out stem>.json`` (the exact command,
seed, configuration, the teacher's path and SHA-256, the validation errors and the loss
history) and ``<out stem>.loss.png``. An existing ``--out`` is refused unless ``--overwrite``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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
from planner.distillation import REFERENCE_STEPS, DistillationConfig, distill
from planner.files import file_sha256
from planner.prior import DiffusionPrior


@dataclass
class DistillArgs(ScriptArgs):
    """Arguments of distill_prior.py."""

    prior: str | None = arg(None, "the teacher: a prior checkpoint written by train_prior.py")
    steps: int = arg(5, "S, the teacher's DDIM steps the student imitates", minimum=2)
    train_steps: int = arg(5000, "optimizer steps (fresh latents each)", minimum=1)
    batch_size: int = arg(256, "latents per optimizer step", minimum=1)
    learning_rate: float = arg(1e-3, "initial Adam learning rate (cosine decay to 0)")
    seed: int = arg(0, "seed of the training and validation latents", minimum=0)
    device: str = arg("cpu", "torch device", check=check_device)
    threads: int = arg(1, "torch CPU threads", minimum=1)
    out: str | None = arg(
        None, "student checkpoint (default: <prior stem>-student.pt in a new folder of runs/)"
    )
    overwrite: bool = overwrite_arg()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prior is None:
            raise ValueError("--prior PATH is required: the prior checkpoint to distil")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate}")


RECORDS = (".json", ".loss.png")
"""What is written beside the student: its record and its loss plot."""


def output_path(args: DistillArgs) -> Path:
    """``--out``, or ``<teacher stem>-student.pt`` in a new run folder."""
    name = f"{Path(args.prior).stem}-student.pt"
    return Path(args.out) if args.out else new_run_file("distill_prior", name)


def plot_distillation(history: dict, validation: dict, steps: int, path: Path) -> None:
    """Training loss (model space) and validation RMSE (data units) against step, log scale,
    with the teacher's own 1- and 2-step errors as references."""
    figure = Figure(figsize=(10, 4), dpi=90)
    FigureCanvasAgg(figure)
    loss, rmse = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    loss.plot(history["step"], history["train_loss"])
    loss.set_ylabel("training loss (MSE, model space)")
    rmse.plot(history["step"], history["val_rmse"], label="student")
    for n, style in ((1, ":"), (REFERENCE_STEPS, "--")):
        rmse.axhline(
            validation[f"teacher_{n}_step"]["rmse"],
            color="0.4",
            linestyle=style,
            label=f"teacher, {n} step{'s' if n > 1 else ''}",
        )
    rmse.set_ylabel(f"validation RMSE to the {steps}-step decode (data units)")
    rmse.legend(loc="center right")
    for ax in (loss, rmse):
        ax.set_yscale("log")
        ax.set_xlabel("step")
    figure.tight_layout()
    figure.savefig(path)


def main(args: DistillArgs) -> Path:
    """Distil the prior; write the student, its record and loss plot; return the student's path."""
    torch.set_num_threads(args.threads)
    teacher_path = Path(args.prior)
    out = output_path(args)
    if out.exists() and out.resolve() == teacher_path.resolve():
        raise UsageError(f"--out {out} is the teacher itself; write the student elsewhere")
    check_output(out, args.overwrite, RECORDS)
    teacher = DiffusionPrior.load(teacher_path, args.device)
    if teacher.cond_dim:
        raise UsageError(
            f"{teacher_path} is conditioned (cond_dim={teacher.cond_dim}): conditioned priors "
            "are not supported yet; pass an unconditioned prior"
        )
    teacher_sha256 = file_sha256(teacher_path)
    config = DistillationConfig(
        steps=args.train_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        teacher_steps=args.steps,
    )
    tic = time.perf_counter()
    student, history = distill(teacher, config, args.seed)
    seconds = time.perf_counter() - tic
    student.record["teacher"] = {"file": teacher_path.name, "sha256": teacher_sha256}
    student.save(out)
    validation = student.record["validation"]
    plot_distillation(history, validation, args.steps, out.with_suffix(".loss.png"))
    record = {
        "command": command_line(),
        "arguments": asdict(args),
        "seed": args.seed,
        "teacher": {
            "path": str(teacher_path),
            "sha256": teacher_sha256,
            "task": teacher.task,
            "denoiser": asdict(teacher.config),
            "diffusion_steps": teacher.schedule.train_steps,
        },
        "task": student.task,
        "distillation": asdict(config),
        "validation": validation,
        "train_seconds": seconds,
        "steps_per_second": args.train_steps / seconds,
        "final_train_loss": history["train_loss"][-1],
        "final_val_rmse": history["val_rmse"][-1],
        "best_val_rmse": min(history["val_rmse"]),
        "history": history,
    }
    write_json(out.with_suffix(".json"), record)
    errors, two = validation["student"], validation[f"teacher_{REFERENCE_STEPS}_step"]
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) in {seconds:.0f} s; to the "
        f"{args.steps}-step decode: student RMSE {errors['rmse']:.4f} "
        f"(max {errors['max_abs']:.3f}), teacher {REFERENCE_STEPS}-step RMSE {two['rmse']:.4f} "
        f"(max {two['max_abs']:.3f})"
    )
    return out


if __name__ == "__main__":
    run_main(main, DistillArgs, __doc__)
