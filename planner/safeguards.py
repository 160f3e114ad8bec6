"""What every planner shares between control steps, so that comparisons are on equal footing.

Each planner (Diffusion Elites, action-space CEM, iCEM, MPPI, random shooting) keeps the plan
it executed and, through :class:`PlanMemory`, applies the same three rules with the same
settings (:class:`Safeguards`), all inside its budget of reward evaluations:

- **fill action**: when a plan is moved k env steps earlier in time (to execute its next action,
  warm-start the next search, or be scored again), the new last steps (knots) get the task's
  fill action, e.g. standing still, so a collision-free plan stays collision-free; None repeats
  the plan's last action.
- **keep the previous plan**: the previous plan, shifted to now, is scored again as a candidate,
  so a replan never swaps a good plan for a worse one found by a noisy search.
- **safe plan**: the fill action held for the whole horizon is scored as a candidate, so the
  planner never executes a plan it predicts to be worse than simply holding the safe action.

When every reward of a step is invalid, every planner falls back alike: it executes its previous
plan shifted (and says so), or raises on the first step, where there is none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.knots import KnotSchedule, as_schedule


@dataclass(frozen=True)
class Safeguards:
    """The shared rules of :class:`PlanMemory` (module docstring).

    Attributes:
        fill_action: (A,) normalised action filling the tail of a shifted plan; None repeats
            the last action. Also what the safe plan holds.
        keep_previous_plan: score the previous plan shifted to now as one more candidate.
        safe_plan: score the fill action held for H steps as one more candidate (needs
            ``fill_action``; ignored without one).
    """

    fill_action: tuple[float, ...] | None = None
    keep_previous_plan: bool = True
    safe_plan: bool = True

    def __post_init__(self) -> None:
        if self.fill_action is not None:
            object.__setattr__(self, "fill_action", tuple(float(a) for a in self.fill_action))
            if not all(-1.0 <= a <= 1.0 for a in self.fill_action):
                raise ValueError(
                    f"Safeguards.fill_action must be normalised to [-1, 1], got {self.fill_action}"
                )

    @property
    def max_candidates(self) -> int:
        """How many extra candidates a step can score (previous plan, safe plan)."""
        return int(self.keep_previous_plan) + int(self.safe_plan and self.fill_action is not None)


class PlanMemory:
    """The executed plan of a planner and the shared rules around it, for plans of K knots
    ``(K, A)`` (K = H: the actions themselves).

    Args:
        horizon: H env steps, or the :class:`~planner.knots.KnotSchedule` of K knots over H.
        action_dim: A.
        safeguards: the shared settings.
    """

    def __init__(
        self, horizon: int | KnotSchedule, action_dim: int, safeguards: Safeguards = Safeguards()
    ):
        fill = safeguards.fill_action
        if fill is not None and len(fill) != action_dim:
            raise ValueError(
                f"the fill action {fill} has {len(fill)} entries but the planner plans "
                f"{action_dim}-dimensional actions"
            )
        self.schedule = as_schedule(horizon)
        self.knots, self.action_dim = self.schedule.knots, action_dim
        self.safeguards = safeguards
        self._fill = None if fill is None else np.asarray(fill, dtype=np.float64)
        self._safe = None if fill is None else np.tile(self._fill, (self.knots, 1))
        self.reset()

    def reset(self) -> None:
        """Forget the previous plan (a new episode)."""
        self.plan: np.ndarray | None = None

    def commit(self, plan: np.ndarray) -> np.ndarray:
        """Remember ``plan (K, A)`` as the one being executed from now; returns it."""
        self.plan = np.asarray(plan, dtype=np.float64)
        return self.plan

    def shift(self, plan: np.ndarray, k: int) -> np.ndarray:
        """``plan (..., K, A)`` moved k env steps earlier along time; the tail is the fill
        action (:meth:`planner.knots.KnotSchedule.shift`)."""
        return self.schedule.shift(plan, k, self._fill)

    def previous(self, k: int) -> np.ndarray | None:
        """The previous plan shifted k steps to now, or None before the first plan."""
        return None if self.plan is None else self.shift(self.plan, k)

    def count(self) -> int:
        """How many candidates :meth:`candidates` returns now (known before a search)."""
        keep = self.safeguards.keep_previous_plan and self.plan is not None
        return int(keep) + int(self.safeguards.safe_plan and self._safe is not None)

    def candidates(self, k: int) -> np.ndarray:
        """The extra candidates to score this step, ``(count(), K, A)``: the previous plan
        shifted k steps (if kept and there is one), then the safe plan (if on)."""
        rows = []
        if self.safeguards.keep_previous_plan and self.plan is not None:
            rows.append(self.previous(k))
        if self.safeguards.safe_plan and self._safe is not None:
            rows.append(self._safe)
        return np.stack(rows) if rows else np.zeros((0, self.knots, self.action_dim))

    def fallback(self, k: int, state: object) -> np.ndarray:
        """Every reward was invalid: commit and return the previous plan shifted k steps.

        Raises:
            RuntimeError: on the first step, when there is no previous plan.
        """
        if self.plan is None:
            raise RuntimeError(
                "every candidate action trajectory got a non-finite reward on the first "
                "planning step, so there is no previous plan to fall back on. Check that the "
                "objective returns finite rewards for actions in [-1, 1] from this state "
                f"(state: {np.asarray(state)!r:.200})."
            )
        return self.commit(self.previous(k))
