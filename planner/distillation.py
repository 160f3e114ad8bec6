"""Distil a :class:`~planner.prior.DiffusionPrior`'s S-step decode into a one-step
:class:`~planner.distilled.DistilledPrior`.

Method: direct regression on the teacher's deterministic map, the knowledge distillation of a
deterministic sampler (Luhman & Luhman 2021). DDIM with eta = 0 is a deterministic function
``z -> f_S(z)``, and latents cost nothing to draw, so every training pair ``(z, f_S(z))`` is
exact and fresh: there is no dataset to overfit and no target to bootstrap, hence no need for
consistency training or progressive halving of the steps (methods made for targets that are
too expensive to compute, e.g. S in the hundreds; here S is a handful of calls). The student
starts as the teacher's own network with the teacher's weights, read as the one-step DDIM x0
estimate, i.e. it starts at ``f_1`` and only has to learn the correction ``f_S - f_1``.

The loss is the mean squared error in model space (normalised units, before the clamp to the
data bounds), where the teacher's targets are smooth; the validation error is measured in data
units (actions for action priors) on held-out latents from a separate seed stream, with the
teacher's own 1- and 2-step decodes against its S-step decode for context.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from planner.diffusion import ddim_decode
from planner.distilled import DistilledPrior, check_teacher_steps
from planner.prior import DiffusionPrior
from planner.training import LossWindow
from planner.validation import check_count

REFERENCE_STEPS = 2
"""The teacher decode the student is compared with for context: the cheapest one with more
than one network call, and what the planner searches with when speed matters."""


@dataclass(frozen=True)
class DistillationConfig:
    """How to distil a student; defaults suit the shipped MLP priors on one CPU thread."""

    steps: int = 5000
    """Optimiser steps (one batch of fresh latents each)."""
    batch_size: int = 256
    learning_rate: float = 1e-3
    """Initial Adam learning rate, cosine-decayed to 0 over ``steps``. Validation RMSE of the
    shipped unicycle prior's student after 1000 steps: 0.107 / 0.073 / 0.053 / 0.046 at 1e-4 /
    3e-4 / 1e-3 / 3e-3; after 4000: 0.032 at 1e-3, 0.029 at 3e-3 (1e-3: the safer default)."""
    teacher_steps: int = 5
    """S, the teacher's DDIM steps the student imitates."""
    latent_std: tuple[float, float] = (0.7, 1.3)
    """Training latents are ``s * eps``, ``eps ~ N(0, I)``, ``s ~ U[low, high]`` per latent.

    In H * C dimensions the norm of an N(0, I) latent concentrates tightly around
    ``sqrt(H * C)`` (+-7 % for 96 dimensions), so a student fitted on N(0, I) alone would never
    see the latents a search produces: elite means are averages, hence shorter, and a search
    with a wider or narrower Gaussian samples longer or shorter ones. (1.0, 1.0): N(0, I) only.
    """
    validation_latents: int = 1024
    """Held-out latents (drawn like the training ones, from another seed stream)."""
    log_every: int = 100
    """Record the training loss and validation error every this many steps (and at the last)."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "validation_latents", "log_every"):
            check_count(name, getattr(self, name))
        if not self.learning_rate > 0:
            raise ValueError(
                f"learning_rate must be > 0 (1e-3 is typical), got {self.learning_rate}"
            )
        check_teacher_steps(self.teacher_steps)
        object.__setattr__(self, "latent_std", tuple(self.latent_std))
        if len(self.latent_std) != 2 or not 0 < self.latent_std[0] <= self.latent_std[1] < math.inf:
            raise ValueError(
                f"latent_std must be (low, high) with 0 < low <= high, e.g. (0.7, 1.3), "
                f"got {self.latent_std}"
            )


def _draw_latents(
    count: int, shape: tuple[int, int], latent_std: tuple[float, float], generator: torch.Generator
) -> torch.Tensor:
    """Latents ``(count, H, C)`` on the CPU, each N(0, I) times its own s ~ U[low, high]."""
    low, high = latent_std
    scale = low + (high - low) * torch.rand(count, 1, 1, generator=generator)
    return scale * torch.randn(count, *shape, generator=generator)


def _errors(decoded: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """RMSE and largest absolute difference between two decodes ``(N, H, C)`` in data units."""
    difference = decoded - target
    return {
        "rmse": float(difference.square().mean().sqrt()),
        "max_abs": float(difference.abs().max()),
    }


def distill(
    teacher: DiffusionPrior,
    config: DistillationConfig = DistillationConfig(),
    seed: int = 0,
    progress: bool = True,
) -> tuple[DistilledPrior, dict[str, list[float]]]:
    """Train a one-step student of ``teacher``'s ``config.teacher_steps``-step decode.

    Runs on the teacher's device. ``seed`` drives two independent streams: the training
    latents and the held-out validation latents.

    Returns:
        The student (on the teacher's device, its ``record`` holding S, the seed, ``config``
        and the final validation errors) and the history ``{"step", "train_loss", "val_rmse",
        "val_max_abs"}``: training loss (model space) averaged over each logging window, and
        the student's error to the S-step decode on the validation latents (data units).
    """
    if not isinstance(teacher, DiffusionPrior):
        raise TypeError(f"teacher must be a DiffusionPrior, got {type(teacher).__name__}")
    check_count("seed", seed, minimum=0)
    steps = config.teacher_steps
    student = DistilledPrior.from_teacher(teacher, steps)  # refuses a conditioned teacher
    device, shape = teacher.device, teacher.latent_shape
    train_seed, val_seed = (
        int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(2)
    )
    generator = torch.Generator().manual_seed(train_seed)
    validation, target = _validation_set(teacher, config, val_seed)

    model = student.model.requires_grad_(True)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    history: dict[str, list[float]] = {
        "step": [],
        "train_loss": [],
        "val_rmse": [],
        "val_max_abs": [],
    }
    window = LossWindow(device)
    bar = tqdm(range(1, config.steps + 1), desc=f"distil {steps}-step decode", disable=not progress)
    for step in bar:
        # Sample: fresh latents and the teacher's exact decodes of them, in model space
        latents = _draw_latents(config.batch_size, shape, config.latent_std, generator).to(device)
        with torch.inference_mode():
            teacher_x0 = ddim_decode(teacher.model, latents, teacher.schedule, steps)

        # Regress (the denoisers have no dropout or batch norm: eval mode trains the same)
        loss = torch.mean((student.predict_x0(latents) - teacher_x0) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_schedule.step()
        window.add(loss)

        # Log
        if step % config.log_every == 0 or step == config.steps:
            errors = _errors(student.decode(validation), target)
            history["step"].append(step)
            history["train_loss"].append(window.mean_and_reset())
            history["val_rmse"].append(errors["rmse"])
            history["val_max_abs"].append(errors["max_abs"])
            bar.set_postfix(loss=f"{history['train_loss'][-1]:.2e}", rmse=f"{errors['rmse']:.4f}")

    student.record = _record(student, teacher, config, seed, validation, target)
    return student, history


def _validation_set(
    teacher: DiffusionPrior, config: DistillationConfig, val_seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out latents ``(V, H, C)`` drawn from ``val_seed`` and the teacher's S-step decodes
    of them (data units), fixed for the whole run."""
    generator = torch.Generator().manual_seed(val_seed)
    shape = teacher.latent_shape
    validation = _draw_latents(config.validation_latents, shape, config.latent_std, generator)
    validation = validation.to(teacher.device)
    return validation, teacher.decode(validation, config.teacher_steps)


def _record(
    student: DistilledPrior,
    teacher: DiffusionPrior,
    config: DistillationConfig,
    seed: int,
    validation: torch.Tensor,
    target: torch.Tensor,
) -> dict:
    """The student's record: S, the seed, ``config``, and the errors to the S-step decode of
    ``target`` on the ``validation`` latents, of the student and, for context, of the
    teacher's own 1- and 2-step decodes."""
    reference = {n: _errors(teacher.decode(validation, n), target) for n in (1, REFERENCE_STEPS)}
    return {
        "teacher_steps": config.teacher_steps,
        "seed": seed,
        "distillation": asdict(config),
        "validation": {
            "latents": config.validation_latents,
            "student": _errors(student.decode(validation), target),
            **{f"teacher_{n}_step": errors for n, errors in reference.items()},
        },
    }
