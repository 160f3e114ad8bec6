"""Random shooting: N*T uniform action sequences per step, the best one's first action executed."""

from __future__ import annotations

from typing import Any

import numpy as np

from planner.knots import KnotSchedule, as_schedule, over_knots
from planner.objective import Objective, bind_state, score_candidates, top_indices
from planner.planning import Budget, PhaseTimer, PlanResult, commit_best
from planner.safeguards import PlanMemory, Safeguards


class RandomShootingPlanner:
    """N*T uniform random action sequences in one batch; execute the best one's first action.

    ``horizon`` is H env steps, or the :class:`~planner.knots.KnotSchedule` of the K knots it
    samples uniformly.
    """

    def __init__(
        self,
        objective: Objective,
        horizon: int | KnotSchedule,
        action_dim: int,
        population: int = 64,
        iterations: int = 4,
        seed: int | None = 0,
        record: bool = False,
        safeguards: Safeguards = Safeguards(),
    ) -> None:
        schedule = as_schedule(horizon)
        self.objective = over_knots(objective, schedule)
        self.budget = Budget.of(schedule, action_dim, population, iterations)
        self.shape = (population * iterations, schedule.knots, action_dim)
        self.num_shown = max(1, population // 10)
        self.record = record
        self.rng = np.random.default_rng(seed)
        self.memory = PlanMemory(schedule, action_dim, safeguards)
        if self.shape[0] <= safeguards.max_candidates:
            raise ValueError(
                f"random shooting needs more than {safeguards.max_candidates} candidates per "
                f"step (the safeguards' own), got N*T = {self.shape[0]}"
            )

    def reset(self) -> None:
        """New episode: forget the previous plan."""
        self.memory.reset()

    def plan(self, state: Any, cond: Any = None) -> PlanResult:
        """Score N*T candidates from ``state`` (uniform samples, the last rows replaced by the
        safeguards' candidates) and return the best's first action."""
        timer = PhaseTimer()
        candidates = self.rng.uniform(-1.0, 1.0, self.shape)
        extras = self.memory.candidates(1)
        candidates[len(candidates) - len(extras) :] = extras
        tic = timer.started
        rewards = score_candidates(bind_state(self.objective, state), candidates)
        timer.add("reward", tic)
        recorded = {}
        if self.record:
            shown = top_indices(rewards, self.num_shown)
            recorded = {
                "candidates": candidates,
                "candidate_rewards": rewards,
                "elite_indices": shown,
            }
        return commit_best(
            self.memory, candidates, rewards, state, 1, 1, len(candidates), timer, **recorded
        )
