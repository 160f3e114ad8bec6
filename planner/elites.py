"""Diffusion Elites: a Cross-Entropy Method over diffusion latents with an ask/tell interface.

The optimizer knows nothing of diffusion: it samples latents ``z`` shaped like the trajectory they
decode to (``latent_shape``, e.g. ``(H, A)``) and refits its search distribution to the E best of
the N latents it is told about. Symbols (ARCHITECTURE.md): N population, E elites, T iterations,
H horizon (axis 0 of ``latent_shape``), d = prod(latent_shape) flat latent size.

Usage (the convention of cmaes / evotorch / nevergrad)::

    elites = DiffusionElites((H, A), ElitesConfig(population=64), seed=0)
    for _ in range(T):
        z = elites.ask()                      # (N, H, A)
        elites.tell(z, reward(decode(z)))     # rewards (N,), maximised
    elites.best.latent                        # (H, A), best seen since the last reset/shift

The search distribution (``ElitesConfig.distribution``: diagonal, full covariance or mixture)
lives in :mod:`planner.distributions`, the settings in :mod:`planner.elites_config`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from planner.distributions import make_distribution
from planner.elites_config import ElitesConfig
from planner.validation import check_count


@dataclass(frozen=True)
class Best:
    """Best candidate seen since the last reset/shift: ``argmax`` over rows i and iterations t."""

    reward: float
    latent: Tensor  # latent_shape


@dataclass(frozen=True)
class OptimizeResult:
    """Outcome of :meth:`DiffusionElites.optimize`.

    Attributes:
        sample: ``decode(best.latent[None])[0]``, the best decoded sample.
        reward: its reward (as scored during the search).
        latent: its latent, ``latent_shape``.
        history: one dict per iteration with ``iteration``, ``best_reward`` (running best),
            ``elite_mean_reward``, ``mean_reward`` (over finite rewards), ``num_invalid`` and
            ``mean_std`` (mean marginal std after the refit).
    """

    sample: Any
    reward: float
    latent: Tensor
    history: list[dict]


class DiffusionElites:
    """Cross-Entropy Method over latents of shape ``latent_shape`` (e.g. ``(H, A)``).

    Args:
        latent_shape: shape of one latent; axis 0 is time (H) for :meth:`shift`.
        config: :class:`ElitesConfig`.
        seed: seed of the ``torch.Generator`` behind every sample (same seed, same latents bit
            for bit on the same machine); ``None`` draws a fresh seed.
        device: where latents and the distribution live.
        dtype: floating dtype of the latents.
    """

    def __init__(
        self,
        latent_shape: tuple[int, ...],
        config: ElitesConfig = ElitesConfig(),  # frozen, so a shared default is safe
        seed: int | None = 0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        latent_shape = tuple(latent_shape)
        if not latent_shape or not all(isinstance(s, int) and s >= 1 for s in latent_shape):
            raise ValueError(
                f"latent_shape must be a non-empty tuple of positive ints, e.g. (H, A); "
                f"got {latent_shape!r}"
            )
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating dtype such as torch.float32, got {dtype}")
        self.latent_shape = latent_shape
        self.config = config
        self.device = torch.device(device)
        self.dtype = dtype
        self.generator = torch.Generator(device=self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self._dist = make_distribution(config, self.generator)
        self.reset()

    @property
    def best(self) -> Best | None:
        """Best (reward, latent) told since the last reset/shift, or None before any tell."""
        return self._best

    @property
    def mean(self) -> Tensor:
        """Mean of the search distribution, ``latent_shape`` (mixture: mean of its components)."""
        return self._dist.mean.reshape(self.latent_shape).clone()

    @property
    def std(self) -> Tensor:
        """Marginal std of the search distribution, ``latent_shape``."""
        return self._dist.marginal_std.reshape(self.latent_shape).clone()

    def reset(self, mean: Tensor | None = None) -> None:
        """Back to N(init_mean, init_std^2 I), centred at ``mean (latent_shape)`` if given.

        Clears the best and the carried-over elites.
        """
        if mean is None:
            flat = torch.full(
                (math.prod(self.latent_shape),), self.config.init_mean, device=self.device,
                dtype=self.dtype,
            )  # fmt: skip
        elif not isinstance(mean, Tensor) or mean.shape != self.latent_shape:
            got = tuple(mean.shape) if isinstance(mean, Tensor) else type(mean).__name__
            raise ValueError(
                f"reset: expected a mean tensor of shape {self.latent_shape}, got {got}; "
                "pass one latent (no batch axis), e.g. elites.best.latent"
            )
        else:
            flat = mean.detach().to(device=self.device, dtype=self.dtype).flatten()
        self._dist.reset(flat)
        self._forget()

    def shift(self, k: int = 1, std_scale: float | None = None) -> None:
        """Warm start for receding-horizon planning: move the search k time steps earlier.

        The mean (every component mean for the mixture) becomes ``mean[k:]`` followed by k steps
        of ``init_mean``. Std: with ``std_scale=None`` everything returns to ``init_std``
        (covariance to init_std^2 I; TD-MPC2 style); otherwise the std is shifted the same way,
        multiplied by ``std_scale`` and clamped to ``[min_std, init_std]``, its tail = init_std
        (full: the covariance block of the kept steps, times std_scale^2, eigenvalues clamped to
        [min_std^2, init_std^2]). ``k >= H`` is a full :meth:`reset`. Clears the best and the
        carried-over elites: their rewards were scored from another state.
        """
        if not isinstance(k, int) or k < 0:
            raise ValueError(f"shift: k must be an int >= 0 (time steps), got {k!r}")
        if std_scale is not None and not std_scale > 0:
            raise ValueError(
                f"shift: std_scale must be None (reset the std) or > 0, got {std_scale!r}"
            )
        horizon = self.latent_shape[0]
        if k >= horizon:
            self.reset()
            return
        self._dist.shift(k * (math.prod(self.latent_shape) // horizon), std_scale)
        self._forget()

    def prior_samples(self, n: int) -> Tensor:
        """``(n, *latent_shape)`` draws from the prior N(init_mean, init_std^2 I)."""
        noise = torch.randn(
            n, *self.latent_shape, generator=self.generator, device=self.device, dtype=self.dtype
        )
        return self.config.init_mean + self.config.init_std * noise

    def inject(self, latents: Tensor) -> None:
        """Make ``latents (M, *latent_shape)``, M <= N, the first rows of the next ``ask()``.

        They replace the carried-over elites of the last tell (warm starts call this after a
        reset/shift); the remaining N - M rows are fresh samples.
        """
        flat = self._check_latents(latents, "inject")
        if flat.shape[0] > self.config.population:
            raise ValueError(
                f"inject: got {flat.shape[0]} latents for a population of "
                f"{self.config.population}; pass at most N rows"
            )
        self._carryover = flat.clone()

    def ask(self) -> Tensor:
        """Latents to score next, ``(N, *latent_shape)``.

        The first rows are the latents passed to :meth:`inject` since the last reset/shift/tell,
        else the ``config.num_carryover`` best elites of the last tell (best first), when there
        are any; the remaining rows are fresh samples. With ``latent_bounds`` every
        row is clipped into them.
        """
        fresh = self._dist.sample(self.config.population - self._carryover.shape[0])
        flat = torch.cat([self._carryover, fresh])
        if self.config.latent_bounds is not None:
            flat = flat.clamp(*self.config.latent_bounds)
        return flat.reshape(self.config.population, *self.latent_shape)

    def tell(self, latents: Tensor, rewards: Tensor | np.ndarray) -> None:
        """Refit the search distribution to the E best of ``latents (M, *latent_shape)``.

        ``rewards (M,)`` (torch, numpy or sequence) are maximised; non-finite rewards are invalid
        and never elites. If fewer than E rewards are finite, only the finite ones are elites.
        Any batch may be told, not only the last ``ask()``.

        Raises:
            ValueError: wrong latent shape, rewards not ``(M,)``, or no finite reward.
        """
        self._refit(latents, rewards)

    def optimize(
        self,
        decode: Callable[[Tensor], Any],
        reward: Callable[[Any], Any],
        iterations: int,
    ) -> OptimizeResult:
        """Run T = ``iterations`` rounds of ask -> decode -> reward -> tell.

        Args:
            decode: latents ``(M, *latent_shape)`` -> M samples (anything indexable by row).
            reward: samples -> rewards ``(M,)``, maximised.
            iterations: T >= 1.

        Returns:
            :class:`OptimizeResult` with the best sample seen, ``decode(best.latent[None])[0]``.
        """
        check_count("optimize: iterations", iterations)
        history = []
        for iteration in range(iterations):
            latents = self.ask()
            scores, order, num_elites = self._refit(latents, reward(decode(latents)))
            valid = torch.isfinite(scores)
            history.append(
                {
                    "iteration": iteration,
                    "best_reward": self._best.reward,
                    "elite_mean_reward": float(scores[order[:num_elites]].mean()),
                    "mean_reward": float(scores[valid].mean()),
                    "num_invalid": scores.numel() - int(valid.sum()),
                    "mean_std": float(self._dist.marginal_std.mean()),
                }
            )
        best = self._best
        return OptimizeResult(
            sample=decode(best.latent[None])[0],
            reward=best.reward,
            latent=best.latent,
            history=history,
        )

    def _refit(self, latents: Tensor, rewards: Any) -> tuple[Tensor, Tensor, int]:
        """:meth:`tell`; returns the rewards as told (non-finite as -inf), their order (best
        first) and E, for :meth:`optimize`'s statistics (the planner's loop computes none)."""
        flat = self._check_latents(latents)
        scores = self._check_rewards(rewards, flat.shape[0])
        valid = torch.isfinite(scores)
        num_valid = int(valid.sum())
        if num_valid == 0:
            raise ValueError(
                f"tell: all {scores.numel()} rewards were invalid (non-finite), e.g. "
                f"{scores[:5].tolist()}; nothing to refit to. Check the reward function."
            )
        scores = torch.where(valid, scores, -math.inf)
        # Stable sort: ties go to the earlier row, so the refit does not depend on the backend.
        order = torch.sort(scores, descending=True, stable=True).indices
        ranked = flat[order[:num_valid]]
        num_elites = min(self.config.num_elites, num_valid)
        self._dist.fit(ranked, num_elites)
        self._carryover = ranked[: min(self.config.num_carryover, num_elites)].clone()
        top_reward = float(scores[order[0]])
        if self._best is None or top_reward > self._best.reward:
            self._best = Best(top_reward, ranked[0].clone().reshape(self.latent_shape))
        return scores, order, num_elites

    def _check_latents(self, latents: Any, caller: str = "tell") -> Tensor:
        """Flat ``(M, d)`` copy of ``latents (M, *latent_shape)``, or a ValueError/TypeError."""
        if not isinstance(latents, Tensor):
            raise TypeError(
                f"{caller}: latents must be a torch.Tensor, got {type(latents).__name__}"
            )
        if latents.shape[1:] != self.latent_shape or latents.ndim != len(self.latent_shape) + 1:
            raise ValueError(
                f"{caller}: expected latents of shape (M, *{self.latent_shape}), got "
                f"{tuple(latents.shape)}; pass a batch of latents like ask() returns"
            )
        if latents.shape[0] == 0:
            raise ValueError(f"{caller}: got an empty batch of latents; pass at least one row")
        flat = latents.detach().reshape(latents.shape[0], -1)
        return flat.to(device=self.device, dtype=self.dtype)

    def _check_rewards(self, rewards: Any, m: int) -> Tensor:
        """``rewards`` as a float64 ``(M,)`` tensor on this device, or a ValueError."""
        scores = rewards if isinstance(rewards, Tensor) else torch.as_tensor(np.asarray(rewards))
        if scores.ndim != 1 or scores.shape[0] != m:
            raise ValueError(
                f"tell: expected rewards of shape ({m},), one per latent, got "
                f"{tuple(scores.shape)}; flatten them or pass one reward per row of latents"
            )
        return scores.detach().to(device=self.device, dtype=torch.float64)

    def _forget(self) -> None:
        """Drop the best and the carried-over or injected rows (they belong to the previous
        problem)."""
        self._best = None
        self._carryover = torch.empty(
            0, math.prod(self.latent_shape), device=self.device, dtype=self.dtype
        )
