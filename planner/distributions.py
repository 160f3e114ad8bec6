"""The search distributions of Diffusion Elites, over flat latents ``(d,)``; one protocol.

Every distribution has ``reset(mean)``, ``sample(n) -> (n, d)``, ``fit(ranked, num_elites)``
(refit to the best rows of ``ranked (M, d)``, best first), ``shift(offset, std_scale)`` (move
``offset`` flat entries earlier for a receding-horizon warm start), ``mean`` and ``marginal_std``.

- ``"diagonal"``: independent Gaussian per coordinate, the blog's CEM.
- ``"full"``: full covariance, shrunk toward its diagonal so it is well posed when E <= d; pays
  off on ill-conditioned, rotated rewards when E > d.
- ``"mixture"``: k diagonal Gaussians, each refitted to the elites of its own niche, so several
  modes of a multi-modal reward stay alive (e.g. passing an obstacle on the left or the right).

They read their settings from a :class:`DistributionSettings`, which
:class:`planner.elites.ElitesConfig` is (the optimizer imports this module, never the reverse).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

_LLOYD_STEPS = 5  # k-means rounds when spawning mixture components; E ~ 10 points settle in a few


class DistributionSettings(Protocol):
    """The settings the distributions read (see :class:`planner.elites.ElitesConfig`)."""

    elite_fraction: float
    jitter: float
    min_std: float
    init_mean: float
    init_std: float
    distribution: str
    shrinkage: float | None
    mixture_components: int


class SearchDistribution(Protocol):
    """What :class:`~planner.elites.DiffusionElites` needs of a distribution over ``(d,)``."""

    def reset(self, mean: Tensor) -> None:
        """Back to the prior N(mean, init_std^2 I)."""
        ...

    def sample(self, n: int) -> Tensor:
        """``(n, d)`` samples."""
        ...

    def fit(self, ranked: Tensor, num_elites: int) -> None:
        """Refit to the elites ``ranked[:num_elites]`` of ``ranked (M, d)``, best first."""
        ...

    def shift(self, offset: int, std_scale: float | None) -> None:
        """Move ``offset`` flat entries earlier in time; the tail returns to the prior."""
        ...

    @property
    def mean(self) -> Tensor:
        """``(d,)`` mean of the distribution."""
        ...

    @property
    def marginal_std(self) -> Tensor:
        """``(d,)`` marginal standard deviations."""
        ...


def _shift_time(x: Tensor, offset: int, fill: float) -> Tensor:
    """Move flat latents ``x (..., d)`` ``offset`` entries earlier (k steps * d/H); tail = fill."""
    out = torch.full_like(x, fill)
    out[..., : x.shape[-1] - offset] = x[..., offset:]
    return out


def _shifted_std(
    std: Tensor, offset: int, std_scale: float | None, cfg: DistributionSettings
) -> Tensor:
    """``shift``'s std rule for ``std (..., d)``: reset to init_std, or shift * scale + clamp."""
    if std_scale is None:
        return torch.full_like(std, cfg.init_std)
    scaled = (std * std_scale).clamp(cfg.min_std, cfg.init_std)
    return _shift_time(scaled, offset, cfg.init_std)


def _noise(n: int, like: Tensor, generator: torch.Generator) -> Tensor:
    """``(n, d)`` standard normal noise on the device/dtype of ``like (d,)``."""
    return torch.randn(n, like.numel(), generator=generator, device=like.device, dtype=like.dtype)


def _fit_diagonal(elites: Tensor, config: DistributionSettings) -> tuple[Tensor, Tensor]:
    """Mean and std ``(d,)`` of ``elites (E, d)``; std = sqrt(var + jitter) floored at min_std."""
    var = elites.var(0, correction=0) + config.jitter
    return elites.mean(0), var.sqrt().clamp(min=config.min_std)


class Diagonal:
    """N(mean, diag(std^2)) over flat latents ``(d,)``."""

    def __init__(self, config: DistributionSettings, generator: torch.Generator) -> None:
        self.config, self.generator = config, generator

    def reset(self, mean: Tensor) -> None:
        self.mean = mean.clone()
        self.std = torch.full_like(mean, self.config.init_std)

    def sample(self, n: int) -> Tensor:
        """``(n, d)`` samples."""
        return self.mean + self.std * _noise(n, self.mean, self.generator)

    def fit(self, ranked: Tensor, num_elites: int) -> None:
        """Refit to the elites ``ranked[:num_elites]`` of ``ranked (M, d)``, best first."""
        self.mean, self.std = _fit_diagonal(ranked[:num_elites], self.config)

    def shift(self, offset: int, std_scale: float | None) -> None:
        cfg = self.config
        self.mean = _shift_time(self.mean, offset, cfg.init_mean)
        self.std = _shifted_std(self.std, offset, std_scale, cfg)

    @property
    def marginal_std(self) -> Tensor:
        return self.std


