"""Plans as K knots: how a planner's (K, A) plan becomes the H env actions it is scored by.

A long horizon costs physics, not search dimensions, when the plan is a few knots (MuJoCo MPC,
Hydrax and DIAL-MPC plan walkers over 0.3-0.8 s with 3-5 spline knots). Every planner searches
``(N, K, A)`` knots alike; :class:`KnotSchedule` turns them into ``(N, H, A)`` actions by one
interpolation, so every candidate is still a rollout of H env steps and budgets stay equal:

- ``"hold"``: zero-order hold; knot k is held over env steps ``[k H / K, (k+1) H / K)``;
- ``"linear"``: piecewise linear through knots at times ``linspace(0, H - 1, K)``;
- ``"cubic"``: cubic Hermite through the same knots, slopes by finite differences (the
  Catmull-Rom rule MuJoCo MPC's cubic spline uses), clipped to [-1, 1].

All three are linear maps, an (H, K) matrix; with K = H each is the identity and a plan is its
actions. A plan moves along time in env steps (:meth:`KnotSchedule.shift`: the trajectory
resampled at the knots' times plus the steps executed); a search distribution, whose entries
need not be actions (DE's latents), moves by whole knots (:class:`KnotClock`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from planner.objective import Objective, Score, bind_state
from planner.validation import check_count

INTERPOLATIONS = ("hold", "linear", "cubic")
DEFAULT_INTERPOLATION = "hold"
"""The interpolation of a plan unless told: with a knot per step, every one is the identity."""


@dataclass(frozen=True)
class KnotSchedule:
    """K knots -> H env actions by ``interpolation`` (module docstring).

    Attributes:
        horizon: H, env steps a plan covers (seconds = H * env dt).
        knots: K <= H, knots a planner searches per action dimension (None: H, one per step).
        interpolation: one of ``INTERPOLATIONS``.
    """

    horizon: int
    knots: int | None = None
    interpolation: str = DEFAULT_INTERPOLATION

    def __post_init__(self) -> None:
        check_count("KnotSchedule.horizon", self.horizon)
        if self.knots is None:
            object.__setattr__(self, "knots", self.horizon)  # frozen: set once, here
        check_count("KnotSchedule.knots", self.knots)
        if self.knots > self.horizon:
            raise ValueError(
                f"KnotSchedule.knots={self.knots} exceeds the horizon H={self.horizon}: a plan "
                "has at most one knot per env step"
            )
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"KnotSchedule.interpolation must be one of {INTERPOLATIONS}, "
                f"got {self.interpolation!r}"
            )
        if self.interpolation != "hold" and self.knots == 1 < self.horizon:
            raise ValueError(
                f"{self.interpolation} interpolation needs at least 2 knots; use 'hold' for one"
            )

    @property
    def identity(self) -> bool:
        """True when K = H: every interpolation is the identity, a plan is its actions."""
        return self.knots == self.horizon

    @property
    def steps_per_knot(self) -> float:
        """H / K env steps between knots (hold: each knot's span)."""
        return self.horizon / self.knots

    @cached_property
    def _times(self) -> np.ndarray:
        """(K,) env-step time of each knot."""
        if self.interpolation == "hold":
            return np.arange(self.knots) * self.steps_per_knot
        return np.linspace(0.0, self.horizon - 1, self.knots)

    def weights(self, times: np.ndarray) -> np.ndarray:
        """(len(times), K) weights of the knots in the actions at ``times`` (env steps, within
        [0, H - 1])."""
        times = np.asarray(times, dtype=np.float64)
        if self.interpolation == "hold":
            index = np.minimum(np.floor(times / self.steps_per_knot + 1e-9), self.knots - 1)
            return np.eye(self.knots)[index.astype(int)]
        knot_times = self._times
        segment = np.clip(np.searchsorted(knot_times, times, side="right") - 1, 0, self.knots - 2)
        left, right = knot_times[segment], knot_times[segment + 1]
        u = ((times - left) / (right - left))[:, None]
        eye = np.eye(self.knots)
        if self.interpolation == "linear":
            return (1 - u) * eye[segment] + u * eye[segment + 1]
        slopes = self._slopes()  # (K, K): slope of the curve at each knot, per knot value
        width = (right - left)[:, None]
        h00, h10 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u
        h01, h11 = -2 * u**3 + 3 * u**2, u**3 - u**2
        return (
            h00 * eye[segment]
            + h10 * width * slopes[segment]
            + h01 * eye[segment + 1]
            + h11 * width * slopes[segment + 1]
        )

    def _slopes(self) -> np.ndarray:
        """(K, K): row k gives the slope at knot k as weights of the knot values (central
        differences inside, one-sided at the ends)."""
        t, eye = self._times, np.eye(self.knots)
        slopes = np.empty((self.knots, self.knots))
        slopes[0] = (eye[1] - eye[0]) / (t[1] - t[0])
        slopes[-1] = (eye[-1] - eye[-2]) / (t[-1] - t[-2])
        slopes[1:-1] = (eye[2:] - eye[:-2]) / (t[2:] - t[:-2])[:, None]
        return slopes

    @cached_property
    def matrix(self) -> np.ndarray:
        """(H, K): actions = matrix @ knots."""
        return self.weights(np.arange(self.horizon, dtype=np.float64))

    def actions(self, knots: np.ndarray) -> np.ndarray:
        """Knots ``(..., K, A)`` -> actions ``(..., H, A)`` in [-1, 1] (K = H: ``knots`` itself)."""
        if self.identity:
            return knots
        actions = np.matmul(self.matrix, knots)
        # Hold and linear mix knots convexly; a cubic may overshoot the action box.
        return np.clip(actions, -1.0, 1.0) if self.interpolation == "cubic" else actions

    def fit(self, actions: np.ndarray) -> np.ndarray:
        """Actions ``(..., H, A)`` -> the knots ``(..., K, A)`` whose interpolation is nearest
        in least squares, clipped to [-1, 1] (K = H: ``actions`` itself); used to learn priors
        over knots from executed actions."""
        if self.identity:
            return actions
        return np.clip(np.matmul(np.linalg.pinv(self.matrix), actions), -1.0, 1.0)

    def shift(self, knots: np.ndarray, steps: int, tail: np.ndarray | None = None) -> np.ndarray:
        """Plan ``knots (..., K, A)`` moved ``steps`` env steps earlier along time.

        Knot k becomes the plan's action at time ``t_k + steps``; a knot past the plan's end
        (H - 1) becomes ``tail (A,)``, or (None) the plan's last action. With K = H this is the
        plan without its first ``steps`` rows, the tail appended.
        """
        knots = np.asarray(knots, dtype=np.float64)
        times = self._times + steps
        inside = times <= self.horizon - 1 + 1e-9
        last = (
            knots[..., -1:, :] if tail is None else np.broadcast_to(tail, knots[..., -1:, :].shape)
        )
        if self.identity:
            kept = knots[..., steps:, :]
        else:
            kept = np.matmul(self.weights(times[inside]), knots)
            if self.interpolation == "cubic":
                kept = np.clip(kept, -1.0, 1.0)
        tail_rows = np.repeat(last, int((~inside).sum()), axis=-2)
        return np.concatenate([kept, tail_rows], axis=-2)


@dataclass
class KnotClock:
    """Moves a search distribution over K knots by whole knots as env steps pass.

    Each replan asks :meth:`advance` how many knots to move after ``steps`` env steps; the
    steps not yet worth a knot are carried to the next call, so the distribution stays within
    half a knot of the plans' time (K = H: every step is a knot).
    """

    schedule: KnotSchedule
    _carried: float = field(default=0.0, init=False)

    def reset(self) -> None:
        """A new episode: nothing carried."""
        self._carried = 0.0

    def advance(self, steps: int) -> int:
        """Whole knots to move after ``steps`` more env steps (rounded to the nearest)."""
        elapsed = self._carried + steps
        knots = math.floor(elapsed / self.schedule.steps_per_knot + 0.5)
        self._carried = elapsed - knots * self.schedule.steps_per_knot
        return knots


class KnotObjective:
    """An objective over actions ``(N, H, A)`` seen as one over knots ``(N, K, A)``.

    Candidates are counted as the planner counts them, once each: a candidate of K knots is one
    rollout of H env steps.
    """

    def __init__(self, objective: Objective, schedule: KnotSchedule) -> None:
        self.objective = objective
        self.schedule = schedule

    def __call__(self, state: Any, knots: np.ndarray) -> np.ndarray:
        """Rewards ``(N,)`` of the actions ``knots (N, K, A)`` interpolate to."""
        return self.objective(state, self.schedule.actions(knots))

    def bind(self, state: Any) -> Score:
        """The objective bound to ``state``, scoring knots."""
        score = bind_state(self.objective, state)
        actions = self.schedule.actions
        return lambda knots: score(actions(knots))


def as_schedule(horizon: int | KnotSchedule) -> KnotSchedule:
    """``horizon`` itself if a :class:`KnotSchedule`, else a knot per step over H = ``horizon``."""
    return horizon if isinstance(horizon, KnotSchedule) else KnotSchedule(horizon)


def over_knots(objective: Objective, schedule: KnotSchedule) -> Objective:
    """``objective`` scoring knots of ``schedule``: itself when K = H (a plan is its actions)."""
    return objective if schedule.identity else KnotObjective(objective, schedule)
