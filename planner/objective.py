"""The Objective protocol: how the planner scores candidate action trajectories.

An objective is any callable ``rewards = objective(state, actions)``:

- ``state``: whatever the simulator needs to restart from the current moment (a numpy array of
  the full physics state, a kinematic state ``(D,)``, ...). The planner never looks inside it.
- ``actions``: ``(N, H, A)`` float array of normalised actions in ``[-1, 1]``.
- returns ``(N,)`` float rewards (higher is better); a non-finite entry marks an invalid
  candidate, which is never an elite.

The planner knows nothing of gymnasium or MuJoCo: environments provide objectives.
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
