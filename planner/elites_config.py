"""The settings of Diffusion Elites (:class:`ElitesConfig`), validated once at construction.

Symbols (ARCHITECTURE.md): N population, E elites, d = prod(latent_shape) flat latent size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.distributions import DISTRIBUTIONS
from planner.validation import check_count


@dataclass(frozen=True)
class ElitesConfig:
    """Hyper-parameters of Diffusion Elites.

    Attributes:
        population: N latents sampled per iteration.
        elite_fraction: rho; ``num_elites`` E = max(1, ceil(rho * N)) best latents refit the search.
        jitter: eps added to every variance (diagonal) / the covariance diagonal (full).
        min_std: floor of every std (diagonal, mixture components) and of the square root of every
            covariance eigenvalue (full), which also floors its marginal stds; keeps the search
            from collapsing.
        init_mean: mean of the prior N(init_mean, init_std^2 I) the search starts from.
        init_std: std of that prior; also the ceiling of the std when ``shift`` rescales it.
        elite_carryover: iCEM-style; the first ceil(elite_carryover * E) rows of the next ``ask()``
            are the best elites of the last ``tell()`` instead of fresh samples, so they are
            re-scored (useful with noisy rewards or a changing state).
        distribution: ``"diagonal"``, ``"full"`` or ``"mixture"`` (module docstring).
        shrinkage: ``"full"`` only; intensity lambda in [0, 1] of the Ledoit-Wolf-style estimate
            ``(1 - lambda) S + lambda diag(S)`` of the elite covariance S (1: the diagonal
            distribution, 0: the raw, rank-deficient when E <= d, sample covariance). The default
            None estimates lambda from the elites at every refit (Schafer & Strimmer 2005, target
            "D"): near 1 when E << d, small when E >> d. No fixed value suits both; median final
            loss on the tests' problems, lambda = 0.1 / 0.9 / estimated: isotropic d = 64 with
            E = 13: 4.1 / 0.0045 / 0.0051; rotated d = 8 with E = 26: 0.044 / 2.4 / 0.069.
        mixture_components: ``"mixture"`` only; k diagonal Gaussians (fewer when E < k).
        latent_bounds: ``(low, high)``: every latent ``ask()`` returns is clipped into this box,
            so the refit sees exactly the values that were scored (action-space CEM over
            [-1, 1]); None (default): unbounded latents, as a diffusion prior's are.
    """

    population: int = 64
    elite_fraction: float = 0.1
    jitter: float = 1e-6
    min_std: float = 0.01
    init_mean: float = 0.0
    init_std: float = 1.0
    elite_carryover: float = 0.0
    distribution: str = "diagonal"
    shrinkage: float | None = None
    mixture_components: int = 2
    latent_bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"ElitesConfig: {message}")

        check_count("population", self.population, minimum=2, hint="N candidates per iteration")
        check(
            0.0 < self.elite_fraction <= 1.0,
            f"elite_fraction must be in (0, 1], e.g. 0.1; got {self.elite_fraction!r}",
        )
        check(self.jitter >= 0.0, f"jitter must be >= 0, e.g. 1e-6; got {self.jitter!r}")
        check(
            math.isfinite(self.init_mean),
            f"init_mean must be a finite number, got {self.init_mean!r}",
        )
        check(
            0.0 < self.init_std < math.inf,
            f"init_std must be a finite number > 0, e.g. 1.0; got {self.init_std!r}",
        )
        check(
            0.0 <= self.min_std <= self.init_std,
            f"min_std must be in [0, init_std={self.init_std}], e.g. 0.01; got {self.min_std!r}",
        )
        check(
            0.0 <= self.elite_carryover <= 1.0,
            f"elite_carryover must be in [0, 1] (fraction of E), got {self.elite_carryover!r}",
        )
        check(
            self.num_carryover < self.population,
            f"ceil(elite_carryover * E) = {self.num_carryover} carried-over elites leave no fresh "
            f"sample in a population of {self.population}; lower elite_carryover or "
            "elite_fraction",
        )
        check(
            self.distribution in DISTRIBUTIONS,
            f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}",
        )
        check(
            self.shrinkage is None or 0.0 <= self.shrinkage <= 1.0,
            f"shrinkage must be None (estimated) or in [0, 1], got {self.shrinkage!r}",
        )
        check_count("mixture_components", self.mixture_components)
        check(
            self.latent_bounds is None
            or (len(self.latent_bounds) == 2 and self.latent_bounds[0] < self.latent_bounds[1]),
            f"latent_bounds must be None or (low, high) with low < high, got "
            f"{self.latent_bounds!r}",
        )

    @property
    def num_elites(self) -> int:
        """E = max(1, ceil(rho * N))."""
        return max(1, math.ceil(self.elite_fraction * self.population))

    @property
    def num_carryover(self) -> int:
        """Elites of the last ``tell()`` re-inserted by the next ``ask()``: ceil(carryover * E)."""
        return math.ceil(self.elite_carryover * self.num_elites)
