"""Planners in raw action space on the same Objective as Diffusion Elites.

Every planner here has the interface of :class:`planner.mpc.RecedingHorizonPlanner`:
``reset()`` and ``plan(state, cond=None) -> PlanResult``, so a comparison is one flag. Budgets are
stated as population N and iterations T, and each spends N*T reward evaluations per step (plus
one for the executed plan where the method scores it), as the DE planner does.

- action-space CEM: the Diffusion Elites optimizer with an identity decoder (no prior);
- iCEM (Pinneri et al., 2020): coloured-noise CEM with elite carry-over and shifted elites;
- random shooting: N*T uniform samples, best first action;
- MPPI: the pytorch_mppi package's implementation, scored by our batched objective.

and :func:`load_sb3_agent`, which loads a trained stable-baselines3 agent to compare against.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from planner.mpc import (
    PlannerConfig,
    PlanResult,
    RecedingHorizonPlanner,
    score_candidates,
    top_indices,
)
from planner.objective import Objective


class ActionSpaceDecoder:
    """Identity 'prior': the latent is the action trajectory, clipped to [-1, 1].

    With it, :class:`RecedingHorizonPlanner` is plain CEM in action space.
    """

    def __init__(self, horizon: int, action_dim: int) -> None:
        self.latent_shape = (horizon, action_dim)

    def decode(self, latents: torch.Tensor, steps: int = 1, cond: Any = None) -> torch.Tensor:
        """Latents (N, H, A) -> actions (N, H, A) clipped to [-1, 1]."""
        return latents.clamp(-1.0, 1.0)

    def encode(self, trajectories: torch.Tensor, steps: int = 1, cond: Any = None) -> torch.Tensor:
        """Actions (N, H, A) -> the same tensor (the inverse of the identity)."""
        return trajectories


def make_cem(
    objective: Objective,
    horizon: int,
    action_dim: int,
    config: PlannerConfig = PlannerConfig(init_std=0.5),
    seed: int | None = 0,
) -> RecedingHorizonPlanner:
    """Action-space CEM: the Diffusion Elites loop over actions (N, H, A) instead of latents."""
    return RecedingHorizonPlanner(ActionSpaceDecoder(horizon, action_dim), objective, config, seed)


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
        if self.population < 2 or self.iterations < 1:
            raise ValueError("ICEMConfig needs population >= 2 and iterations >= 1")
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
    """Improved CEM (Pinneri et al., 2020) in normalised action space, executing the best sample."""

    def __init__(
        self,
        objective: Objective,
        horizon: int,
        action_dim: int,
        config: ICEMConfig = ICEMConfig(),
        seed: int | None = 0,
        record: bool = False,
    ) -> None:
        self.objective = objective
        self.horizon, self.action_dim = horizon, action_dim
        self.config = config
        self.record = record
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        """New episode: zero mean, no carried elites."""
        self._mean = np.zeros((self.horizon, self.action_dim))
        self._kept: np.ndarray | None = None

    def plan(self, state: Any, cond: Any = None) -> PlanResult:
        """Search N*T coloured-noise sequences from ``state``; return the best's first action."""
        started = time.perf_counter()
        config = self.config
        n_keep = int(config.keep_elites * config.num_elites)
        mean, std = self._mean, np.full_like(self._mean, config.init_std)
        best_actions, best_reward = None, -np.inf
        reward_seconds = 0.0
        for iteration in range(config.iterations):
            noise = colored_noise(config.noise_exponent, (config.population, *mean.shape), self.rng)
            candidates = np.clip(mean + std * noise, -1.0, 1.0)
            if self._kept is not None and n_keep:
                candidates[:n_keep] = self._kept[:n_keep]
            if iteration == config.iterations - 1:
                candidates[-1] = np.clip(mean, -1.0, 1.0)  # iCEM also scores the mean at the end
            tic = time.perf_counter()
            rewards = score_candidates(self.objective, state, candidates)
            reward_seconds += time.perf_counter() - tic
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
        if best_actions is None:
            raise RuntimeError(
                "iCEM: every candidate got a non-finite reward; check the objective for this state"
            )
        # Shift initialisation for the next control step: mean and kept elites move one step.
        self._mean = np.concatenate([mean[1:], np.zeros((1, self.action_dim))])
        self._kept = np.concatenate(
            [self._kept[:, 1:], self.rng.uniform(-1, 1, (len(self._kept), 1, self.action_dim))],
            axis=1,
        )
        total = time.perf_counter() - started
        return PlanResult(
            action=best_actions[0].copy(),
            plan=best_actions,
            predicted_reward=best_reward,
            iterations=config.iterations,
            reward_evaluations=config.population * config.iterations,
            timing={"decode": 0.0, "reward": reward_seconds, "other": total - reward_seconds},
            candidates=candidates if self.record else None,
            elite_indices=order if self.record else None,
        )


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
        if self.population < 2 or self.iterations < 1:
            raise ValueError("MPPIConfig needs population >= 2 and iterations >= 1")
        if not (self.noise_std > 0 and self.temperature > 0):
            raise ValueError("MPPIConfig needs noise_std > 0 and temperature > 0")


