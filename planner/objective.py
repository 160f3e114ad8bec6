"""The Objective protocol: how the planner scores candidate action trajectories.

An objective is any callable ``rewards = objective(state, actions)``:

- ``state``: whatever the simulator needs to restart from the current moment (a numpy array of
  the full physics state, a kinematic state ``(D,)``, ...). The planner never looks inside it.
- ``actions``: ``(N, H, A)`` float array of normalised actions in ``[-1, 1]``.
- returns ``(N,)`` float rewards (higher is better); a non-finite entry marks an invalid
  candidate, which is never an elite.

An objective may also offer ``bind(state) -> score``, ``rewards (N,) = score(actions)``: it checks
the state once and skips the per-call checks of actions that a planner makes valid by
construction (finite, ``(N, H, A)``, in ``[-1, 1]``). A planner binds once per control step.

The planner knows nothing of gymnasium or MuJoCo: environments provide objectives. The helpers
here, :func:`bind_state`, :func:`score_candidates` and :func:`top_indices`, serve every planner
(Diffusion Elites and the action-space baselines alike); :func:`terminal_values` serves every
objective that values its candidates' last states (the simulator's and a world model's).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Objective(Protocol):
    """Black-box reward of N candidate action trajectories from one state."""

    def __call__(self, state: Any, actions: np.ndarray) -> np.ndarray:
        """Score ``actions (N, H, A)`` from ``state``; return rewards ``(N,)``."""
        ...


TerminalValue = Callable[[np.ndarray], np.ndarray]
"""``values (N,) = terminal_value(observations (N, O))``: a planning estimate of what a candidate
would earn after its horizon, from the env's observation of its last state (simulated or
predicted; :class:`policies.sb3_agents.CriticValue`: an SB3 agent's critic)."""

Score = Callable[[np.ndarray], np.ndarray]
"""``rewards (N,) = score(actions (N, H, A))``: an objective bound to one planning state."""


def bind_state(objective: Objective, state: Any) -> Score:
    """``objective`` bound to ``state`` for one control step: its own ``bind(state)`` when it has
    one (the state checked once), else ``objective(state, actions)`` on every call."""
    bind = getattr(objective, "bind", None)
    return bind(state) if bind is not None else partial(objective, state)


def score_candidates(score: Score, actions: np.ndarray) -> np.ndarray:
    """Rewards (N,) float64 of ``actions (N, H, A)`` by a bound objective (:func:`bind_state`),
    checked to be one reward per candidate."""
    rewards = np.asarray(score(actions), dtype=np.float64)
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


def terminal_values(terminal_value: TerminalValue, observations: np.ndarray) -> np.ndarray:
    """``terminal_value`` of finite ``observations (M, O)``: ``values (M,)`` float64, or
    ValueError if it does not return one finite value per observation."""
    found = np.asarray(terminal_value(observations), dtype=np.float64)
    if found.shape != (len(observations),):
        raise ValueError(
            f"terminal_value must return one value per observation, shape ({len(observations)},) "
            f"from observations {observations.shape}; got shape {found.shape}"
        )
    if not np.isfinite(found).all():
        raise ValueError(
            f"terminal_value returned NaN or inf for {int((~np.isfinite(found)).sum())} of "
            f"{len(observations)} finite observations (first: "
            f"{observations[~np.isfinite(found)][0]})"
        )
    return found
