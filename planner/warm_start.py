"""Warm starts of the receding-horizon search: where the next control step's search begins.

The previous search ended ``k`` control steps ago; its plan, latents and search distribution were
made for a state k steps back. Each warm start is one function run before the first ``ask()``
of a replan, given what it uses: the search (:class:`~planner.elites.DiffusionElites`), the
kept plans (:class:`~planner.safeguards.PlanMemory`), the decoder (for its ``encode``), the
:class:`WarmStartSettings`, ``k``, ``knots`` (the whole knots the search distribution moves,
:class:`~planner.knots.KnotClock`; k when a plan has a knot per step) and ``cond`` (the
decoder's conditioning, ``(1, C)``, or None):

- ``"none"``: restart from the prior N(0, init_std^2 I). The previous plan shifted k steps is
  still scored as a candidate (:class:`planner.safeguards.PlanMemory`), so a restart keeps the
  previous solution without searching around it.
- ``"shift"``: the design's warm start: the latent mean moves ``knots`` knots along time, its
  tail from the prior (zero); the std resets to init_std (or, with ``shift_std_scale``, is
  shifted and scaled).
- ``"shift-mix"``: the shifted Gaussian of ``"shift"`` for the first iteration's last N - N//2
  rows, the prior for its first N//2 rows.
- ``"inversion"``: DDIM-invert the previous plan shifted k steps in action space and centre the
  search on that latent.

Which wins depends on the task (results/warm-start/README.md, small budgets, paired seeds). The
kept previous plan already carries the last solution into a restart, so what a warm start adds
is a search around that solution. On MuJoCo (a gait refined over many steps, dense reward) that
search pays: ``"shift"`` has a higher mean return than a restart on every task, significantly
on half-cheetah (363 against 144 at 16x3, 826 against 193 at 64x3) and reacher. On
unicycle-obstacles the failures are episodes stuck in front of an obstacle, escaped only by
samples far from the last solution: every start that concentrates the search loses success
(``"inversion"`` most, then ``"shift"``), while ``"shift-mix"`` keeps the restart's success and
reaches unicycle-goal's goal 4.9-6.8 steps sooner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from planner.elites import DiffusionElites
from planner.safeguards import PlanMemory


@dataclass(frozen=True)
class WarmStartSettings:
    """What the warm starts read of the planner's settings (``PlannerConfig``)."""

    population: int
    """N: ``"shift-mix"`` draws N // 2 rows of the first population from the prior."""
    shift_std_scale: float | None
    """``"shift"``, ``"shift-mix"``: None resets the std, a number scales the shifted std."""
    search_steps: int
    """``"inversion"``: the DDIM steps the search decodes with, inverted alike."""


def restart(
    elites: DiffusionElites, memory: PlanMemory, decoder: Any, settings: WarmStartSettings,
    k: int, knots: int, cond: Tensor | None,
) -> None:  # fmt: skip
    """``"none"``: back to the prior."""
    elites.reset()


def shift_mean(
    elites: DiffusionElites, memory: PlanMemory, decoder: Any, settings: WarmStartSettings,
    k: int, knots: int, cond: Tensor | None,
) -> None:  # fmt: skip
    """``"shift"``: the search distribution moved ``knots`` knots along time (k steps)."""
    elites.shift(knots, std_scale=settings.shift_std_scale)


def shift_mix(
    elites: DiffusionElites, memory: PlanMemory, decoder: Any, settings: WarmStartSettings,
    k: int, knots: int, cond: Tensor | None,
) -> None:  # fmt: skip
    """``"shift-mix"``: the shifted Gaussian, half of the first population from the prior."""
    shift_mean(elites, memory, decoder, settings, k, knots, cond)
    elites.inject(elites.prior_samples(settings.population // 2))


def invert_shifted_plan(
    elites: DiffusionElites, memory: PlanMemory, decoder: Any, settings: WarmStartSettings,
    k: int, knots: int, cond: Tensor | None,
) -> None:  # fmt: skip
    """``"inversion"``: centred on the DDIM inversion of the previous plan shifted k steps."""
    previous = memory.previous(k)
    trajectory = torch.as_tensor(previous, dtype=torch.float32, device=elites.device)[None]
    latent = decoder.encode(trajectory, settings.search_steps, cond=cond)
    elites.reset(mean=latent[0])


WarmStart = Callable[
    [DiffusionElites, PlanMemory, Any, WarmStartSettings, int, int, Tensor | None], None
]
WARM_START_FUNCTIONS: dict[str, WarmStart] = {
    "none": restart,
    "shift": shift_mean,
    "shift-mix": shift_mix,
    "inversion": invert_shifted_plan,
}
WARM_STARTS = tuple(WARM_START_FUNCTIONS)
