"""The report of an evaluation grid: per-row intervals, paired comparisons, results.md, plots.

Everything here is computed from the grid's ``episodes.csv`` records alone, so a report can be
rewritten at any time from the log. Each task is judged by one main metric: the success rate
on tasks that end in success or failure (the unicycle family), the return on MuJoCo tasks,
which have no success. Diffusion Elites is compared with each baseline by the mean paired
difference of that metric over the seeds both ran.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import (
    LogLocator,
    NullFormatter,
    NullLocator,
    StrMethodFormatter,
)

from envs.registry import get_task
from experiments.harness.grid import NO_BUDGET, Row
from experiments.harness.statistics import (
    CONFIDENCE,
    Interval,
    mean_interval,
    paired_difference,
    proportion_interval,
)
from planner.safeguards import Safeguards

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


def has_goal(env: str) -> bool:
    """Whether ``env`` ends in success or failure (the unicycle tasks), not only a return."""
    return get_task(env).family == "unicycle"


def main_metric(env: str) -> str:
    """The column ``env`` is judged by: ``success`` for goal tasks, ``return`` otherwise."""
    return "success" if has_goal(env) else "return"


def metrics_of(env: str) -> list[str]:
    """The metric columns shown for ``env``, main metric first."""
    shown = [name for name in METRICS if has_goal(env) or name not in GOAL_METRICS]
    return sorted(shown, key=lambda name: name != main_metric(env))


BUDGET_COLUMNS = ("budget", "population", "iterations")


DEFAULTS = {name: field.default for name, field in Row.__dataclass_fields__.items()}


def _variant(row: Row) -> dict[str, Any]:
    """What tells rows of one task and budget apart: the planner, and any further dimension of
    :class:`Row` where the row departs from its default (say ``reward: world-model``); one line
    in the plots."""
    return {
        k: v
        for k, v in row.columns().items()
        if k == "planner" or (k != "env" and k not in BUDGET_COLUMNS and v != DEFAULTS.get(k))
    }


def _name(row: Row) -> str:
    """The row's :func:`_variant` in one label (``de[shift]``, ``de world-model``)."""
    return " ".join(str(value) for value in _variant(row).values())


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
    """Each DE row against each baseline row of its task at its budget, and each agent row."""
    comparisons = []
    for mine in (s for s in stats if s.row.planner == "de"):
        for other in stats:
            if other.row.planner == "de" or _setting(other.row) != _setting(mine.row):
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


