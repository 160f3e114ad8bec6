"""Rows of several evaluate.py runs in one table per task and budget, paired against a base row.

    W=results/warm-start S=results/self-taught
    python experiments/compare_runs.py --base 'de[none]' \\
        --runs $W/uni-base,$W/uni-variants,$W/uni-shell,$W/mujoco-16x3,$W/mujoco-64x3
    python experiments/compare_runs.py --base sac:de \\
        --runs taught=$S/main,sac=$S/half-cheetah-sac-prior,sac=$S/reacher-sac-prior

``--runs``: evaluate.py ``--out`` folders, comma-separated, whose ``episodes.csv`` are read
together. ``LABEL=FOLDER`` names that folder's rows ``LABEL:<row>``, so one planner run twice
(say, with two priors) makes two rows; without labels, two runs holding the same row on the
same seed are refused. A row is its planner, and its reward when that is not the simulator.

Prints markdown: per task and budget, each row's main metric (success rate with its Wilson
interval on the unicycle tasks, return with its t interval elsewhere), steps, mean abs action
change, control rate (only where every episode ran alone, ``workers`` 1) and episode count,
with the paired differences of the main metric and of the steps to the ``--base`` row on the
seeds both ran (mean and 95% t interval).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.harness.cli import ScriptArgs, UsageError, arg, run_main
from experiments.harness.statistics import mean_interval, paired_difference
from experiments.harness.summary import METRICS, main_metric

Episodes = dict[tuple[str, str, str], dict[int, dict[str, Any]]]
"""(env, budget, row name) -> seed -> its ``episodes.csv`` record."""


@dataclass
class CompareArgs(ScriptArgs):
    """Arguments of compare_runs.py."""

    runs: str = arg("", "comma-separated evaluate.py --out folders, FOLDER or LABEL=FOLDER")
    base: str | None = arg(None, "the row every other row is paired against (de[none], sac:de)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.runs.strip():
            raise ValueError("--runs is required: evaluate.py --out folders, comma-separated")


def row_name(record: dict[str, str], label: str | None) -> str:
    """The row of an ``episodes.csv`` record: planner, then its reward if not the simulator;
    ``label:`` in front when its run is labelled."""
    name = record["planner"]
    if record.get("reward", "simulator") != "simulator":
        name += f" {record['reward']}"
    return name if label is None else f"{label}:{name}"


def read_runs(runs: str) -> Episodes:
    """The episodes of every run of ``--runs``, by task, budget, row and seed."""
    episodes: Episodes = defaultdict(dict)
    for entry in (part.strip() for part in runs.split(",") if part.strip()):
        label, _, folder = entry.rpartition("=")
        path = Path(folder) / "episodes.csv"
        if not path.is_file():
            raise UsageError(f"{path} does not exist: pass evaluate.py --out folders to --runs")
        with open(path, newline="") as file:
            for record in csv.DictReader(file):
                key = (record["env"], record["budget"], row_name(record, label or None))
                seed = int(record["seed"])
                if seed in episodes[key]:
                    raise UsageError(
                        f"{key[2]} on {key[0]} at {key[1]} ran seed {seed} in two of --runs: "
                        "label the runs (LABEL=FOLDER) to keep them apart"
                    )
                episodes[key][seed] = record
    return episodes


def values(episodes: dict[int, dict[str, Any]], seeds: list[int], column: str) -> np.ndarray:
    """Column ``column`` of the episodes of ``seeds``, as floats."""
    return np.array([float(episodes[seed][column]) for seed in seeds])


def table_row(name: str, episodes: dict, base: dict | None, metric: str) -> str:
    """One table line: the row ``name``'s ``episodes`` (seed -> record), paired against the
    ``base`` row's on their shared seeds (no pairing for the base itself or without one)."""
    seeds = sorted(episodes)
    shared = [] if base is None or base is episodes else [s for s in seeds if s in base]
    cells: list[Any] = [name]
    for column in (metric, "steps"):
        cells.append(METRICS[column][1](values(episodes, seeds, column)))
        cells.append(
            paired_difference(values(episodes, shared, column), values(base, shared, column))
            if shared
            else ""
        )
    alone = all(episodes[seed].get("workers", "1") == "1" for seed in seeds)
    cells += [
        mean_interval(values(episodes, seeds, "mean_abs_action_change")),
        mean_interval(values(episodes, seeds, "control_hz")) if alone else "-",
        len(seeds),
    ]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def main(args: CompareArgs) -> str:
    """Print the tables (markdown) and return them."""
    episodes = read_runs(args.runs)
    lines = []
    for env, budget in sorted({(env, budget) for env, budget, _ in episodes}):
        metric = main_metric(env)
        minus = f"minus {args.base}" if args.base else "minus base"
        lines += [
            "",
            f"### {env}, {budget}",
            "",
            f"| row | {metric} | {minus} | steps | {minus} | action change | Hz | n |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        base = episodes.get((env, budget, args.base)) if args.base else None
        for name in sorted(name for e, b, name in episodes if (e, b) == (env, budget)):
            lines.append(table_row(name, episodes[env, budget, name], base, metric))
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    run_main(main, CompareArgs, __doc__)
