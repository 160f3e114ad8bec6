"""The report of an evaluation grid: results.md with per-row intervals, paired comparisons,
the command and the machine, and the plots beside it (:mod:`.summary`, :mod:`.plots`).

Everything is computed from the grid's ``episodes.csv`` records alone, so a report can be
rewritten at any time from the log.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import mujoco
import torch

from envs.registry import get_task
from experiments.harness.grid import Row
from experiments.harness.plots import plot_control_rate, plot_main_metric
from experiments.harness.statistics import CONFIDENCE
from experiments.harness.summary import (
    DEFAULTS,
    METRICS,
    Comparison,
    RowStats,
    main_metric,
    metrics_of,
    paired_comparisons,
    row_name,
    summarise_rows,
    variant,
)
from planner.safeguards import Safeguards


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
    shown = list(dict.fromkeys(k for s in stats for k in variant(s.row)))
    header = [*shown, "budget", "evals/step mean (max)", *names, "control Hz", "episodes"]
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
                    *(str(variant(s.row).get(k, DEFAULTS.get(k, ""))) for k in shown),
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
                        row_name(c.diffusion_elites.row),
                        row_name(c.baseline.row),
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
        f"{'on' if guards.keep_previous_plan else 'off'}; safe plan: {safe}; the task's value at "
        f"the horizon's end (every planner row, unless the command names another): "
        f"{spec.value_text}. "
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
