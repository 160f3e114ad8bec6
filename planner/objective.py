"""The Objective protocol: how the planner scores candidate action trajectories.

An objective is any callable ``rewards = objective(state, actions)``:

- ``state``: whatever the simulator needs to restart from the current moment (a numpy array of
  the full physics state, a kinematic state ``(D,)``, ...). The planner never looks inside it.
- ``actions``: ``(N, H, A)`` float array of normalised actions in ``[-1, 1]``.
- returns ``(N,)`` float rewards (higher is better); a non-finite entry marks an invalid
  candidate, which is never an elite.

The planner knows nothing of gymnasium or MuJoCo: environments provide objectives. The two helpers
here, :func:`score_candidates` and :func:`top_indices`, serve every planner (Diffusion Elites and
the action-space baselines alike).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Objective(Protocol):
    """Black-box reward of N candidate action trajectories from one state."""

    def __call__(self, state: Any, actions: np.ndarray) -> np.ndarray:
        """Score ``actions (N, H, A)`` from ``state``; return rewards ``(N,)``."""
        ...


def score_candidates(objective: Objective, state: Any, actions: np.ndarray) -> np.ndarray:
    """Rewards (N,) float64 of ``actions (N, H, A)``, checked to be one reward per candidate."""
    rewards = np.asarray(objective(state, actions), dtype=np.float64)
    if rewards.shape != (actions.shape[0],):
        raise ValueError(
            f"objective returned rewards of shape {rewards.shape} for {actions.shape[0]} "
            f"candidates; it must return one reward per candidate, shape ({actions.shape[0]},)"
        )
    return rewards


def top_indices(rewards: np.ndarray, k: int) -> np.ndarray:
    """Indices of the (at most) k highest finite rewards, best first."""
    order = np.argsort(-np.where(np.isfinite(rewards), rewards, -np.inf), kind="stable")[:k]
    return order[np.isfinite(rewards[order])]
