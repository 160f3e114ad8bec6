"""What every planner is: the :class:`Planner` protocol, its :class:`Budget`, its
:class:`PlanResult`, and the tail every planning call ends with (:func:`commit_best`).

Diffusion Elites (:class:`planner.mpc.RecedingHorizonPlanner`) and the action-space baselines
(CEM, iCEM, MPPI, random shooting in ``policies/``) differ only in how they search. They share
the budget (N x T reward evaluations per control step over H steps), the safeguards
(:mod:`planner.safeguards`), and the end of a control step: execute the best scored option, or,
when every reward was invalid, the previous plan shifted; both written into a PlanResult the
same way, with the time spent per phase.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from planner.knots import DEFAULT_INTERPOLATION, KnotSchedule
from planner.objective import top_indices
from planner.safeguards import PlanMemory
from planner.validation import check_count


@dataclass(frozen=True)
class Budget:
    """What every planner gets per control step: N candidates x T iterations over horizon H,
    each plan K knots interpolated alike (:mod:`planner.knots`).

    A planner spends at most N * T reward evaluations per control step (its safeguards'
    candidates and any re-scored plan included), each a rollout of H steps of A actions,
    whatever K: N * T * H env steps per control step.
    """

    horizon: int
    action_dim: int
    population: int = 64
    iterations: int = 4
    knots: int | None = None
    """K knots per plan (None: H, a knot per env step)."""
    interpolation: str = DEFAULT_INTERPOLATION
    """How K knots become H actions, one of :data:`planner.knots.INTERPOLATIONS`."""

    def __post_init__(self) -> None:
        for name in ("horizon", "action_dim", "population", "iterations"):
            check_count(f"Budget.{name}", getattr(self, name))
        object.__setattr__(self, "knots", self.schedule.knots)  # checked there; frozen

    @property
    def schedule(self) -> KnotSchedule:
        """How every planner at this budget turns its K knots into H actions."""
        return KnotSchedule(self.horizon, self.knots, self.interpolation)

    @property
    def evaluations(self) -> int:
        """N * T: the most reward evaluations a control step may spend."""
        return self.population * self.iterations

    @property
    def env_steps(self) -> int:
        """N * T * H: env steps simulated per control step at the full budget."""
        return self.evaluations * self.horizon

    @classmethod
    def of(cls, schedule: KnotSchedule, action_dim: int, population: int, iterations: int):
        """The budget of a planner searching ``schedule``'s knots, N x T per control step."""
        return cls(
            schedule.horizon, action_dim, population, iterations, schedule.knots,
            schedule.interpolation,
        )  # fmt: skip


@dataclass(frozen=True)
class PlanResult:
    """One control step's decision.

    Attributes:
        action: (A,) normalised action to execute now.
        plan: (H, A) the chosen plan's actions (the executed action is ``plan[0]`` when just
            replanned).
        predicted_reward: the objective's reward of ``plan`` from the planning state (NaN on a
            step that reused a cached plan or fell back).
        iterations: search iterations run (0 when a cached plan was reused or the step fell back).
        reward_evaluations: candidates scored this step.
        timing: seconds spent in ``decode``, ``reward`` and ``other`` (sampling, refits, copies).
        fallback: True when every candidate was invalid and the previous plan was executed.
        candidates: (N, H, A) last scored population, only with ``record=True``.
        candidate_rewards: (N,) the objective's rewards of ``candidates``, as the planner saw
            them, only with ``record=True``.
        elite_indices: (E,) rows of ``candidates`` that were elites, only with ``record=True``.
        knots: (K, A) the chosen plan as the planner searched it (``plan`` itself when K = H).
    """

    action: np.ndarray
    plan: np.ndarray
    predicted_reward: float
    iterations: int
    reward_evaluations: int
    timing: dict[str, float]
    fallback: bool = False
    candidates: np.ndarray | None = None
    candidate_rewards: np.ndarray | None = None
    elite_indices: np.ndarray | None = None
    knots: np.ndarray | None = None


class Planner(Protocol):
    """A receding-horizon planner: one decision per control step from the simulator's state.

    Implemented by :class:`planner.mpc.RecedingHorizonPlanner` (Diffusion Elites and CEM),
    ``policies.icem.ICEMPlanner``, ``policies.mppi.MPPIPlanner`` and
    ``policies.random_shooting.RandomShootingPlanner``; ``policies.planners.build_planner``
    builds any of them by name at one budget.
    """

    budget: Budget
    """N x T evaluations over H steps per control step."""

    def plan(self, state: Any, cond: Any = None) -> PlanResult:
        """The action to execute from ``state`` (``cond``: the prior's conditioning, if any)."""
        ...

    def reset(self) -> None:
        """Forget the previous plan and warm start (a new episode)."""
        ...


@dataclass
class PhaseTimer:
    """Wall time of one planning call per phase: ``decode``, ``reward`` and, at the end,
    ``other`` (everything else since ``started``)."""

    started: float = field(default_factory=time.perf_counter)
    seconds: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "reward": 0.0})

    def add(self, phase: str, tic: float) -> None:
        """Charge the time since ``tic`` to ``phase``."""
        self.seconds[phase] += time.perf_counter() - tic

    def finish(self) -> dict[str, float]:
        """The phases, with ``other`` = the call's time not charged to a phase."""
        elapsed = time.perf_counter() - self.started
        other = elapsed - self.seconds["decode"] - self.seconds["reward"]
        return {**self.seconds, "other": other}


def commit_best(
    memory: PlanMemory,
    options: Sequence[np.ndarray] | np.ndarray,
    rewards: Sequence[float] | np.ndarray,
    state: Any,
    steps_since_plan: int,
    iterations: int,
    evaluations: int,
    timer: PhaseTimer,
    candidates: np.ndarray | None = None,
    candidate_rewards: np.ndarray | None = None,
    elite_indices: np.ndarray | None = None,
) -> PlanResult:
    """End a control step: execute the best of ``options (M, K, A)`` by ``rewards (M,)``.

    The best option with a finite reward becomes the plan in ``memory`` (its fill rule applied).
    When no reward is finite the step falls back: ``memory``'s previous plan, shifted by
    ``steps_since_plan`` (or its safe plan), is executed and the result says ``fallback``.

    Args:
        iterations: search iterations that learned something this step.
        evaluations: reward evaluations spent this step (all of them, options included).
        timer: the call's timer; the result's ``timing`` is :meth:`PhaseTimer.finish`.
        candidates, candidate_rewards, elite_indices: the last population (knots), its rewards
            and its elites, for recording.

    The result's plan and candidates are actions ``(H, A)``, interpolated from the knots.
    """
    best = top_indices(np.asarray(rewards, dtype=np.float64), 1)
    if len(best) == 0:
        plan = memory.fallback(steps_since_plan, state)
        predicted, iterations, fallback = math.nan, 0, True
        candidates = candidate_rewards = elite_indices = None
    else:
        plan = memory.commit(options[best[0]])
        predicted, fallback = float(rewards[best[0]]), False
    actions = memory.schedule.actions
    dense = actions(plan)
    return PlanResult(
        action=dense[0].copy(),
        plan=dense,
        predicted_reward=predicted,
        iterations=iterations,
        reward_evaluations=evaluations,
        timing=timer.finish(),
        fallback=fallback,
        candidates=None if candidates is None else actions(candidates),
        candidate_rewards=candidate_rewards,
        elite_indices=elite_indices,
        knots=plan,
    )
