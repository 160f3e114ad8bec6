"""Random shooting: N*T uniform action sequences per step, the best one's first action executed."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from planner.mpc import PlanResult
from planner.objective import Objective, score_candidates, top_indices


class RandomShootingPlanner:
    """N*T uniform random action sequences in one batch; execute the best one's first action."""

    def __init__(
        self,
        objective: Objective,
        horizon: int,
        action_dim: int,
        population: int = 64,
        iterations: int = 4,
        seed: int | None = 0,
        record: bool = False,
    ) -> None:
        self.objective = objective
        self.shape = (population * iterations, horizon, action_dim)
        self.num_shown = max(1, population // 10)
        self.record = record
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Random shooting keeps no state between steps."""

    def plan(self, state: Any, cond: Any = None) -> PlanResult:
        """Score N*T uniform samples from ``state`` and return the best's first action."""
        started = time.perf_counter()
        candidates = self.rng.uniform(-1.0, 1.0, self.shape)
        rewards = score_candidates(self.objective, state, candidates)
        reward_seconds = time.perf_counter() - started
        best_rows = top_indices(rewards, self.num_shown)
        if len(best_rows) == 0:
            raise RuntimeError("random shooting: every candidate got a non-finite reward")
        best = int(best_rows[0])
        total = time.perf_counter() - started
        return PlanResult(
            action=candidates[best, 0].copy(),
            plan=candidates[best],
            predicted_reward=float(rewards[best]),
            iterations=1,
            reward_evaluations=self.shape[0],
            timing={"decode": 0.0, "reward": reward_seconds, "other": total - reward_seconds},
            candidates=candidates if self.record else None,
            elite_indices=best_rows if self.record else None,
        )