def _estimated_shrinkage(centred: Tensor, cov: Tensor) -> Tensor:
    """Schafer-Strimmer estimate of the best intensity toward the diagonal (their target "D").

    ``centred (E, d)`` elites minus their mean, ``cov (d, d)`` = centred.T @ centred / E.
    lambda = sum_{i != j} Var(s_ij) / sum_{i != j} s_ij^2, clamped to [0, 1]: near 1 when E << d
    (the off-diagonal is mostly noise), near 0 when E >> d. Returns a 0-d tensor (no host sync).
    """
    n = centred.shape[0]
    if n < 2:
        return torch.ones((), dtype=cov.dtype, device=cov.device)
    squares = centred**2
    spread = squares.T @ squares - n * cov**2  # sum_k (c_ki c_kj - cov_ij)^2
    off = ~torch.eye(cov.shape[0], dtype=torch.bool, device=cov.device)
    noise = (n / (n - 1) ** 3 * spread[off]).sum()
    signal = ((n / (n - 1) * cov[off]) ** 2).sum()
    return torch.where(signal > 0, (noise / signal).clamp(0.0, 1.0), 1.0)


class FullCovariance:
    """N(mean, cov) over flat latents ``(d,)``, sampled as ``mean + factor @ noise``."""

    def __init__(self, config: DistributionSettings, generator: torch.Generator) -> None:
        self.config, self.generator = config, generator
        fixed = config.shrinkage
        self._shrinkage = _estimated_shrinkage if fixed is None else lambda centred, cov: fixed

    def reset(self, mean: Tensor) -> None:
        self.mean = mean.clone()
        eye = torch.eye(mean.numel(), device=mean.device, dtype=mean.dtype)
        self.cov = eye * self.config.init_std**2
        self.factor = eye * self.config.init_std

    def sample(self, n: int) -> Tensor:
        """``(n, d)`` samples."""
        return self.mean + _noise(n, self.mean, self.generator) @ self.factor.T

    def fit(self, ranked: Tensor, num_elites: int) -> None:
        """Refit to ``ranked[:num_elites]`` (best first): shrunk covariance + jitter, floored."""
        elites = ranked[:num_elites]
        x = elites.double()  # eigenvalues of ill-conditioned covariances need float64
        centred = x - x.mean(0)
        cov = centred.T @ centred / x.shape[0]
        lam = self._shrinkage(centred, cov)
        # Shrinking toward diag(S) scales only the off-diagonal: diag(S) stays the elite variance.
        cov = cov * (1.0 - lam) + torch.diag_embed(cov.diagonal() * lam)
        cov.diagonal().add_(self.config.jitter)
        self.mean = elites.mean(0)
        self._set_cov(cov, max_var=None)

    def shift(self, offset: int, std_scale: float | None) -> None:
        cfg = self.config
        mean = _shift_time(self.mean, offset, cfg.init_mean)
        if std_scale is None:
            self.reset(mean)
            return
        # The diagonal's rule applied to the covariance: keep the shifted block, scaled by
        # std_scale^2, uncorrelated with a fresh prior tail; spread clamped to [min_std, init_std].
        d = self.mean.numel()
        cov = torch.eye(d, device=mean.device, dtype=torch.float64) * cfg.init_std**2
        cov[: d - offset, : d - offset] = self.cov[offset:, offset:].double() * std_scale**2
        self.mean = mean
        self._set_cov(cov, max_var=cfg.init_std**2)

    def _set_cov(self, cov: Tensor, max_var: float | None) -> None:
        """Clamp the eigenvalues of symmetric ``cov (d, d)`` (float64) and store cov and factor.

        The floor min_std^2 makes cov positive definite by construction, so the factor
        ``V sqrt(Lambda)`` (``factor @ factor.T == cov``) always exists, unlike a Cholesky
        factor that would need a jitter-and-retry guard.
        """
        eigvals, eigvecs = torch.linalg.eigh(cov)
        eigvals = eigvals.clamp(min=self.config.min_std**2, max=max_var)
        factor = eigvecs * eigvals.sqrt()
        self.factor = factor.to(self.mean.dtype)
        self.cov = (factor @ factor.T).to(self.mean.dtype)

    @property
    def marginal_std(self) -> Tensor:
        return self.cov.diagonal().sqrt()


