"""Noise schedule, v-prediction loss, deterministic DDIM decoding and DDIM inversion.

Pure torch functions over a denoiser ``model(x_t (B, H, C), t (B,) long, cond (B, K) | None) ->
v (B, H, C)`` that predicts the velocity ``v = sqrt(a) * eps - sqrt(1 - a) * x0`` (``a`` is the
cumulative signal level ``alphas_cumprod[t]``). The decoder is a pure function of its latent: no
random numbers are drawn anywhere in :func:`ddim_decode` or :func:`ddim_invert`.

Conventions follow diffusers' ``DDIMScheduler`` with ``beta_schedule="squaredcos_cap_v2"``,
``prediction_type="v_prediction"``, ``timestep_spacing="trailing"``, ``set_alpha_to_one=True``
and ``eta=0``, so a model trained here can be sampled there and back.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from planner.validation import check_count

Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass(frozen=True)
class NoiseSchedule:
    """Cosine ("squaredcos_cap_v2") noise schedule over ``train_steps`` discrete timesteps.

    ``betas[i] = min(1 - abar((i + 1) / T) / abar(i / T), 0.999)`` with
    ``abar(s) = cos((s + 0.008) / 1.008 * pi / 2) ** 2``, and
    ``alphas_cumprod = cumprod(1 - betas)`` in float32, bit for bit as diffusers computes it.
    """

    train_steps: int = 1000
    alphas_cumprod: torch.Tensor = field(init=False, repr=False, compare=False)
    """(train_steps,) float32 signal level ``a_t`` of timestep ``t``, decreasing from ~1 to ~0."""

    max_beta = 0.999
    name = "squaredcos_cap_v2"

    def __post_init__(self) -> None:
        check_count("NoiseSchedule.train_steps", self.train_steps, 2, "1000 is usual")

        def alpha_bar(s: float) -> float:
            return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

        steps = self.train_steps
        betas = [
            min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), self.max_beta)
            for i in range(steps)
        ]
        alphas = 1.0 - torch.tensor(betas, dtype=torch.float32)
        object.__setattr__(self, "alphas_cumprod", torch.cumprod(alphas, dim=0))


def ddim_timesteps(train_steps: int, steps: int) -> list[int]:
    """The S decoding timesteps, descending, with diffusers' "trailing" spacing.

    The first is always ``train_steps - 1`` (pure noise), so even ``steps=1`` decodes from the
    latent's full noise level: ``round(train_steps - i * train_steps / steps) - 1`` for
    ``i = 0..S-1``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer):
        raise TypeError(f"steps must be an int, got {type(steps).__name__}")
    if not 1 <= steps <= train_steps:
        raise ValueError(
            f"steps must be in 1..{train_steps} (the schedule's train_steps), got {steps}; "
            "a few (1-10) is typical while searching, 20-50 for a final plan"
        )
    # np.arange exactly as diffusers calls it, so ties round the same way; its float steps can
    # add a spurious extra timestep (-1), hence the cut to S entries.
    trailing = np.round(np.arange(train_steps, 0, -train_steps / steps))[:steps]
    return [int(t) - 1 for t in trailing]


def v_prediction_loss(
    model: Denoiser,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator,
    cond: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error of the predicted velocity on clean data ``x0 (B, H, C)``.

    Draws a timestep ``t ~ U{0..T-1}`` and noise ``eps ~ N(0, I)`` per sample from ``generator``
    (on the generator's device, then moved to ``x0``'s, so a seed gives the same draws on any
    device), forms ``x_t = sqrt(a) x0 + sqrt(1 - a) eps`` and regresses
    ``v = sqrt(a) eps - sqrt(1 - a) x0``. ``cond`` is ``(B, K)`` or None. Returns a scalar.
    """
    if x0.ndim != 3:
        raise ValueError(f"x0 must be (B, H, C), got shape {tuple(x0.shape)}")
    batch = x0.shape[0]
    t = torch.randint(
        0, schedule.train_steps, (batch,), generator=generator, device=generator.device
    )
    eps = torch.randn(x0.shape, generator=generator, device=generator.device, dtype=x0.dtype)
    t, eps = t.to(x0.device), eps.to(x0.device)
    a = schedule.alphas_cumprod.to(device=x0.device, dtype=x0.dtype)[t].view(batch, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    target = a.sqrt() * eps - (1 - a).sqrt() * x0
    return torch.mean((model(x_t, t, cond) - target) ** 2)


@functools.lru_cache(maxsize=32, typed=True)  # typed: steps=True is refused, not 1
def ddim_levels(schedule: NoiseSchedule, steps: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The S timesteps of :func:`ddim_timesteps` and the S + 1 signal levels a DDIM decode
    visits (theirs, then 1.0), computed once per schedule and S (every decode reuses them)."""
    timesteps = ddim_timesteps(schedule.train_steps, steps)
    return tuple(timesteps), (*schedule.alphas_cumprod[timesteps].tolist(), 1.0)


def _predict(
    model: Denoiser, x: torch.Tensor, t: int, a: float, cond: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model's (x0, eps) estimate for ``x (N, H, C)`` read as a sample at timestep ``t``."""
    v = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device), cond)
    return math.sqrt(a) * x - math.sqrt(1 - a) * v, math.sqrt(a) * v + math.sqrt(1 - a) * x


