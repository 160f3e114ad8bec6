"""Warm starts of the receding-horizon search: where the next control step's search begins.

The previous search ended ``k`` control steps ago; its plan, latents and search distribution were
made for a state k steps back. Each warm start is one function ``(planner, k, cond)`` run before
the first ``ask()`` of a replan (``cond``: the decoder's conditioning, ``(1, K)``, or None):

- ``"none"``: restart from the prior N(0, init_std^2 I). The previous plan shifted k steps is
  still scored as a candidate (:class:`planner.safeguards.PlanMemory`), so a restart keeps the
  previous solution without searching around it.
- ``"shift"``: the design's warm start: the latent mean moves k steps along time, its tail from
  the prior (zero); the std resets to init_std (or, with ``shift_std_scale``, is shifted and
  scaled).
- ``"shift-best"``: the prior centred on the previous best latent shifted k steps (tail zero).
- ``"shift-elites"``: restart from the prior, and the previous step's E elite latents, shifted k
  steps with tails drawn from the prior, are the first rows of the first iteration.
- ``"shift-mix"``: the shifted Gaussian of ``"shift"`` for the first iteration's last N - N//2
  rows, the prior for its first N//2 rows.
- ``"inversion"``: DDIM-invert the previous plan shifted k steps in action space and centre the
  search on that latent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from planner.elites import DiffusionElites

if TYPE_CHECKING:
    from planner.mpc import RecedingHorizonPlanner


def shift_latents(latents: Tensor, k: int, elites: DiffusionElites) -> Tensor:
    """``latents (M, H, A)`` moved k steps earlier in time; the k tail steps are fresh draws from
    ``elites``' prior (so carried latents keep their spread there); ``k >= H``: all fresh."""
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"shift_latents: k must be an int >= 0 (time steps), got {k!r}")
    fresh = elites.prior_samples(latents.shape[0])
    kept = max(latents.shape[1] - k, 0)
    fresh[:, :kept] = latents[:, k:]
    return fresh


def restart(planner: RecedingHorizonPlanner, k: int, cond: Tensor | None) -> None:
    """``"none"``: back to the prior."""
    planner.elites.reset()


def shift_mean(planner: RecedingHorizonPlanner, k: int, cond: Tensor | None) -> None:
    """``"shift"``: the search distribution moved k steps along time."""
    planner.elites.shift(k, std_scale=planner.config.shift_std_scale)


def shift_best(planner: RecedingHorizonPlanner, k: int, cond: Tensor | None) -> None:
    """``"shift-best"``: the prior centred on the previous best latent shifted k steps."""
    elites = planner.elites
    best = elites.best
    elites.reset(mean=None if best is None else best.latent)
    elites.shift(k)


def shift_elites(planner: RecedingHorizonPlanner, k: int, cond: Tensor | None) -> None:
    """``"shift-elites"``: the prior, plus the previous elites shifted k steps as first rows."""
    elites = planner.elites
    previous = elites.elites
    elites.reset()
    if previous.shape[0]:
        elites.inject(shift_latents(previous, k, elites))


def shift_mix(planner: RecedingHorizonPlanner, k: int, cond: Tensor | None) -> None:
    """``"shift-mix"``: the shifted Gaussian, half of the first population from the prior."""
    shift_mean(planner, k, cond)
    planner.elites.inject(planner.elites.prior_samples(planner.config.population // 2))


def invert_shifted_plan(planner: RecedingHorizonPlanner, k: int, cond: Tensor | None) -> None:
    """``"inversion"``: centred on the DDIM inversion of the previous plan shifted k steps."""
    previous = planner.memory.previous(k)
    trajectory = torch.as_tensor(previous, dtype=torch.float32, device=planner.device)[None]
    latent = planner.decoder.encode(trajectory, planner.config.search_steps, cond=cond)
    planner.elites.reset(mean=latent[0])


WarmStart = Callable[["RecedingHorizonPlanner", int, Any], None]
WARM_START_FUNCTIONS: dict[str, WarmStart] = {
    "none": restart,
    "shift": shift_mean,
    "shift-best": shift_best,
    "shift-elites": shift_elites,
    "shift-mix": shift_mix,
    "inversion": invert_shifted_plan,
}
WARM_STARTS = tuple(WARM_START_FUNCTIONS)
