"""iCEM (Pinneri et al., 2020): coloured-noise CEM with elite carry-over, in normalised actions.

Our compact implementation: coloured noise, kept elites (carried to the next iteration and,
shifted, to the next control step), shifted mean and momentum; no population decay, so budgets
match the other planners exactly. iCEM's "add the mean" is applied at the last iteration only.
Like every planner here it applies the shared :mod:`planner.safeguards` inside its budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.knots import KnotSchedule, as_schedule, over_knots
from planner.objective import Objective, bind_state, score_candidates, top_indices
from planner.planning import Budget, PhaseTimer, PlanResult, commit_best
from planner.safeguards import PlanMemory, Safeguards
from planner.validation import check_count


def colored_noise(
    exponent: float, shape: tuple[int, int, int], generator: np.random.Generator
) -> np.ndarray:
    """Gaussian noise (N, H, A) with power spectral density ~ 1/f^exponent along time (axis 1).

    exponent 0 is white noise; 2 is the 'red' noise iCEM uses for smooth actions. Each
    sequence is normalised to unit variance per action dimension.
    """
    n, horizon, action_dim = shape
    frequencies = np.fft.rfftfreq(horizon)
    frequencies[0] = frequencies[1] if horizon > 1 else 1.0  # no infinite power at DC
    amplitude = frequencies ** (-exponent / 2.0)
    spectrum = generator.standard_normal((n, action_dim, len(frequencies))) + 1j * (
        generator.standard_normal((n, action_dim, len(frequencies)))
    )
    noise = np.fft.irfft(spectrum * amplitude, n=horizon, axis=-1)
    noise /= noise.std(axis=-1, keepdims=True) + 1e-12
    return noise.transpose(0, 2, 1)


@dataclass(frozen=True)
class ICEMConfig:
    """Settings of :class:`ICEMPlanner` (defaults follow the iCEM paper where they apply).

    Attributes:
        population, iterations, elite_fraction: N, T, rho as in CEM (no population decay, so
            budgets match the other planners exactly).
        noise_exponent: beta of the coloured noise (2 = smooth, 0 = white).
        init_std, min_std: std of the action distribution at each step's start / its floor.
        momentum: weight of the previous mean/std in each refit (alpha).
        keep_elites: fraction of elites carried into the next iteration and, shifted, the
            next control step.
    """

    population: int = 64
    iterations: int = 4
    elite_fraction: float = 0.1
    noise_exponent: float = 2.0
    init_std: float = 0.5
    min_std: float = 0.05
    momentum: float = 0.1
    keep_elites: float = 0.3

    def __post_init__(self) -> None:
        check_count("ICEMConfig.population", self.population, 2)
        check_count("ICEMConfig.iterations", self.iterations)
        for name in ("elite_fraction", "keep_elites", "momentum"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ICEMConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 < self.min_std <= self.init_std:
            raise ValueError("ICEMConfig needs 0 < min_std <= init_std")

    @property
    def num_elites(self) -> int:
        """E = max(1, ceil(rho * N))."""
        return max(1, math.ceil(self.elite_fraction * self.population))


class ICEMPlanner:
    """Improved CEM (Pinneri et al., 2020) in normalised action space, executing the best sample.

    ``horizon`` is H env steps, or the :class:`~planner.knots.KnotSchedule` of the K knots it
    searches (coloured noise along the knots).
    """

    def __init__(
        self,
        objective: Objective,
        horizon: int | KnotSchedule,
        action_dim: int,
        config: ICEMConfig = ICEMConfig(),
        seed: int | None = 0,
        record: bool = False,
        safeguards: Safeguards = Safeguards(),
    ) -> None:
        self.schedule = as_schedule(horizon)
        self.objective = over_knots(objective, self.schedule)
        self.knots, self.action_dim = self.schedule.knots, action_dim
        self.config = config
        self.budget = Budget.of(self.schedule, action_dim, config.population, config.iterations)
        self.record = record
        self.rng = np.random.default_rng(seed)
        self.memory = PlanMemory(self.schedule, action_dim, safeguards)
        self._num_kept = int(config.keep_elites * config.num_elites)
        # The last iteration's population also holds the mean and the safeguards' candidates.
        reserved = self._num_kept + 1 + safeguards.max_candidates
        if config.population <= reserved:
            raise ValueError(
                f"ICEMConfig.population={config.population} leaves no fresh sample in the last "
                f"iteration ({reserved} rows are kept elites, the mean and the safeguards' "
                f"candidates); use a population > {reserved}"
            )
        self.reset()

    def reset(self) -> None:
        """New episode: zero mean, no carried elites, no previous plan."""
        self._mean = np.zeros((self.knots, self.action_dim))
        self._kept: np.ndarray | None = None
        self.memory.reset()

    def plan(self, state: Any, cond: Any = None) -> PlanResult:
        """Search N*T coloured-noise sequences from ``state``; return the best's first action.

        The last iteration's population also scores the mean (iCEM's own rule) and the
        safeguards' candidates (previous plan, safe plan), so N*T is the whole budget.
        """
        timer = PhaseTimer()
        config = self.config
        extras = self.memory.candidates(1)
        score = bind_state(self.objective, state)
        mean, std = self._mean, np.full_like(self._mean, config.init_std)
        best_actions, best_reward = None, -np.inf
        evaluations = 0
        for iteration in range(config.iterations):
            noise = colored_noise(config.noise_exponent, (config.population, *mean.shape), self.rng)
            candidates = np.clip(mean + std * noise, -1.0, 1.0)
            if self._kept is not None and self._num_kept:
                candidates[: self._num_kept] = self._kept[: self._num_kept]
            if iteration == config.iterations - 1:
                candidates[len(candidates) - len(extras) - 1 : -1] = extras
                candidates[-1] = np.clip(mean, -1.0, 1.0)  # iCEM also scores the mean at the end
            tic = time.perf_counter()
            rewards = score_candidates(score, candidates)
            timer.add("reward", tic)
            evaluations += len(candidates)
            order = top_indices(rewards, config.num_elites)
            if len(order) == 0:
                continue
            elites = candidates[order]
            if rewards[order[0]] > best_reward:
                best_reward, best_actions = float(rewards[order[0]]), candidates[order[0]].copy()
            mean = config.momentum * mean + (1 - config.momentum) * elites.mean(axis=0)
            std = config.momentum * std + (1 - config.momentum) * elites.std(axis=0)
            std = np.maximum(std, config.min_std)
            self._kept = elites
        found = [] if best_actions is None else [best_actions]
        recorded = {}
        if self.record:
            recorded = {
                "candidates": candidates,
                "candidate_rewards": rewards,
                "elite_indices": order,
            }
        result = commit_best(
            self.memory, found, [best_reward] * len(found), state, 1, config.iterations,
            evaluations, timer, **recorded,
        )  # fmt: skip
        if not result.fallback:
            # Shift initialisation for the next control step: the mean moves one step and
            # restarts its tail at 0 (as CEM's does); the kept elites are plans, shifted like
            # every plan.
            self._mean = self.schedule.shift(mean, 1, np.zeros(self.action_dim))
            self._kept = self.memory.shift(self._kept, 1)
        return result