class MPPIPlanner:
    """MPPI from the pytorch_mppi package, scoring whole action sequences with our objective.

    pytorch_mppi rolls out a per-step ``dynamics`` and ``running_cost``; our objectives score
    whole sequences (N, H, A) in one batched call, so its rollout-cost hook is replaced by one
    objective call. Its global-RNG sampling is isolated: each planner keeps its own RNG state.
    """

    def __init__(
        self,
        objective: Objective,
        horizon: int,
        action_dim: int,
        config: MPPIConfig = MPPIConfig(),
        seed: int | None = 0,
        record: bool = False,
    ) -> None:
        from pytorch_mppi import MPPI

        planner = self

        class _SequenceMPPI(MPPI):
            def _compute_rollout_costs(self, perturbed_actions):
                return planner._costs(perturbed_actions), None, None

        def unused(*_):
            raise AssertionError("per-step dynamics are not used: the objective scores sequences")

        self.objective = objective
        self.config = config
        self.record = record
        self.horizon, self.action_dim = horizon, action_dim
        self._last: tuple[np.ndarray, np.ndarray] | None = None
        sigma = torch.eye(action_dim, dtype=torch.float64) * config.noise_std**2
        self._mppi = _SequenceMPPI(
            unused,
            unused,
            nx=1,
            noise_sigma=sigma,
            num_samples=config.population,
            horizon=horizon,
            lambda_=config.temperature,
            u_min=-torch.ones(action_dim, dtype=torch.float64),
            u_max=torch.ones(action_dim, dtype=torch.float64),
            U_init=torch.zeros(horizon, action_dim, dtype=torch.float64),
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0 if seed is None else seed)
            self._rng_state = torch.get_rng_state()
        self._state: Any = None
        self._reward_seconds = 0.0
        self._best: tuple[float, np.ndarray | None] = (-np.inf, None)

    def reset(self) -> None:
        """New episode: zero nominal action sequence."""
        self._mppi.U = torch.zeros(self.horizon, self.action_dim, dtype=torch.float64)

    def _costs(self, actions: torch.Tensor) -> torch.Tensor:
        tic = time.perf_counter()
        candidates = actions.numpy()
        rewards = score_candidates(self.objective, self._state, candidates)
        self._reward_seconds += time.perf_counter() - tic
        finite = np.isfinite(rewards)
        if not finite.any():
            raise RuntimeError("MPPI: every candidate got a non-finite reward")
        best = int(np.argmax(np.where(finite, rewards, -np.inf)))
        if rewards[best] > self._best[0]:
            self._best = (float(rewards[best]), candidates[best].copy())
        self._last = (candidates.copy(), rewards) if self.record else None
        # Invalid candidates get the worst finite reward minus a margin, so they weigh ~0.
        worst = rewards[finite].min()
        rewards = np.where(finite, rewards, worst - 10 * (rewards[finite].std() + 1.0))
        standardised = (rewards - rewards.mean()) / (rewards.std() + 1e-8)
        return torch.as_tensor(-standardised)

    def plan(self, state: Any, cond: Any = None) -> PlanResult:
        """Run T MPPI updates of the nominal sequence from ``state``; execute its first action."""
        started = time.perf_counter()
        self._state, self._reward_seconds, self._best = state, 0.0, (-np.inf, None)
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            for iteration in range(self.config.iterations):
                self._mppi.command(np.zeros(1), shift_nominal_trajectory=iteration == 0)
            self._rng_state = torch.get_rng_state()
        plan = self._mppi.U.clamp(-1.0, 1.0).numpy().copy()
        total = time.perf_counter() - started
        return PlanResult(
            action=plan[0].copy(),
            plan=plan,
            predicted_reward=self._best[0],
            iterations=self.config.iterations,
            reward_evaluations=self.config.population * self.config.iterations,
            timing={
                "decode": 0.0,
                "reward": self._reward_seconds,
                "other": total - self._reward_seconds,
            },
            candidates=self._last[0] if self._last else None,
            elite_indices=top_indices(self._last[1], self.config.population // 10 or 1)
            if self._last
            else None,
        )


SB3_ALGORITHMS = ("sac", "ppo", "td3", "a2c", "ddpg")


def load_sb3_agent(path: str | Path, algorithm: str | None = None, device: str = "cpu") -> Any:
    """Load a stable-baselines3 agent saved as a zip; it already has SB3's ``predict`` contract.

    Args:
        path: the ``.zip`` written by ``model.save`` (experiments/train_agent.py).
        algorithm: one of ``SB3_ALGORITHMS``; default: the file name's last ``-`` part
            (``reacher-sac.zip`` -> ``sac``).
    """
    import stable_baselines3

    path = Path(path)
    algorithm = (algorithm or path.stem.rsplit("-", 1)[-1]).lower()
    if algorithm not in SB3_ALGORITHMS:
        raise ValueError(
            f"cannot tell the SB3 algorithm of {path.name}: pass algorithm= one of {SB3_ALGORITHMS}"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"no SB3 agent at {path}: train one with experiments/train_agent.py --env ENV"
        )
    return getattr(stable_baselines3, algorithm.upper()).load(path, device=device)
