"""Compare planners side by side on the same seeds and budgets; print a table, write JSON/CSV/PNG.

    python experiments/evaluate.py --envs unicycle-goal,unicycle-obstacles --episodes 50
    python experiments/evaluate.py --planners de --warm-starts none,shift,inversion

Each row is one (env, planner, budget) over the same episode seeds. A budget ``NxT`` gives every
planner N candidates x T iterations per control step (N*T reward evaluations; DE and CEM score
their executed plan once more). ``--warm-starts`` adds one DE row per warm-start mode.
``--workers`` runs rows in parallel processes: success and returns do not change, but control
rates then share the cores, so measure Hz with one worker.
"""

from __future__ import annotations

import csv
import multiprocessing
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from envs.registry import get_task, make_env, task_names
from experiments.harness.cli import (
    REPO_ROOT,
    ScriptArgs,
    arg,
    print_table,
    run_folder,
    run_main,
    write_json,
)
from experiments.harness.episodes import run_episode, summarise
from experiments.harness.wiring import (
    CONTROLLERS,
    load_prior,
    make_budget,
    make_policy,
    planner_settings,
)
from planner.mpc import WARM_STARTS


@dataclass
class EvalArgs(ScriptArgs):
    """Arguments of evaluate.py (comma-separated lists)."""

    envs: str = arg("unicycle-goal,unicycle-obstacles", "tasks")
    planners: str = arg("de,cem,icem,mppi,random", "planners (de = Diffusion Elites; sac = agent)")
    budgets: str = arg("8x2,16x2,32x3,64x4", "budgets NxT: population x iterations per step")
    warm_starts: str = arg("", "DE warm-start modes, one DE row each (default: the task's)")
    episodes: int = arg(50, "episodes per row; episode i uses seed seed+i", minimum=1)
    seed: int = arg(0, "first episode seed; planners are seeded with it too")
    max_steps: int | None = arg(
        None, "cut episodes after this many steps (default: the task's)", minimum=1
    )
    search_steps: int | None = arg(
        None, "DE: DDIM steps while searching (default: the task's)", minimum=1
    )
    final_steps: int | None = arg(
        None, "DE: DDIM steps of the executed plan (task default)", minimum=1
    )
    prior: str | None = arg(None, "DE prior checkpoint (default: each task's shipped prior)")
    force_prior: bool = arg(False, "use --prior even if it was trained for another task")
    workers: int = arg(1, "parallel processes (Hz is only comparable with 1)", minimum=1)
    out: str | None = arg(None, "also write the rows as JSON here")
    runs_dir: str = arg(str(REPO_ROOT / "runs"), "where the run folder is created")

    def __post_init__(self) -> None:
        super().__post_init__()
        lists = {"envs": task_names(), "planners": CONTROLLERS, "warm_starts": WARM_STARTS}
        for name, known in lists.items():
            unknown = [item for item in _split(getattr(self, name)) if item not in known]
            if unknown:
                raise ValueError(
                    f"--{name.replace('_', '-')}: unknown {unknown}; pick from {', '.join(known)}"
                )
        if not _split(self.envs) or not _split(self.planners):
            raise ValueError("--envs and --planners each need at least one name")
        _budgets(self.budgets)


@dataclass(frozen=True)
class Row:
    """One line of the comparison: what to run."""

    env: str
    planner: str
    population: int
    iterations: int
    warm_start: str = ""
    """DE only; empty: the task's default."""

    @property
    def label(self) -> str:
        return f"de[{self.warm_start}]" if self.warm_start else self.planner


def plan_rows(args: EvalArgs) -> list[Row]:
    """The grid of rows, DE expanded into its warm-start modes."""
    rows = []
    for env in _split(args.envs):
        for population, iterations in _budgets(args.budgets):
            for planner in _split(args.planners):
                modes = _split(args.warm_starts) if planner == "de" else []
                rows += [Row(env, planner, population, iterations, mode) for mode in modes or [""]]
    return rows