def machine() -> str:
    """The machine in one line: cores, CPU model, torch, mujoco and Python versions."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0].split(":", 1)[1].strip() if names else model
    return (
        f"{os.cpu_count()} cores, {model}, torch {torch.__version__}, mujoco "
        f"{mujoco.__version__}, Python {platform.python_version()}"
    )


PLOTS = {"main_metric": "main_metric.png", "control_rate": "control_rate.png"}


def write_report(
    folder: Path,
    rows: list[Row],
    records: list[dict[str, Any]],
    commands: list[str],
    suite: str | None,
) -> str:
    """Write ``results.md`` and the plots (:data:`PLOTS`) into ``folder``; return the markdown.

    ``commands``: the command that started the grid, then the one that resumed it last if it
    differs (say, in ``--workers``).
    """
    stats = summarise_rows(rows, records)
    comparisons = paired_comparisons(stats)
    workers = sorted({record["workers"] for record in records})
    comparable = workers == [1]
    plot_main_metric(stats, folder / PLOTS["main_metric"])
    plot_control_rate(stats, folder / PLOTS["control_rate"], comparable)
    lines = [
        "# Evaluation results",
        "",
        "- command: "
        + " (started the grid), ".join(f"`{c}`" for c in commands)
        + (" (last run)" if len(commands) > 1 else ""),
        f"- grid: {'suite ' + suite if suite else 'custom'}, {len(rows)} rows, "
        f"{len(records)} episodes (`grid.json`, one line per episode in `episodes.csv`)",
        f"- machine: {machine()}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- workers: {', '.join(map(str, workers))}"
        + ("" if comparable else " (control rates of rows run with workers > 1: not comparable)"),
        f"- intervals: {CONFIDENCE:.0%}; `mean ± h` Student t for means, "
        "`rate [low, high]` Wilson score for rates",
        "",
    ]
    for env in dict.fromkeys(row.env for row in rows):
        lines += _env_section(env, [s for s in stats if s.row.env == env], comparisons)
    lines += [
        "## Plots",
        "",
        f"![main metric against reward evaluations per step]({PLOTS['main_metric']})",
        "",
        f"![control rate against budget]({PLOTS['control_rate']})",
        "",
    ]
    text = "\n".join(lines)
    (folder / "results.md").write_text(text)
    return text


def _env_section(env: str, stats: list[RowStats], comparisons: list[Comparison]) -> list[str]:
    """The markdown of one task: its rows, then DE against each baseline."""
    metric = main_metric(env)
    seeds = sorted({seed for s in stats for seed in s.by_seed})
    names = [METRICS[name][0] for name in metrics_of(env)]
    variant = list(dict.fromkeys(k for s in stats for k in _variant(s.row)))
    header = [*variant, "budget", "evals/step mean (max)", *names, "control Hz", "episodes"]
    lines = [
        f"## {env}",
        "",
        f"Main metric: {METRICS[metric][0]}; seeds {_seed_range(seeds)}.",
        "",
        _help_line(env),
        "",
        *_table(
            header,
            [
                [
                    *(str(_variant(s.row).get(k, DEFAULTS.get(k, ""))) for k in variant),
                    s.row.budget,
                    f"{s.evals_mean:.4g} ({s.evals_max})",
                    *(str(s.metrics[name]) for name in metrics_of(env)),
                    "not comparable" if s.control_hz is None else str(s.control_hz),
                    str(len(s.by_seed)),
                ]
                for s in stats
            ],
        ),
        "",
    ]
    mine = [c for c in comparisons if c.diffusion_elites.row.env == env]
    if mine:
        lines += [
            f"Paired on the same seeds: {METRICS[metric][0]} of Diffusion Elites minus the "
            "baseline's (positive: DE is better).",
            "",
            *_table(
                ["DE", "baseline", "budget", "difference", "seeds"],
                [
                    [
                        _name(c.diffusion_elites.row),
                        _name(c.baseline.row),
                        c.diffusion_elites.row.budget,
                        str(c.difference),
                        str(c.difference.count),
                    ]
                    for c in mine
                ],
            ),
            "",
        ]
    return lines


def _help_line(env: str) -> str:
    """What every planner of ``env`` shares (planner.safeguards) and the baselines' tuning."""
    spec = get_task(env)
    guards = Safeguards(fill_action=spec.fill_action)
    fill = "repeat the last action" if guards.fill_action is None else str(guards.fill_action)
    safe = "on" if guards.safe_plan and guards.fill_action is not None else "off (no fill action)"
    tuned = "; ".join(
        f"{kind} " + ", ".join(f"{k}={v}" for k, v in settings.items())
        for kind, settings in spec.tuning.items()
    )
    return (
        "Every planner alike: at most N x T reward evaluations per control step (its extra "
        f"candidates included); fill action {fill}; previous plan kept: "
        f"{'on' if guards.keep_previous_plan else 'off'}; safe plan: {safe}. "
        f"Tuned baselines (experiments/tune_baselines.py): {tuned or 'package defaults'}."
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
        *("| " + " | ".join(cells) + " |" for cells in rows),
    ]


def _seed_range(seeds: list[int]) -> str:
    """``0-19`` for consecutive seeds, else the list."""
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    return ", ".join(map(str, seeds))


# Plots

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
    planners = list(dict.fromkeys(_name(s.row) for s in stats if s.row.budget != NO_BUDGET))
    for label in dict.fromkeys(_name(s.row) for s in stats):
        mine = [s for s in stats if _name(s.row) == label and value(s) is not None]
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