def ddim_decode(
    model: Denoiser,
    latents: torch.Tensor,
    schedule: NoiseSchedule,
    steps: int,
    cond: torch.Tensor | None = None,
    clip: float | None = None,
    known: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Deterministic DDIM (eta = 0): latents ``(N, H, C)`` -> clean samples ``(N, H, C)``.

    Uses S = ``steps`` model calls at :func:`ddim_timesteps`; each step moves to the next
    timestep in that list and the last one to signal level 1, so the output is the final
    predicted x0. ``clip`` (model units) clamps each predicted x0 to ``[-clip, clip]`` while
    the noise estimate stays the model's (diffusers' ``clip_sample`` semantics). ``cond`` is
    ``(N, K)`` or None. Gradients flow if the caller enables them.

    For S dividing ``train_steps`` this is diffusers' ``DDIMScheduler.step`` exactly; otherwise
    diffusers jumps by ``train_steps // S`` and can land between two of its own timesteps,
    while this steps to the next listed timestep (which :func:`ddim_invert` retraces).

    ``known = (mask, values)`` inpaints by replacement: ``mask`` (bool) and ``values`` (model
    units) broadcast to ``(N, H, C)``, and before every model call, and after the last step,
    the masked entries of the current sample are overwritten with the known values noised to
    the current signal level ``a``: ``sqrt(a) * values + sqrt(1 - a) * latents``. The noise is
    the latent's own entries (what the forward process would have added if the latent were
    that noise), not fresh draws, so decoding stays a pure function of the latent; at the end
    ``a = 1`` and the masked entries equal ``values``.
    """
    timesteps, levels = ddim_levels(schedule, steps)

    def impose(x: torch.Tensor, level: float) -> torch.Tensor:
        if known is None:
            return x
        mask, values = known
        noised = math.sqrt(level) * values + math.sqrt(1 - level) * latents
        return torch.where(mask, noised, x)

    x = impose(latents, levels[0])
    for i, t in enumerate(timesteps):
        x0, eps = _predict(model, x, t, levels[i], cond)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        level = levels[i + 1]
        x = impose(math.sqrt(level) * x0 + math.sqrt(1 - level) * eps, level)
    return x


def ddim_invert(
    model: Denoiser,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    steps: int,
    cond: torch.Tensor | None = None,
) -> torch.Tensor:
    """DDIM inversion: clean samples ``x0 (N, H, C)`` -> latents ``(N, H, C)``.

    Walks :func:`ddim_decode`'s timesteps backwards (from signal level 1 up to
    ``train_steps - 1``). Each step asks the model about the current point at the target
    timestep, the usual approximation that makes ``ddim_decode(ddim_invert(x))`` close to
    ``x`` for smooth models and enough steps (exact only as S grows).
    """
    timesteps = ddim_timesteps(schedule.train_steps, steps)[::-1]
    levels = [1.0, *schedule.alphas_cumprod[timesteps].tolist()]
    x = x0
    for i, t in enumerate(timesteps):
        _, eps = _predict(model, x, t, levels[i + 1], cond)
        clean = (x - math.sqrt(1 - levels[i]) * eps) / math.sqrt(levels[i])
        x = math.sqrt(levels[i + 1]) * clean + math.sqrt(1 - levels[i + 1]) * eps
    return x
