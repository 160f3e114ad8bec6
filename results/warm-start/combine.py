"""One table of every warm-start row in this folder's runs, paired against the restart.

Reads ``episodes.csv`` of the :data:`RUNS` below this folder (the evaluate.py runs of
results/warm-start/README.md) and prints, per task and budget, each warm start's main metric
(success rate with its Wilson interval, or return), steps, mean abs action change and control
rate, with the paired differences of the main metric and the steps to ``de[none]`` on the same
seeds (95% t interval).

    PYTHONPATH=. python results/warm-start/combine.py > results/warm-start/table.md
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from experiments.harness.statistics import mean_interval, paired_difference, proportion_interval

HERE = Path(__file__).resolve().parent
GOAL_TASKS = ("unicycle-goal", "unicycle-obstacles")
RUNS = ("uni-base", "uni-variants", "uni-shell", "mujoco-16x3", "mujoco-64x3")
"""The runs compared (uni-hz repeats seeds of uni-base and uni-variants, for its control rate)."""


def values(runs: dict, seeds: list[int], name: str) -> np.ndarray:
    """Column ``name`` of the episodes ``runs`` (seed -> record) of ``seeds``, as floats."""
    return np.array([float(runs[seed][name]) for seed in seeds])


def row(planner: str, runs: dict, base: dict, metric: str, goal: bool) -> str:
    """One table line: ``runs`` of ``planner`` against the restart's ``base`` (seed -> record)."""
    seeds = sorted(runs)
    shared = [seed for seed in seeds if seed in base]
    main = values(runs, seeds, metric)
    main = proportion_interval(main > 0) if goal else mean_interval(main)
    cells = [planner, main]
    for name in (metric, "steps"):
        if name == "steps":
            cells.append(mean_interval(values(runs, seeds, "steps")))
        paired = paired_difference(values(runs, shared, name), values(base, shared, name))
        cells.append("" if planner == "de[none]" else paired)
    cells += [
        mean_interval(values(runs, seeds, "mean_abs_action_change")),
        mean_interval(values(runs, seeds, "control_hz")),
        len(seeds),
    ]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def main() -> None:
    episodes = defaultdict(dict)  # (env, budget, planner) -> seed -> record
    for run in RUNS:
        for record in csv.DictReader((HERE / run / "episodes.csv").open()):
            key = (record["env"], record["budget"], record["planner"])
            episodes[key][int(record["seed"])] = record
    for env, budget in sorted({(env, budget) for env, budget, _ in episodes}):
        goal = env in GOAL_TASKS
        metric = "success" if goal else "return"
        print(f"\n### {env}, {budget}\n")
        header = f"warm start | {metric} | minus none | steps | minus none | action change | Hz | n"
        print(f"| {header} |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        base = episodes.get((env, budget, "de[none]"), {})
        for planner in sorted(p for e, b, p in episodes if (e, b) == (env, budget)):
            print(row(planner, episodes[env, budget, planner], base, metric, goal))


if __name__ == "__main__":
    main()
