"""The one map between the planner's normalised actions ``[-1, 1]^A`` and an env's own units.

Planners search and return actions in ``[-1, 1]`` (ARCHITECTURE.md, Conventions); every place
that talks to an env (the policy, the planning objectives, data collection, the episode loop)
goes through :class:`ActionScaling`, so the two directions can never disagree.
"""

from __future__ import annotations

import numpy as np


class ActionScaling:
    """Affine map ``env = offset + scale * normalised`` between ``[-1, 1]^A`` and ``[low, high]``.

    Args:
        low, high: ``(A,)`` finite env bounds with ``low < high`` (a Box space's ``low``/``high``).

    Raises:
        ValueError: bounds of different shapes, not finite (e.g. the ``(-inf, inf)`` that
            ``gymnasium.wrappers.ClipAction`` reports), or not ``low < high``.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        low = np.asarray(low, dtype=np.float64)
        high = np.asarray(high, dtype=np.float64)
        if low.ndim != 1 or low.shape != high.shape:
            raise ValueError(
                f"action bounds must be two (A,) arrays, got low {low.shape} and high {high.shape}"
            )
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError(
                f"action bounds must be finite to map planner actions in [-1, 1] onto them, got "
                f"low={low.tolist()}, high={high.tolist()}. A wrapper such as "
                "gymnasium.wrappers.ClipAction reports infinite bounds: take the bounds of the "
                "env inside it (DiffusionElitesPolicy.for_env does this for ClipAction)."
            )
        if not np.all(low < high):
            raise ValueError(
                f"action bounds need low < high in every dimension, got low={low.tolist()}, "
                f"high={high.tolist()}"
            )
        self.low, self.high = low, high
        self.scale = (high - low) / 2.0
        self.offset = (high + low) / 2.0

    @property
    def action_dim(self) -> int:
        """A, the number of action dimensions."""
        return self.low.shape[0]

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """Normalised actions ``(..., A)`` (clipped to [-1, 1]) -> env units within the bounds."""
        clipped = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        return np.clip(clipped * self.scale + self.offset, self.low, self.high)

    def to_normalised(self, actions: np.ndarray, clip: bool = True) -> np.ndarray:
        """Env actions ``(..., A)`` -> normalised actions; the inverse of :meth:`to_env`.

        ``clip=False`` keeps values outside [-1, 1], to tell which env actions lie out of bounds.
        """
        normalised = (np.asarray(actions, dtype=np.float64) - self.offset) / self.scale
        return np.clip(normalised, -1.0, 1.0) if clip else normalised

    def __repr__(self) -> str:
        return f"ActionScaling(low={self.low.tolist()}, high={self.high.tolist()})"
