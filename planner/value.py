"""A learned survival value: how many more steps an episode runs from a state, capped at K.

A planner whose horizon H is shorter than the time a fall takes to become unavoidable cannot
see that fall coming. :class:`SurvivalValue` predicts, from a state's features ``(N, F)``, the
number of steps ``min(steps until termination, K)`` the episode keeps running; times the task's
alive bonus it is the reward a candidate would keep earning after its horizon (the terminal
value of TD-MPC / MBOP), added by the planning objective to each candidate that has not fallen.

Training data are the states of recorded episodes. :func:`survival_targets` labels them: a
state ``t`` steps before an episode terminated has target ``min(t, K)``; an episode cut at its
step limit without terminating is censored, so only its states at least K steps before the
cut (known to survive K more steps) are labelled, with K.

torch and numpy only; the task's feature map lives with the task (:mod:`envs.hopper_value`).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from planner.checkpoint import load_checkpoint, save_checkpoint

_CONTENTS = ("config", "state_dict")


def survival_targets(steps: int, terminated: bool, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets and which are known for the ``steps + 1`` states of one episode.

    Args:
        steps: env steps the episode ran; its states are those before each step and the last.
        terminated: whether it ended by termination (a fall) rather than a step limit.
        horizon: K, the cap on the survival target.

    Returns:
        ``targets (steps + 1,)`` float32, ``min(steps - t, K)`` for state ``t``, and
        ``known (steps + 1,)`` bool: all states of a terminated episode, else only those at
        least K steps before the cut (censored data: the rest may or may not survive K more).
    """
    remaining = steps - np.arange(steps + 1)
    targets = np.minimum(remaining, horizon).astype(np.float32)
    known = np.ones(steps + 1, dtype=bool) if terminated else remaining >= horizon
    return targets, known


@dataclass(frozen=True)
class ValueConfig:
    """Architecture and cap of a :class:`SurvivalValue`: F inputs, ``layers`` x ``width`` SiLU
    hidden units, predictions in ``(0, horizon)`` steps."""

    features: int
    horizon: int = 100
    width: int = 64
    layers: int = 2


class SurvivalValue(nn.Module):
    """An MLP ``features (N, F) -> predicted survival steps (N,)`` in ``(0, K)``.

    Inputs are standardised with the training set's mean and std (kept as buffers); the output
    is ``K * sigmoid(mlp(x))``, so a prediction never leaves the range of its targets.
    """

    def __init__(self, config: ValueConfig):
        super().__init__()
        self.config = config
        sizes = [config.features] + [config.width] * config.layers
        hidden = [m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), nn.SiLU())]
        self.network = nn.Sequential(*hidden, nn.Linear(sizes[-1], 1))
        self.register_buffer("mean", torch.zeros(config.features))
        self.register_buffer("std", torch.ones(config.features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Survival steps ``(N,)`` of ``features (N, F)`` (a tensor, differentiable)."""
        logits = self.network((features - self.mean) / self.std).squeeze(-1)
        return self.config.horizon * torch.sigmoid(logits)

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Survival steps ``(N,)`` float64 of ``features (N, F)`` (numpy in and out)."""
        array = np.asarray(features, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.config.features:
            raise ValueError(
                f"features must be (N, {self.config.features}), got shape {array.shape}"
            )
        return self(torch.from_numpy(array)).double().numpy()

    def save(self, path: str | os.PathLike, task: str | None = None) -> None:
        """Write a checkpoint (see :mod:`planner.checkpoint`) recording ``task``."""
        contents = {"config": asdict(self.config), "state_dict": self.state_dict()}
        save_checkpoint(path, "survival_value", contents, task=task)

    @classmethod
    def load(cls, path: str | os.PathLike, task: str | None = None) -> SurvivalValue:
        """Read a checkpoint; ``task`` given: refuse one trained for another task."""
        payload = load_checkpoint(path, "survival_value", _CONTENTS, task=task)
        model = cls(ValueConfig(**payload["config"]))
        model.load_state_dict(payload["state_dict"])
        return model.eval()


def train_value(
    features: np.ndarray,
    targets: np.ndarray,
    config: ValueConfig,
    epochs: int = 300,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> tuple[SurvivalValue, list[float]]:
    """Fit a :class:`SurvivalValue` to ``features (M, F)`` and ``targets (M,)`` (steps, in
    ``[0, K]``) by mean squared error on targets scaled by 1/K; seeded, so deterministic.

    Returns the model (in eval mode) and the mean training loss of each epoch.
    """
    features = np.asarray(features, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] != config.features:
        raise ValueError(f"features must be (M, {config.features}), got shape {features.shape}")
    if targets.shape != (len(features),):
        raise ValueError(f"targets must be ({len(features)},), got shape {targets.shape}")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the layers' initial weights
    model = SurvivalValue(config)
    x, y = torch.from_numpy(features), torch.from_numpy(targets) / config.horizon
    model.mean.copy_(x.mean(dim=0))
    model.std.copy_(x.std(dim=0).clamp_min(1e-6))
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for batch in order.split(batch_size):
            loss = (model(x[batch]) / config.horizon - y[batch]).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(x))
    return model.eval(), losses
