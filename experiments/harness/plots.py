"""Plots of an evaluation grid's row summaries (the main metric and the control rate against
the budget, one panel per task, with 95% intervals as error bars) and of a prior's training
losses."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import (
    LogLocator,
    NullFormatter,
    NullLocator,
    StrMethodFormatter,
)

from experiments.harness.episodes import NO_BUDGET
from experiments.harness.grid import Row
from experiments.harness.statistics import Interval
from experiments.harness.summary import (
    GOAL_METRICS,
    METRICS,
    RowStats,
    main_metric,
    row_name,
)

DODGE = 1.04
"""Factor between neighbouring planners' x positions on the log axes."""


def _panels(count: int) -> tuple[Figure, list]:
    """A figure with ``count`` panels, at most three a line."""
    columns = min(3, count)
    lines = math.ceil(count / columns)
    figure = Figure(figsize=(4.8 * columns, 3.8 * lines), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, [figure.add_subplot(lines, columns, i + 1) for i in range(count)]


def _budget_axis(ax, stats: list[RowStats], label: Callable[[Row], str]) -> None:
    """Log x axis with plain-number ticks at the budgets N*T only (no 10^x, no minor ticks),
    wide enough that one budget alone does not stretch its points to the edges."""
    planned = {_candidates(s): s.row for s in stats if s.row.budget != NO_BUDGET}
    ax.set_xscale("log")
    if planned:
        ax.set_xticks(sorted(planned), [label(planned[x]) for x in sorted(planned)])
        low, high = ax.dataLim.intervalx if ax.has_data() else (min(planned), max(planned))
        ax.set_xlim(min(low, *planned) / 1.6, max(high, *planned) * 1.6)
    ax.xaxis.set_minor_locator(NullLocator())


def _candidates(stats: RowStats) -> int:
    """N x T of a planner's row: the candidates its budget scores per step."""
    return stats.row.population * stats.row.iterations


def _yerr(intervals: list[Interval]) -> np.ndarray:
    """(2, n) distances from each estimate to its bounds, as errorbar wants them.

    An infinite distance (one seed: no interval) is NaN, which errorbar leaves undrawn.
    """
    below = [i.mean - i.low for i in intervals]
    above = [i.high - i.mean for i in intervals]
    distances = np.asarray([below, above])
    return np.where(np.isfinite(distances), distances, np.nan)


def _draw_rows(
    ax, stats: list[RowStats], value: Callable[[RowStats], Interval | None], x, band: bool
) -> None:
    """One line with error bars per planner (:func:`_name`); a grey line (and ``band``: its
    interval) per agent, which has no budget.

    Planners are spread a few percent apart along x, so that equal points do not hide each
    other.
    """
    planners = list(dict.fromkeys(row_name(s.row) for s in stats if s.row.budget != NO_BUDGET))
    for label in dict.fromkeys(row_name(s.row) for s in stats):
        mine = [s for s in stats if row_name(s.row) == label and value(s) is not None]
        if not mine:
            continue
        intervals = [value(s) for s in mine]
        if mine[0].row.budget == NO_BUDGET:
            (agent,) = intervals
            ax.axhline(agent.mean, color="0.35", linestyle="--", label=f"{label} (agent)")
            if band and math.isfinite(agent.low) and math.isfinite(agent.high):
                ax.axhspan(agent.low, agent.high, alpha=0.12, color="0.35")
            continue
        mine, intervals = zip(
            *sorted(zip(mine, intervals, strict=True), key=lambda pair: x(pair[0])), strict=True
        )
        spread = DODGE ** (planners.index(label) - (len(planners) - 1) / 2)
        ax.errorbar(
            [x(s) * spread for s in mine],
            [i.mean for i in intervals],
            yerr=_yerr(list(intervals)),
            marker="o",
            capsize=3,
            label=label,
        )


def plot_main_metric(stats: list[RowStats], path: Path) -> None:
    """Each task's main metric against reward evaluations per step, 95% intervals as bars."""
    envs = list(dict.fromkeys(s.row.env for s in stats))
    figure, axes = _panels(len(envs))
    for ax, env in zip(axes, envs, strict=True):
        mine = [s for s in stats if s.row.env == env]
        metric = main_metric(env)
        _draw_rows(ax, mine, lambda s, m=metric: s.metrics[m], lambda s: s.evals_mean, band=True)
        _budget_axis(ax, mine, lambda row: str(row.population * row.iterations))
        ax.set_xlabel("reward evaluations per step (ticks at N x T)")
        ax.set_ylabel(METRICS[metric][0])
        if metric in GOAL_METRICS:
            ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"{env} ({len(mine[0].by_seed)} seeds)")
        ax.legend(fontsize=8)
    figure.savefig(path)


def plot_control_rate(stats: list[RowStats], path: Path, comparable: bool) -> None:
    """Control steps per second against the budget; rows run beside others are left out."""
    envs = list(dict.fromkeys(s.row.env for s in stats))
    figure, axes = _panels(len(envs))
    for ax, env in zip(axes, envs, strict=True):
        mine = [s for s in stats if s.row.env == env]
        _draw_rows(ax, mine, lambda s: s.control_hz, _candidates, band=False)
        _budget_axis(ax, mine, lambda row: row.budget)
        # Plain numbers at 1, 2 and 5 per decade: log axes label minor ticks as 4x10^2
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("budget N x T per step")
        ax.set_ylabel("control steps per second")
        ax.set_title(env)
        if any(s.control_hz is not None for s in mine):
            ax.legend(fontsize=8)
    if not comparable:
        figure.suptitle("not comparable: rows run with workers > 1 are left out")
    figure.savefig(path)


def plot_losses(history: dict, path: Path) -> None:
    """Training and validation loss against step, log scale."""
    figure = Figure(figsize=(6, 4), dpi=90)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    ax.plot(history["step"], history["train_loss"], label="train")
    ax.plot(history["step"], history["val_loss"], label="validation (EMA weights)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("v-prediction loss")
    ax.legend()
    figure.tight_layout()
    figure.savefig(path)
