"""Build any planner of the comparison by name, at one budget, so a comparison is one flag."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from planner.mpc import PlannerConfig, RecedingHorizonPlanner
from planner.objective import Objective
from planner.planning import Budget, Planner
from planner.prior import DiffusionPrior
from planner.safeguards import Safeguards
from policies.cem import make_cem
from policies.icem import ICEMConfig, ICEMPlanner
from policies.mppi import MPPIConfig, MPPIPlanner
from policies.random_shooting import RandomShootingPlanner

PLANNERS = ("de", "cem", "icem", "mppi", "random")


def build_planner(
    kind: str,
    objective: Objective,
    budget: Budget,
    seed: int | None = 0,
    prior: DiffusionPrior | None = None,
    planner_config: PlannerConfig | None = None,
    device: str = "cpu",
    record: bool = False,
    safeguards: Safeguards = Safeguards(),
    tuning: Mapping[str, Any] | None = None,
    final_decoder: Any = None,
) -> Planner:
    """The planner ``kind`` (a :class:`~planner.planning.Planner`) at ``budget``.

    Every kind gets the same budget (at most N*T reward evaluations per control step, extra
    candidates included) and the same ``safeguards`` (fill action, kept previous plan, safe
    plan), so a comparison differs only in the method.

    Args:
        kind: one of ``PLANNERS``: ``de`` (Diffusion Elites over ``prior``), ``cem``, ``icem``,
            ``mppi``, ``random`` (action-space baselines).
        budget: population, iterations, horizon and knots shared by all kinds: each searches K
            knots that the budget's schedule interpolates to H actions.
        prior: the action-chunk prior, required for ``de``; it must be trained over the
            budget's knots and interpolation (:attr:`~planner.prior.DiffusionPrior.knot_schedule`).
            DE searches with it: a :class:`~planner.prior.DiffusionPrior` (DDIM) or its
            one-call student (:class:`~planner.distilled.DistilledPrior`).
        final_decoder: what decodes DE's executed plan (None: ``prior``), e.g. the teacher of
            a student that searched.
        planner_config: settings of the RecedingHorizonPlanner behind ``de`` and ``cem`` (DDIM
            steps, warm start...); population and iterations come from the budget, and CEM
            searches actions directly (init_std 0.5, latents clipped to [-1, 1], one "decode"
            step).
        record: keep each step's last population and its best rows in PlanResult (videos).
        safeguards: the shared rules of :mod:`planner.safeguards`.
        tuning: the kind's settings tuned for the task (``envs.registry.TaskSpec.tuning``):
            ``cem``: ``execute``; ``mppi``: ``noise_std``, ``temperature``; ``icem``: any
            :class:`ICEMConfig` field.
    """
    n, t = budget.population, budget.iterations
    settings = planner_config or PlannerConfig()
    tuning = dict(tuning or {})
    schedule = budget.schedule
    shape = (objective, schedule, budget.action_dim)
    if kind == "de":
        if prior is None:
            raise ValueError("planner 'de' needs a prior: pass prior=DiffusionPrior.load(path)")
        check_prior_fits(prior, budget)
        config = replace(settings, population=n, iterations=t, record=record)
        return RecedingHorizonPlanner(
            prior, objective, config, seed, device, safeguards, final_decoder, schedule
        )
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
            **tuning,
        )
        return make_cem(*shape, config, seed, safeguards)
    if kind == "icem":
        config = ICEMConfig(population=n, iterations=t, **tuning)
        return ICEMPlanner(*shape, config, seed, record, safeguards)
    if kind == "mppi":
        config = MPPIConfig(population=n, iterations=t, **tuning)
        return MPPIPlanner(*shape, config, seed, record, safeguards)
    if kind == "random":
        return RandomShootingPlanner(*shape, n, t, seed, record, safeguards)
    raise ValueError(f"unknown planner {kind!r}; choose one of {PLANNERS}")


def check_prior_fits(prior: DiffusionPrior, budget: Budget) -> None:
    """Raise ValueError unless ``prior`` decodes the budget's plans: K knots of A actions,
    interpolated to H steps as the budget's schedule says."""
    planned = (prior.knot_schedule, prior.latent_shape[1])
    if planned != (budget.schedule, budget.action_dim):
        theirs, ours = prior.knot_schedule, budget.schedule
        raise ValueError(
            f"the prior plans {theirs.knots} knots of {prior.latent_shape[1]} actions over "
            f"H={theirs.horizon} steps ({theirs.interpolation}) but the planner needs "
            f"{ours.knots} knots of {budget.action_dim} over H={ours.horizon} "
            f"({ours.interpolation}): train a prior for this task's horizon, knots, "
            "interpolation and action size (experiments/train_prior.py), or plan with the "
            "prior's"
        )


def sub_env_seed(seed: int, index: int) -> int:
    """The planner seed of sub-env ``index`` of a policy seeded with ``seed``: distinct per
    sub-env, reproducible, and ``seed`` itself for sub-env 0 (a single env)."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
