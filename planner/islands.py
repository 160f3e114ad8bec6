"""Island populations: K Diffusion Elites searches that trade their best latents in a ring.

Each island k runs its own :class:`~planner.elites.DiffusionElites` (its own search
distribution, its generator seeded from ``(seed, k)``) on the same problem: latents are decoded
and scored by ``reward(decode(z))``, N per island per iteration, so K islands spend K * N * T
reward evaluations in T iterations. Migration, exactly:

- after every ``migration_interval``-th iteration (M, 2M, ... before the last), island k sends
  the ``migrants`` best (latent, reward) pairs of the batch it was just told to island
  (k + 1) mod K;
- the receiving island appends them, with their rewards (not scored again: the problem is
  the same), to the batch of its next tell, where they compete for its elites and its best.

The result is the best latent over all islands. Separate searches keep separate modes alive (a
path left of an obstacle on one island, right of it on another) where one population collapses
on whichever mode its first elites favoured; migration lets a better mode take over islands.

:func:`search_islands` runs the islands in this process, or with ``ray=True`` one Ray actor per
island (Ray imported only then); the same seeds give the same result either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from planner.elites import DiffusionElites, ElitesConfig
from planner.validation import check_count

Problem = tuple[Callable[[Tensor], Any], Callable[[Any], Any]]
"""``(decode, reward)``: latents ``(M, *latent_shape)`` -> samples -> rewards ``(M,)``."""


@dataclass(frozen=True)
class IslandConfig:
    """How many islands, and what they trade.

    Attributes:
        islands: K independent searches, each with the population of its ElitesConfig.
        migration_interval: M; iterations between migrations.
        migrants: best latents each island sends to the next in the ring per migration.
    """

    islands: int = 4
    migration_interval: int = 2
    migrants: int = 1

    def __post_init__(self) -> None:
        for name in ("islands", "migration_interval", "migrants"):
            check_count(f"IslandConfig.{name}", getattr(self, name))


@dataclass(frozen=True)
class Migrants:
    """Latents ``(m, *latent_shape)`` and their rewards ``(m,)`` sent to the next island."""

    latents: Tensor
    rewards: Tensor


@dataclass(frozen=True)
class IslandResult:
    """Outcome of :func:`search_islands`.

    Attributes:
        latent: the best latent over islands, ``latent_shape``; reward: its reward.
        island: which island found it.
        island_rewards: (K,) each island's best reward.
        evaluations: reward evaluations spent, K * N * T.
    """

    latent: Tensor
    reward: float
    island: int
    island_rewards: np.ndarray
    evaluations: int


def island_seed(seed: int, index: int) -> int:
    """The generator seed of island ``index`` of a search seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class Island:
    """One island: a Diffusion Elites search over its own problem copy, told migrants too.

    Args:
        make_problem: picklable function of no arguments returning ``(decode, reward)``
            (:data:`Problem`); called once, here (on a Ray actor: in its process).
        latent_shape, config: of its :class:`~planner.elites.DiffusionElites`.
        seed: its generator's seed.
        migrants: how many of its best latents :meth:`run` returns for the next island.
    """

    def __init__(
        self,
        make_problem: Callable[[], Problem],
        latent_shape: tuple[int, ...],
        config: ElitesConfig,
        seed: int,
        migrants: int,
    ) -> None:
        self.decode, self.reward = make_problem()
        self.elites = DiffusionElites(latent_shape, config, seed=seed)
        self.migrants = migrants
        self.evaluations = 0

    def run(self, iterations: int, immigrants: Migrants | None) -> Migrants:
        """``iterations`` rounds of ask -> decode -> reward -> tell, ``immigrants`` added to the
        first tell; returns the ``migrants`` best (latent, reward) of the last told batch."""
        for iteration in range(iterations):
            latents = self.elites.ask()
            rewards = torch.as_tensor(
                np.asarray(self.reward(self.decode(latents)), dtype=np.float64)
            )
            self.evaluations += len(latents)
            if iteration == 0 and immigrants is not None:
                latents = torch.cat([latents, immigrants.latents.to(latents)])
                rewards = torch.cat([rewards, immigrants.rewards.to(rewards)])
            self.elites.tell(latents, rewards)
        finite = torch.where(torch.isfinite(rewards), rewards, -math.inf)
        best = torch.sort(finite, descending=True, stable=True).indices[: self.migrants]
        best = best[torch.isfinite(finite[best])]
        return Migrants(latents[best].clone(), rewards[best].clone())

    def best(self) -> tuple[Tensor, float, int]:
        """Its best latent, that latent's reward, and its reward evaluations so far."""
        best = self.elites.best
        return best.latent, best.reward, self.evaluations


def search_islands(
    make_problem: Callable[[], Problem],
    latent_shape: tuple[int, ...],
    iterations: int,
    config: ElitesConfig = ElitesConfig(),
    islands: IslandConfig = IslandConfig(),
    seed: int = 0,
    ray: bool = False,
) -> IslandResult:
    """Run K islands for T = ``iterations`` iterations with ring migration (module docstring).

    Args:
        make_problem: picklable factory of ``(decode, reward)``, called once per island.
        latent_shape: one latent's shape, e.g. ``(H, C)``.
        iterations: T >= 1 iterations of every island.
        config: each island's ElitesConfig (N is each island's population).
        islands: K, M and the number of migrants.
        seed: island k's generator is seeded with :func:`island_seed` ``(seed, k)``.
        ray: one Ray actor (one CPU) per island on the connected (or a new private local) Ray
            session, islands iterating in parallel; False: one after the other in this process.
    """
    check_count("search_islands: iterations", iterations)
    args = [
        (make_problem, tuple(latent_shape), config, island_seed(seed, k), islands.migrants)
        for k in range(islands.islands)
    ]
    if ray:
        from planner.parallel import connect_ray, remote_errors, require_cpus

        ray_module, opened = connect_ray(num_cpus=islands.islands)
        require_cpus(ray_module, islands.islands, "islands")
        actor = ray_module.remote(num_cpus=1)(Island)
        handles = [actor.remote(*arguments) for arguments in args]

        def call(method: str, *per_island: list) -> list:
            futures = [
                getattr(handle, method).remote(*(values[k] for values in per_island))
                for k, handle in enumerate(handles)
            ]
            with remote_errors():
                return ray_module.get(futures)
    else:
        local = [Island(*arguments) for arguments in args]

        def call(method: str, *per_island: list) -> list:
            return [
                getattr(island, method)(*(values[k] for values in per_island))
                for k, island in enumerate(local)
            ]

    arrived: list[Migrants | None] = [None] * islands.islands
    done = 0
    while done < iterations:
        epoch = min(islands.migration_interval, iterations - done)
        sent = call("run", [epoch] * islands.islands, arrived)
        arrived = sent[-1:] + sent[:-1]  # island k receives from island k - 1
        done += epoch
    bests = call("best")
    if ray:
        for handle in handles:
            ray_module.kill(handle)
        if opened:
            ray_module.shutdown()
    rewards = np.array([reward for _, reward, _ in bests])
    winner = int(np.argmax(rewards))
    return IslandResult(
        latent=bests[winner][0],
        reward=float(rewards[winner]),
        island=winner,
        island_rewards=rewards,
        evaluations=sum(evaluations for _, _, evaluations in bests),
    )