class Mixture:
    """k diagonal Gaussians with equal shares of the population: means, stds ``(k', d)``, k' <= k.

    Refit by niches: each told latent belongs to the component under which it is most likely,
    and each component refits to the best ceil(rho * n_j) of its own n_j latents. Fitting all k
    components to the global top-E instead lets whichever component is tighter take every elite
    and erase the other modes (measured on the tests' two-optimum reward: both modes kept in 0/20
    runs after 20 iterations, against 17/20 with niches); niches keep each mode alive for the
    whole search, while ``best`` is still the global argmax. The cost: on a one-mode reward each
    component learns from N/k samples only. Components are (re)spawned from the global
    elites by k-means++ and a few Lloyd steps whenever fewer than k exist (after a reset, or when
    the elites hold fewer than k distinct points).
    """

    def __init__(self, config: DistributionSettings, generator: torch.Generator) -> None:
        self.config, self.generator = config, generator

    def reset(self, mean: Tensor) -> None:
        # The prior is one component; the first refit spawns k from the elites.
        self.means = mean[None].clone()
        self.stds = torch.full_like(self.means, self.config.init_std)

    def sample(self, n: int) -> Tensor:
        """``(n, d)`` samples; row i comes from component i mod k' (stratified, equal shares)."""
        rows = torch.arange(n, device=self.means.device) % self.means.shape[0]
        return self.means[rows] + self.stds[rows] * _noise(n, self.means[0], self.generator)

    def fit(self, ranked: Tensor, num_elites: int) -> None:
        """Refit to the finite-reward latents ``ranked (M, d)``, best first."""
        cfg = self.config
        if self.means.shape[0] < cfg.mixture_components:
            fits = [_fit_diagonal(group, cfg) for group in self._cluster(ranked[:num_elites])]
        else:
            z = (ranked[:, None, :] - self.means[None]) / self.stds[None]  # (M, k, d)
            owner = (-0.5 * (z**2).sum(2) - self.stds.log().sum(1)[None]).argmax(1)
            # Boolean masks keep the best-first order, so each niche's head is its elite set.
            niches = [ranked[owner == j] for j in range(self.means.shape[0])]
            # A component that owns no latent (possible with foreign tells) keeps its parameters.
            fits = [
                _fit_diagonal(niche[: math.ceil(cfg.elite_fraction * niche.shape[0])], cfg)
                if niche.shape[0]
                else (mean, std)
                for niche, mean, std in zip(niches, self.means, self.stds, strict=True)
            ]
        self.means = torch.stack([mean for mean, _ in fits])
        self.stds = torch.stack([std for _, std in fits])

    def _cluster(self, x: Tensor) -> list[Tensor]:
        """Split ``x (E, d)`` (best first) into up to k non-empty groups: k-means++ + Lloyd."""
        centres = [x[0]]  # the best elite seeds the first cluster
        dist2 = ((x - x[0]) ** 2).sum(1)
        for _ in range(self.config.mixture_components - 1):
            if not dist2.sum() > 0:
                break  # every point is a centre already: E < k or duplicate elites
            pick = torch.multinomial(dist2, 1, generator=self.generator)[0]
            centres.append(x[pick])
            dist2 = torch.minimum(dist2, ((x - x[pick]) ** 2).sum(1))
        centres = torch.stack(centres)
        for _ in range(_LLOYD_STEPS):
            owner = torch.cdist(x, centres).argmin(1)
            groups = [x[owner == j] for j in range(centres.shape[0])]
            centres = torch.stack([g.mean(0) for g in groups if g.shape[0]])
        owner = torch.cdist(x, centres).argmin(1)
        return [x[owner == j] for j in range(centres.shape[0]) if (owner == j).any()]

    def shift(self, offset: int, std_scale: float | None) -> None:
        cfg = self.config
        self.means = _shift_time(self.means, offset, cfg.init_mean)
        self.stds = _shifted_std(self.stds, offset, std_scale, cfg)

    @property
    def mean(self) -> Tensor:
        return self.means.mean(0)

    @property
    def marginal_std(self) -> Tensor:
        second_moment = (self.stds**2 + self.means**2).mean(0)
        return (second_moment - self.mean**2).clamp(min=0.0).sqrt()


_CLASSES = {"diagonal": Diagonal, "full": FullCovariance, "mixture": Mixture}
DISTRIBUTIONS = tuple(_CLASSES)


def make_distribution(
    config: DistributionSettings, generator: torch.Generator
) -> SearchDistribution:
    """The distribution named by ``config.distribution``, sampling from ``generator``."""
    return _CLASSES[config.distribution](config, generator)
