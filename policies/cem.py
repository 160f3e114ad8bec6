"""Action-space CEM: the Diffusion Elites planner with an identity decoder (no prior).

The same :class:`~planner.mpc.RecedingHorizonPlanner` loop searches the action trajectories
``(N, H, A)`` themselves, so CEM and Diffusion Elites differ only in the decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from planner.knots import KnotSchedule, as_schedule
from planner.mpc import PlannerConfig, RecedingHorizonPlanner
from planner.objective import Objective
from planner.safeguards import Safeguards


class ActionSpaceDecoder:
    """Identity 'prior': the latent is the action trajectory, clipped to [-1, 1].

    With it, :class:`RecedingHorizonPlanner` is plain CEM in action space.
    """

    decodes_in_one_call = True
    """``steps`` changes nothing."""

    def __init__(self, horizon: int, action_dim: int) -> None:
        self.latent_shape = (horizon, action_dim)

    def decode(self, latents: torch.Tensor, steps: int = 1, cond: Any = None) -> torch.Tensor:
        """Latents (N, K, A) -> knots (N, K, A) clipped to [-1, 1]."""
        return latents.clamp(-1.0, 1.0)

    def decoding(self, steps: int = 1, cond: Any = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """:meth:`decode` for one planning call."""
        return self.decode

    def encode(self, trajectories: torch.Tensor, steps: int = 1, cond: Any = None) -> torch.Tensor:
        """Knots (N, K, A) -> the same tensor (the inverse of the identity)."""
        return trajectories


def make_cem(
    objective: Objective,
    horizon: int | KnotSchedule,
    action_dim: int,
    config: PlannerConfig = PlannerConfig(init_std=0.5),
    seed: int | None = 0,
    safeguards: Safeguards = Safeguards(),
) -> RecedingHorizonPlanner:
    """Action-space CEM: the Diffusion Elites loop over actions (N, H, A) instead of latents
    (over knots (N, K, A) when ``horizon`` is a :class:`~planner.knots.KnotSchedule`).

    Samples are clipped to [-1, 1] before they are scored (``latent_bounds``), so the Gaussian
    is refitted to exactly the actions it scored and its mean stays inside the action box.
    """
    config = replace(config, latent_bounds=(-1.0, 1.0))
    schedule = as_schedule(horizon)
    decoder = ActionSpaceDecoder(schedule.knots, action_dim)
    return RecedingHorizonPlanner(
        decoder, objective, config, seed, "cpu", safeguards, schedule=schedule
    )
