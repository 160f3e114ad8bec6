"""Train a :class:`~planner.prior.DiffusionPrior` on a trajectory dataset.

v-prediction loss, AdamW with linear warm-up and cosine decay, an exponential moving average
(EMA) of the weights (what the returned prior uses), a held-out validation split scored with the
EMA weights on fixed noise, and a tqdm progress bar. One seed drives the split, the
initialisation, the batches and the noise.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from planner.denoiser import DenoiserConfig, build_denoiser
from planner.diffusion import NoiseSchedule, v_prediction_loss
from planner.normalizer import NORMALIZATIONS, Normalizer
from planner.prior import DiffusionPrior
from planner.validation import check_count


@dataclass(frozen=True)
class TrainingConfig:
    """How to train a prior; defaults suit a few thousand short trajectories on a CPU."""

    steps: int = 5000
    """Optimiser steps (one batch each)."""
    batch_size: int = 256
    learning_rate: float = 1e-3
    """Peak AdamW learning rate, reached after warmup_steps, then cosine-decayed to 0."""
    warmup_steps: int | None = None
    """Linear warmup of the learning rate; None: min(100, steps // 10)."""
    weight_decay: float = 1e-4
    ema_decay: float = 0.999
    """EMA decay of the returned weights (ramped up from ~0.1 over the first steps)."""
    val_fraction: float = 0.1
    """Share of trajectories held out for the validation loss (0 = none, val_loss is NaN)."""
    seed: int = 0
    device: str = "cpu"
    grad_clip: float | None = 1.0
    """Max gradient norm; None disables clipping."""
    log_every: int = 100
    """Record train/val loss every this many steps (and at the last step)."""
    diffusion_steps: int = 1000
    """Timesteps of the noise schedule (train_steps of NoiseSchedule)."""
    normalization: str = "standard"
    """How trajectories map to model space: "standard" (mean/std) or "minmax" (to [-1, 1])."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every"):
            check_count(name, getattr(self, name))
        if self.warmup_steps is None:
            object.__setattr__(self, "warmup_steps", min(100, self.steps // 10))
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(
                f"warmup_steps must be in 0..steps-1={self.steps - 1}, got {self.warmup_steps}"
            )
        if not self.learning_rate > 0:
            raise ValueError(
                f"learning_rate must be > 0 (1e-3 is typical), got {self.learning_rate}"
            )
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(
                f"ema_decay must be in [0, 1) (0.999 is typical), got {self.ema_decay}"
            )
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}"
            )
        NoiseSchedule(self.diffusion_steps)  # validates diffusion_steps


class LossWindow:
    """The mean training loss over a logging window, summed on the device so that a step
    does not wait for its loss to reach the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._reset()

    def _reset(self) -> None:
        self._sum, self._count = torch.zeros((), device=self.device), 0

    def add(self, loss: torch.Tensor) -> None:
        """Count one step's ``loss`` (a scalar tensor)."""
        self._sum += loss.detach()
        self._count += 1

    def mean_and_reset(self) -> float:
        """The mean of the losses added since the last call."""
        mean = float(self._sum) / self._count
        self._reset()
        return mean


def _as_data(values: torch.Tensor | np.ndarray, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Finite float32 CPU tensor whose trailing axes equal ``shape``."""
    values = torch.as_tensor(values, dtype=torch.float32, device="cpu")
    if values.ndim != 1 + len(shape) or tuple(values.shape[1:]) != shape:
        symbols = "(N, H, C)" if len(shape) == 2 else "(N, K)"
        raise ValueError(
            f"{name} must be {symbols} = (N, {', '.join(map(str, shape))}), "
            f"got {tuple(values.shape)}"
        )
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} contain NaN or inf; drop or repair those samples first")
    return values


def _loss_over(
    model: nn.Module,
    x0: torch.Tensor,
    cond: torch.Tensor | None,
    schedule: NoiseSchedule,
    seed: int,
    batch_size: int,
) -> float:
    """Mean v-prediction loss over all of ``x0 (N, H, C)`` with noise fixed by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    with torch.no_grad():
        for start in range(0, x0.shape[0], batch_size):
            chunk = slice(start, start + batch_size)
            part = None if cond is None else cond[chunk]
            loss = v_prediction_loss(model, x0[chunk], schedule, generator, part)
            total += float(loss) * x0[chunk].shape[0]
    return total / x0.shape[0]


def train_prior(
    trajectories: torch.Tensor | np.ndarray,
    denoiser_config: DenoiserConfig,
    config: TrainingConfig | None = None,
    cond: torch.Tensor | np.ndarray | None = None,
    progress: bool = True,
) -> tuple[DiffusionPrior, dict[str, list[float]]]:
    """Fit a diffusion prior to ``trajectories (N, H, C)`` (and optional ``cond (N, K)``).

    Returns the prior (EMA weights, on ``config.device``) and the history
    ``{"step": [...], "train_loss": [...], "val_loss": [...]}``: train loss averaged over each
    logging window, validation loss of the EMA weights on the held-out split.
    """
    config = config if config is not None else TrainingConfig()
    data, cond = _checked_data(trajectories, cond, denoiser_config)
    device = torch.device(config.device)
    schedule = NoiseSchedule(config.diffusion_steps)
    generator = torch.Generator().manual_seed(config.seed)

    # Split
    train_idx, val_idx = _split(data.shape[0], config.val_fraction, generator)
    normalizer = Normalizer.fit(data[train_idx], config.normalization)
    cond_normalizer = None if cond is None else Normalizer.fit(cond[train_idx], "standard")
    model_data = normalizer.normalize(data).to(device)
    model_cond = None if cond is None else cond_normalizer.normalize(cond).to(device)

    def rows(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = idx.to(device)
        return model_data[idx], None if model_cond is None else model_cond[idx]

    model, ema, optimizer, lr_schedule = _model_and_optimizer(denoiser_config, config, device)
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "val_loss": []}
    window = LossWindow(device)
    bar = tqdm(range(1, config.steps + 1), desc="train prior", disable=not progress)
    for step in bar:
        # Step
        x0, batch_cond = rows(
            train_idx[torch.randint(len(train_idx), (config.batch_size,), generator=generator)]
        )
        loss = v_prediction_loss(model, x0, schedule, generator, batch_cond)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        lr_schedule.step()
        window.add(loss)

        # EMA: ramp the decay so early averages are not dominated by the random initialisation
        _update_ema(ema, model, decay=min(config.ema_decay, (1 + step) / (10 + step)))

        # Log
        if step % config.log_every == 0 or step == config.steps:
            val_loss = float("nan")
            if len(val_idx):
                val_x0, val_cond = rows(val_idx)
                val_loss = _loss_over(
                    ema, val_x0, val_cond, schedule, config.seed + 1, config.batch_size
                )
            history["step"].append(step)
            history["train_loss"].append(window.mean_and_reset())
            history["val_loss"].append(val_loss)
            bar.set_postfix(train=f"{history['train_loss'][-1]:.4f}", val=f"{val_loss:.4f}")

    prior = DiffusionPrior(denoiser_config, normalizer, schedule, ema, device, cond_normalizer)
    return prior, history


def _checked_data(
    trajectories: torch.Tensor | np.ndarray,
    cond: torch.Tensor | np.ndarray | None,
    denoiser_config: DenoiserConfig,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``trajectories (N, H, C)`` and ``cond (N, K)`` (None when the denoiser takes none) as
    checked float32 CPU tensors of the denoiser's shapes."""
    shape = (denoiser_config.horizon, denoiser_config.channels)
    data = _as_data(trajectories, "trajectories", shape)
    if denoiser_config.cond_dim:
        if cond is None:
            raise ValueError(
                f"denoiser_config.cond_dim={denoiser_config.cond_dim}: pass cond (N, K)"
            )
        cond = _as_data(cond, "cond", (denoiser_config.cond_dim,))
        if cond.shape[0] != data.shape[0]:
            raise ValueError(
                f"cond has {cond.shape[0]} rows but there are {data.shape[0]} trajectories"
            )
    elif cond is not None:
        raise ValueError("cond given but denoiser_config.cond_dim=0; set cond_dim=K or drop cond")
    return data, cond


def _split(
    count: int, val_fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and validation indices of ``count`` trajectories, shuffled by
    ``generator``; at least two are left for training."""
    val_count = math.ceil(val_fraction * count) if val_fraction else 0
    if count - val_count < 2:
        raise ValueError(
            f"{count} trajectories leave {count - val_count} for training after the validation "
            f"split (val_fraction={val_fraction}); provide more data or lower val_fraction"
        )
    order = torch.randperm(count, generator=generator)
    return order[val_count:], order[:val_count]


def _model_and_optimizer(
    denoiser_config: DenoiserConfig, config: TrainingConfig, device: torch.device
) -> tuple[nn.Module, nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The denoiser (initialised from ``config.seed`` without touching the global RNG), its
    EMA copy, AdamW and its learning-rate schedule: linear warm-up, then cosine decay to 0."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_denoiser(denoiser_config).to(device).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )

    def lr_factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        done = (step - config.warmup_steps) / (config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * done))

    return model, ema, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)


def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """Move each of ``ema``'s weights ``1 - decay`` of the way to ``model``'s."""
    with torch.no_grad():
        for averaged, current in zip(ema.parameters(), model.parameters(), strict=True):
            averaged.lerp_(current, 1 - decay)
