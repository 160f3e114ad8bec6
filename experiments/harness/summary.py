"""Summaries of an evaluation grid's episodes: per-row intervals and paired comparisons.

Computed from ``episodes.csv`` records alone. Each task is judged by one main metric: the
success rate on tasks that end in success or failure (the unicycle family), the return on
MuJoCo tasks, which have no success. Diffusion Elites is compared with each baseline by the
mean paired difference of that metric over the seeds both ran. :mod:`.report` writes them as
results.md, :mod:`.plots` draws them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.harness.episodes import NO_BUDGET, has_goal
from experiments.harness.grid import Row
from experiments.harness.statistics import (
    Interval,
    mean_interval,
    paired_difference,
    proportion_interval,
)

METRICS: dict[str, tuple[str, Callable[[np.ndarray], Interval]]] = {
    "success": ("success rate", proportion_interval),
    "collision": ("collision rate", proportion_interval),
    "return": ("return", mean_interval),
    "steps": ("steps", mean_interval),
    "mean_abs_action_change": ("mean abs action change", mean_interval),
}
"""``episodes.csv`` column -> (name in tables, its interval: Wilson for rates, t for means)."""

GOAL_METRICS = ("success", "collision")
"""Metrics of tasks that end in success or failure only; MuJoCo tasks have neither."""


def main_metric(env: str) -> str:
    """The column ``env`` is judged by: ``success`` for goal tasks, ``return`` otherwise."""
    return "success" if has_goal(env) else "return"


def metrics_of(env: str) -> list[str]:
    """The metric columns shown for ``env``, main metric first."""
    shown = [name for name in METRICS if has_goal(env) or name not in GOAL_METRICS]
    return sorted(shown, key=lambda name: name != main_metric(env))


BUDGET_COLUMNS = ("budget", "population", "iterations")


DEFAULTS = {field.name: field.default for field in dataclasses.fields(Row)}


def variant(row: Row) -> dict[str, Any]:
    """What tells rows of one task and budget apart: the planner, and any further dimension of
    :class:`Row` where the row departs from its default (say ``reward: world-model``); one line
    in the plots."""
    return {
        k: v
        for k, v in row.columns().items()
        if k == "planner" or (k != "env" and k not in BUDGET_COLUMNS and v != DEFAULTS.get(k))
    }


def row_name(row: Row) -> str:
    """The row's :func:`variant` in one label (``de[shift]``, ``de world-model``)."""
    return " ".join(str(value) for value in variant(row).values())


def _setting(row: Row) -> dict[str, Any]:
    """What a planner must share with another to be compared with it: all but planner and
    budget (the task, and any further dimension of :class:`Row`)."""
    return {k: v for k, v in row.columns().items() if k != "planner" and k not in BUDGET_COLUMNS}


@dataclass(frozen=True)
class RowStats:
    """One row's episodes summarised: an interval per metric, evaluations and control rate."""

    row: Row
    by_seed: dict[int, dict[str, Any]]
    """The row's episode records by seed (for paired comparisons)."""
    metrics: dict[str, Interval]
    evals_mean: float
    """Reward evaluations per control step, mean over episodes of each episode's mean."""
    evals_max: int
    control_hz: Interval | None
    """Control steps per second; None when an episode ran beside others (workers > 1)."""


def summarise_rows(rows: list[Row], records: list[dict[str, Any]]) -> list[RowStats]:
    """:class:`RowStats` of each of ``rows`` (in that order) from its ``episodes.csv`` records."""
    stats = []
    for row in rows:
        mine = [record for record in records if _same_row(record, row)]
        column = {name: np.asarray([r[name] for r in mine]) for name in mine[0]}
        alone = bool(np.all(column["workers"] == 1))
        stats.append(
            RowStats(
                row=row,
                by_seed={r["seed"]: r for r in mine},
                metrics={name: METRICS[name][1](column[name]) for name in metrics_of(row.env)},
                evals_mean=float(column["reward_evals_per_step"].mean()),
                evals_max=int(column["max_reward_evals_per_step"].max()),
                control_hz=mean_interval(column["control_hz"]) if alone else None,
            )
        )
    return stats


def _same_row(record: dict[str, Any], row: Row) -> bool:
    return all(record[name] == value for name, value in row.columns().items())


@dataclass(frozen=True)
class Comparison:
    """Diffusion Elites minus a baseline on the seeds both ran, in the task's main metric."""

    diffusion_elites: RowStats
    baseline: RowStats
    difference: Interval


def paired_comparisons(stats: list[RowStats]) -> list[Comparison]:
    """Each DE row against each baseline row of its task at its budget, and each agent row;
    each further DE variant (a warm start, a decoder) against the first DE row of its task and
    budget."""
    comparisons = []
    first_de: dict[tuple, RowStats] = {}
    for mine in (s for s in stats if s.row.planner == "de"):
        first = first_de.setdefault((tuple(_setting(mine.row).items()), mine.row.budget), mine)
        for other in stats:
            if other is mine or _setting(other.row) != _setting(mine.row):
                continue
            if other.row.planner == "de" and other is not first:
                continue
            if other.row.budget not in (mine.row.budget, NO_BUDGET):
                continue
            seeds = sorted(mine.by_seed.keys() & other.by_seed.keys())
            metric = main_metric(mine.row.env)
            difference = paired_difference(
                np.asarray([mine.by_seed[s][metric] for s in seeds]),
                np.asarray([other.by_seed[s][metric] for s in seeds]),
            )
            comparisons.append(Comparison(mine, other, difference))
    return comparisons