def evaluate_row(job: tuple[Row, EvalArgs]) -> dict:
    """Run one row's episodes; return its summary with the row's labels."""
    row, args = job
    torch.set_num_threads(1)
    spec = get_task(row.env)
    prior = load_prior(row.planner, spec, args.prior, force=args.force_prior)
    env = make_env(row.env)
    objective = spec.make_objective(env)
    budget = make_budget(spec, env, prior, row.population, row.iterations)
    settings = planner_settings(spec, args.search_steps, args.final_steps, row.warm_start or None)
    policy = make_policy(env, spec, row.planner, objective, budget, args.seed, prior, settings)
    max_steps = spec.max_steps if args.max_steps is None else args.max_steps
    episodes = [
        run_episode(env, policy, args.seed + i, max_steps, None) for i in range(args.episodes)
    ]
    env.close()
    summary = summarise(episodes, budget)
    return {"env": row.env, "planner": row.label, **summary}


def plot_rows(results: list[dict], path: Path) -> None:
    """Success rate and smoothness against reward evaluations per step, one panel pair per env."""
    envs = sorted({r["env"] for r in results})
    figure = Figure(figsize=(10, 3.5 * len(envs)), dpi=90)
    FigureCanvasAgg(figure)
    for index, env in enumerate(envs):
        success = figure.add_subplot(len(envs), 2, 2 * index + 1)
        smooth = figure.add_subplot(len(envs), 2, 2 * index + 2)
        for planner in sorted({r["planner"] for r in results if r["env"] == env}):
            rows = sorted(
                (r for r in results if r["env"] == env and r["planner"] == planner),
                key=lambda r: r["reward_evals_per_step"],
            )
            evals = [r["reward_evals_per_step"] for r in rows]
            success.plot(evals, [r["success_rate"] for r in rows], marker="o", label=planner)
            smooth.plot(evals, [r["mean_abs_action_change"] for r in rows], marker="o")
        for ax, ylabel in ((success, "success rate"), (smooth, "mean |a_t - a_{t-1}|")):
            ax.set_xscale("log")
            ax.set_xlabel("reward evaluations per step")
            ax.set_ylabel(ylabel)
            ax.set_title(env)
        success.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def main(args: EvalArgs) -> list[dict]:
    """Run every row, write the run folder and print the comparison; return the rows' results."""
    rows = plan_rows(args)
    # Refuse a missing or foreign prior now, not after the rows before it have run
    for env in dict.fromkeys(row.env for row in rows if row.planner == "de"):
        load_prior("de", get_task(env), args.prior, force=args.force_prior)
    folder = run_folder(Path(args.runs_dir), ["evaluate", f"s{args.seed}"], args)
    jobs = [(row, args) for row in rows]
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = list(tqdm(pool.imap(evaluate_row, jobs), total=len(jobs), desc="rows"))
    else:
        results = [evaluate_row(job) for job in tqdm(jobs, desc="rows")]
    write_json(folder / "results.json", results)
    if args.out:
        write_json(Path(args.out), results)
    with open(folder / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    plot_rows(results, folder / "comparison.png")
    columns = [
        "env",
        "planner",
        "population",
        "iterations",
        "reward_evals_per_step",
        "success_rate",
        "collision_rate",
        "mean_return",
        "mean_steps",
        "mean_steps_to_success",
        "mean_abs_action_change",
        "control_hz",
        "plan_ms_p50",
    ]
    print_table(results, columns, {"reward_evals_per_step": ".0f", "control_hz": ".1f"})
    print(f"run folder: {folder}  (config: {asdict(args)})")
    return results


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _budgets(text: str) -> list[tuple[int, int]]:
    """``"8x2,64x4"`` -> ``[(8, 2), (64, 4)]`` (population, iterations), each at least 1."""
    budgets = []
    for budget in _split(text):
        parts = budget.lower().split("x")
        if len(parts) != 2 or not all(part.isdigit() and int(part) >= 1 for part in parts):
            raise ValueError(
                f"--budgets: {budget!r} must look like 64x4 (population x iterations, each >= 1)"
            )
        budgets.append((int(parts[0]), int(parts[1])))
    if not budgets:
        raise ValueError("--budgets needs at least one budget NxT, e.g. 64x4")
    return budgets


if __name__ == "__main__":
    run_main(main, EvalArgs, __doc__)
