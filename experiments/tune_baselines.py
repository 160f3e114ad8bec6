"""Tune the baselines per task, on held-out seeds, and record what was chosen and why.

    python experiments/tune_baselines.py
    python experiments/tune_baselines.py --out results/tuning \\
        --tuning-file envs/baseline_tuning.json --overwrite   # what the tasks use, replaced

For each task, at its default budget: action-space CEM executing its best sample or its elite
mean, and MPPI over a small grid of noise std x temperature. Every setting runs on the same
tuning seeds (1000 on, never the evaluation seeds 0-19), and per task and baseline the setting
with the best main metric wins (success rate on the unicycle tasks, ties broken by return;
return on the MuJoCo tasks). ``--out`` (default: a new run folder,
``runs/tune_baselines__tuning__<time>/``) gets the sweep (``episodes.csv``, ``results.md`` with
intervals, ``tuning.md`` with the choices) and, unless ``--tuning-file`` names another file,
``baseline_tuning.json``: the shipped choices (``envs/baseline_tuning.json``, which
``envs.registry`` reads into each task's ``TaskSpec.tuning``) with the tuned tasks' replaced.
The shipped file changes only when named: ``--tuning-file envs/baseline_tuning.json
--overwrite``. Resumable like ``evaluate.py``: rerun the same command with the same ``--out`` to
continue (a folder of other tasks or other files is refused).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.registry import TUNING_FILE, get_task
from experiments.harness.cli import ScriptArgs, arg, command_line, run_main
from experiments.harness.episodes import has_goal
from experiments.harness.grid import EpisodeLog, GridSettings, Row, run_grid
from experiments.harness.outputs import (
    check_output,
    claim_run_folder,
    new_run_folder,
    overwrite_arg,
)
from experiments.harness.report import write_report
from planner.files import atomic_write

TASKS = ("unicycle-goal", "unicycle-obstacles", "reacher", "half-cheetah", "hopper")
SETTINGS = {
    "cem": [{"execute": execute} for execute in ("best", "mean")],
    "mppi": [
        {"noise_std": noise, "temperature": temperature}
        for noise, temperature in itertools.product((0.2, 0.5), (0.1, 0.5))
    ],
}
"""The settings tried per baseline: CEM's executed plan, MPPI's noise and temperature."""
SEEDS = {"unicycle-goal": 10, "unicycle-obstacles": 10, "reacher": 5}
"""Tuning episodes per task (others: 2, of 200 steps); seeds start at FIRST_SEED."""
FIRST_SEED = 1000
MAX_STEPS = {"half-cheetah": 200, "hopper": 200}


@dataclass
class TuneArgs(ScriptArgs):
    """Arguments of tune_baselines.py."""

    tasks: str = arg(",".join(TASKS), "comma-separated tasks to tune")
    out: str | None = arg(
        None, "folder of the sweep; the same folder again resumes (default: a new one in runs/)"
    )
    tuning_file: str | None = arg(
        None, "where the choices go (default: baseline_tuning.json in --out)"
    )
    overwrite: bool = overwrite_arg()
    workers: int = arg(1, "parallel processes", minimum=1)


def score(records: list[dict], env: str) -> tuple[float, float]:
    """How good a setting did on ``env``: (success rate, mean return) or (mean return, 0)."""
    returns = float(np.mean([r["return"] for r in records]))
    if has_goal(env):
        return float(np.mean([r["success"] for r in records])), returns
    return returns, 0.0


def output_paths(args: TuneArgs) -> tuple[Path, Path]:
    """The sweep's folder and the file of the choices: ``--out`` (default: a new run folder)
    and ``--tuning-file`` (default: ``baseline_tuning.json`` in that folder)."""
    out = Path(args.out) if args.out else new_run_folder("tune_baselines", "tuning")
    return out, Path(args.tuning_file) if args.tuning_file else out / "baseline_tuning.json"


def main(args: TuneArgs) -> dict:
    """Run the sweep, write the choices; return them by task and baseline."""
    tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    out, tuning_file = output_paths(args)
    if args.tuning_file:  # the default, in --out, is the run's own: resuming rewrites it
        check_output(tuning_file, args.overwrite, flag="--tuning-file")
    rows, episodes = {}, []
    for task in tasks:
        spec = get_task(task)
        n, t = spec.planner.get("population", 64), spec.planner.get("iterations", 4)
        seeds = range(FIRST_SEED, FIRST_SEED + SEEDS.get(task, 2))
        for kind, options in SETTINGS.items():
            for option in options:
                row = Row(task, kind, n, t, tuning=tuple(option.items()))
                rows[row] = (task, kind, option)
                episodes += [(row, seed) for seed in seeds]
    claim_run_folder(out, {"tasks": tasks})
    log = EpisodeLog(out / "episodes.csv")
    records = []
    for task in tasks:
        mine = [(row, seed) for row, seed in episodes if row.env == task]
        task_settings = GridSettings(max_steps=MAX_STEPS.get(task))
        records += run_grid(mine, task_settings, log, args.workers)
    write_report(out, list(rows), records, [command_line()], None)

    chosen = json.loads(TUNING_FILE.read_text()) if TUNING_FILE.exists() else {}
    lines = ["# Baseline tuning", "", f"- command: `{command_line()}`", ""]
    lines += [
        "| task | baseline | setting | main metric | chosen |",
        "| --- | --- | --- | --- | --- |",
    ]
    for task in tasks:
        for kind in SETTINGS:
            scored = []
            for row, (row_task, row_kind, option) in rows.items():
                if (row_task, row_kind) == (task, kind):
                    mine = [r for r in records if r["planner"] == row.label and r["env"] == task]
                    scored.append((score(mine, task), option))
            best = max(scored, key=lambda item: item[0])[1]
            chosen.setdefault(task, {})[kind] = best
            for value, option in scored:
                shown = f"{value[0]:.3g}" + (f" (return {value[1]:.3g})" if has_goal(task) else "")
                mark = "yes" if option == best else ""
                lines.append(f"| {task} | {kind} | {option} | {shown} | {mark} |")
    (out / "tuning.md").write_text("\n".join(lines) + "\n")
    with atomic_write(tuning_file, "w") as file:
        json.dump(chosen, file, indent=2)
        file.write("\n")
    print("\n".join(lines))
    print(f"wrote {tuning_file} and {out / 'tuning.md'}")
    return chosen


if __name__ == "__main__":
    run_main(main, TuneArgs, __doc__)
