"""MPPI baseline: the pytorch_mppi package driven by our batched sequence objective."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from planner.knots import KnotSchedule, as_schedule, over_knots
from planner.objective import Objective, bind_state, score_candidates, top_indices
from planner.planning import Budget, PhaseTimer, PlanResult, commit_best
from planner.safeguards import PlanMemory, Safeguards
from planner.validation import check_count


def _unchanged_state(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """MPPI's per-step dynamics: our objective simulates whole sequences, so nothing moves here."""
    return state


def _zero_cost(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """MPPI's per-step running cost: zero, the sequence cost comes from the terminal hook."""
    return torch.zeros(state.shape[0], dtype=state.dtype)


@dataclass(frozen=True)
class MPPIConfig:
    """Settings of :class:`MPPIPlanner`.

    Attributes:
        population, iterations: K samples per MPPI update and T updates per control step.
        noise_std: std of the action perturbations (normalised action units).
        temperature: lambda, applied to rewards standardised within each batch (so its value
            does not depend on the scale of a task's rewards).

    No single setting suited every task in our measurements (same seeds, equal budgets):
    (noise_std, temperature) = (0.5, 0.1), the default, reached 100% success on unicycle-goal
    and 353 on half-cheetah (200 steps) but only -25.0 on reacher; (0.2, 0.5) reached -9.6 on
    reacher but 12-40% success on unicycle-goal and 11 on half-cheetah. Tune per task.
    """

    population: int = 64
    iterations: int = 4
    noise_std: float = 0.5
    temperature: float = 0.1

    def __post_init__(self) -> None:
        check_count("MPPIConfig.population", self.population, 2)
        check_count("MPPIConfig.iterations", self.iterations)
        if not (self.noise_std > 0 and self.temperature > 0):
            raise ValueError("MPPIConfig needs noise_std > 0 and temperature > 0")


class MPPIPlanner:
    """MPPI from the pytorch_mppi package, scoring whole action sequences with our objective.

    pytorch_mppi rolls out a per-step ``dynamics`` and ``running_cost``; our objectives score
    whole sequences (N, H, A) in one batched call. So the per-step hooks are a do-nothing state
    and a zero cost, and the whole cost comes from its public ``terminal_state_cost(states,
    actions)`` hook, which receives every sampled sequence: one objective call per MPPI update.
    Its global-RNG sampling is isolated: each planner keeps its own RNG state. ``horizon`` is H
    env steps, or the :class:`~planner.knots.KnotSchedule` of the K knots it samples (MPPI's
    own horizon is then K).
    """

    def __init__(
        self,
        objective: Objective,
        horizon: int | KnotSchedule,
        action_dim: int,
        config: MPPIConfig = MPPIConfig(),
        seed: int | None = 0,
        record: bool = False,
        safeguards: Safeguards = Safeguards(),
    ) -> None:
        from pytorch_mppi import MPPI

        self.schedule = as_schedule(horizon)
        self.objective = over_knots(objective, self.schedule)
        self.config = config
        self.budget = Budget.of(self.schedule, action_dim, config.population, config.iterations)
        self.record = record
        self.knots, self.action_dim = self.schedule.knots, action_dim
        self.memory = PlanMemory(self.schedule, action_dim, safeguards)
        # The last update samples fewer sequences: the executed nominal sequence is scored too,
        # with the safeguards' candidates, inside the same N*T budget.
        reserved = 1 + safeguards.max_candidates
        if config.population <= reserved:
            raise ValueError(
                f"MPPIConfig.population={config.population} leaves no sample for the last "
                f"update ({reserved} evaluations go to the executed plan and the safeguards' "
                f"candidates); use a population > {reserved}"
            )
        self._last: tuple[np.ndarray, np.ndarray] | None = None
        sigma = torch.eye(action_dim, dtype=torch.float64) * config.noise_std**2
        self._mppi = MPPI(
            _unchanged_state,
            _zero_cost,
            nx=1,
            noise_sigma=sigma,
            num_samples=config.population,
            horizon=self.knots,
            lambda_=config.temperature,
            u_min=-torch.ones(action_dim, dtype=torch.float64),
            u_max=torch.ones(action_dim, dtype=torch.float64),
            U_init=torch.zeros(self.knots, action_dim, dtype=torch.float64),
            terminal_state_cost=self._sequence_costs,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0 if seed is None else seed)
            self._rng_state = torch.get_rng_state()
        self._score_at_state: Any = None
        self._timer = PhaseTimer()
        self._evaluations = 0

    def reset(self) -> None:
        """New episode: zero nominal action sequence, no previous plan."""
        self._mppi.U = torch.zeros(self.knots, self.action_dim, dtype=torch.float64)
        self.memory.reset()

    def _score(self, candidates: np.ndarray) -> np.ndarray:
        tic = time.perf_counter()
        rewards = score_candidates(self._score_at_state, candidates)
        self._timer.add("reward", tic)
        self._evaluations += len(candidates)
        return rewards

    def _sequence_costs(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Costs ``(N,)`` of the sampled knots ``actions (1, N, K, A)`` (M = 1 rollout)."""
        candidates = actions[0].numpy()
        rewards = self._score(candidates)
        self._last = (candidates.copy(), rewards) if self.record else None
        finite = np.isfinite(rewards)
        if not finite.any():  # no information: equal weights; the step may fall back below
            return torch.zeros(len(rewards), dtype=torch.float64)
        # Invalid candidates get the worst finite reward minus a margin, so they weigh ~0.
        worst = rewards[finite].min()
        rewards = np.where(finite, rewards, worst - 10 * (rewards[finite].std() + 1.0))
        standardised = (rewards - rewards.mean()) / (rewards.std() + 1e-8)
        return torch.as_tensor(-standardised)

    def plan(self, state: Any, cond: Any = None) -> PlanResult:
        """Run T MPPI updates of the nominal sequence from ``state``; execute the best of the
        updated nominal sequence and the safeguards' candidates, all scored in the budget."""
        self._timer = PhaseTimer()
        self._score_at_state = bind_state(self.objective, state)
        self._evaluations = 0
        extras = self.memory.candidates(1)
        population = self.config.population
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            for iteration in range(self.config.iterations):
                last = iteration == self.config.iterations - 1
                self._mppi.K = population - 1 - len(extras) if last else population
                self._mppi.command(np.zeros(1), shift_nominal_trajectory=False)
            self._mppi.K = population
            self._rng_state = torch.get_rng_state()
        options = np.concatenate([self._mppi.U.clamp(-1.0, 1.0).numpy()[None], extras])
        rewards = self._score(options)
        recorded = {}
        if self._last:
            sampled, sampled_rewards = self._last
            shown = top_indices(sampled_rewards, self.config.population // 10 or 1)
            recorded = {
                "candidates": sampled, "candidate_rewards": sampled_rewards, "elite_indices": shown
            }  # fmt: skip
        result = commit_best(
            self.memory, options, rewards, state, 1, self.config.iterations, self._evaluations,
            self._timer, **recorded,
        )  # fmt: skip
        # The next step's nominal sequence: the executed plan, shifted like every plan.
        self._mppi.U = torch.as_tensor(self.memory.previous(1))
        return result
