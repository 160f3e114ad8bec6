"""Build any planner of the comparison by name, at one budget, so a comparison is one flag."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from planner.mpc import PlannerConfig, RecedingHorizonPlanner
from planner.objective import Objective
from planner.prior import DiffusionPrior
from policies.cem import make_cem
from policies.icem import ICEMConfig, ICEMPlanner
from policies.mppi import MPPIConfig, MPPIPlanner
from policies.random_shooting import RandomShootingPlanner

PLANNERS = ("de", "cem", "icem", "mppi", "random")


@dataclass(frozen=True)
class Budget:
    """What every planner gets per control step: N candidates x T iterations over horizon H."""

    horizon: int
    action_dim: int
    population: int = 64
    iterations: int = 4

    def __post_init__(self) -> None:
        if min(self.horizon, self.action_dim, self.population, self.iterations) < 1:
            raise ValueError(f"every Budget field must be >= 1, got {self}")


def build_planner(
    kind: str,
    objective: Objective,
    budget: Budget,
    seed: int | None = 0,
    prior: DiffusionPrior | None = None,
    planner_config: PlannerConfig | None = None,
    device: str = "cpu",
    record: bool = False,
) -> Any:
    """A planner with ``reset()`` and ``plan(state, cond=None) -> PlanResult``.

    Args:
        kind: one of ``PLANNERS``: ``de`` (Diffusion Elites over ``prior``), ``cem``, ``icem``,
            ``mppi``, ``random`` (action-space baselines).
        budget: population, iterations and horizon shared by all kinds.
        prior: the action-chunk prior, required for ``de``; its horizon must equal the budget's.
        planner_config: settings of the RecedingHorizonPlanner behind ``de`` and ``cem`` (DDIM
            steps, warm start, fill action...); population and iterations come from the budget,
            and CEM searches actions directly (init_std 0.5, one "decode" step).
        record: keep each step's last population and its best rows in PlanResult (videos).
    """
    n, t = budget.population, budget.iterations
    settings = planner_config or PlannerConfig()
    shape = (objective, budget.horizon, budget.action_dim)
    if kind == "de":
        if prior is None:
            raise ValueError("planner 'de' needs a prior: pass prior=DiffusionPrior.load(path)")
        if tuple(prior.latent_shape) != (budget.horizon, budget.action_dim):
            raise ValueError(
                f"the prior plans (H, A) = {tuple(prior.latent_shape)} but the task needs "
                f"{(budget.horizon, budget.action_dim)}: train a prior for this task's horizon "
                "and action size (experiments/train_prior.py)"
            )
        config = replace(settings, population=n, iterations=t, record=record)
        return RecedingHorizonPlanner(prior, objective, config, seed=seed, device=device)
    if kind == "cem":
        config = replace(
            settings,
            population=n,
            iterations=t,
            init_std=0.5,
            search_steps=1,
            final_steps=1,
            warm_start="shift",
            record=record,
        )
        return make_cem(*shape, config, seed)
    if kind == "icem":
        return ICEMPlanner(*shape, ICEMConfig(population=n, iterations=t), seed, record)
    if kind == "mppi":
        return MPPIPlanner(*shape, MPPIConfig(population=n, iterations=t), seed, record)
    if kind == "random":
        return RandomShootingPlanner(*shape, n, t, seed, record)
    raise ValueError(f"unknown planner {kind!r}; choose one of {PLANNERS}")
