"""Compare planners side by side on the same seeds and budgets; print a table, write JSON/CSV/PNG.

    python experiments/evaluate.py --envs unicycle-goal,unicycle-obstacles --episodes 50
    python experiments/evaluate.py --planners de --warm-starts none,shift,inversion

Each row is one (env, planner, budget) over the same episode seeds. A budget ``NxT`` gives every
planner N candidates x T iterations per control step (N*T reward evaluations; DE and CEM score
their executed plan once more). ``--warm-starts`` adds one DE row per warm-start mode.
``--rewards simulator,world-model`` adds one row per reward: candidates scored in the simulator
or by the task's learned world model (``--world-model``, default checkpoints/<env>-world-model.pt)
from the observation; the return is always the env's own.
``--workers`` runs rows in parallel processes: success and returns do not change, but control
rates then share the cores, so measure Hz with one worker.
"""

from __future__ import annotations

import csv
import multiprocessing
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from envs.registry import get_task, make_env
from experiments.harness.cli import (
    REPO_ROOT,
    arg,
    parse_args,
    print_table,
    run_folder,
    write_json,
)
from experiments.harness.episodes import run_episode, summarise
from experiments.harness.wiring import (
    load_prior,
    make_budget,
    make_objective,
    make_policy,
    planner_settings,
)


@dataclass
class EvalArgs:
    """Arguments of evaluate.py (comma-separated lists)."""

    envs: str = arg("unicycle-goal,unicycle-obstacles", "tasks")
    planners: str = arg("de,cem,icem,mppi,random", "planners (de = Diffusion Elites; sac = agent)")
    budgets: str = arg("8x2,16x2,32x3,64x4", "budgets NxT: population x iterations per step")
    warm_starts: str = arg("", "DE warm-start modes, one DE row each (default: the task's)")
    episodes: int = arg(50, "episodes per row; episode i uses seed seed+i")
    seed: int = arg(0, "first episode seed; planners are seeded with it too")
    max_steps: int | None = arg(None, "cut episodes after this many steps (default: the task's)")
    search_steps: int | None = arg(None, "DE: DDIM steps while searching (default: the task's)")
    final_steps: int | None = arg(None, "DE: DDIM steps of the executed plan (task default)")
    prior: str | None = arg(None, "DE prior checkpoint (default: each task's shipped prior)")
    rewards: str = arg("simulator", "planning rewards, one row each: simulator, world-model")
    world_model: str | None = arg(None, "world model (default: each task's shipped one)")
    workers: int = arg(1, "parallel processes (Hz is only comparable with 1)")
    out: str | None = arg(None, "also write the rows as JSON here")
    runs_dir: str = arg(str(REPO_ROOT / "runs"), "where the run folder is created")


@dataclass(frozen=True)
class Row:
    """One line of the comparison: what to run."""

    env: str
    planner: str
    population: int
    iterations: int
    warm_start: str = ""
    """DE only; empty: the task's default."""
    reward: str = "simulator"

    @property
    def label(self) -> str:
        return f"de[{self.warm_start}]" if self.warm_start else self.planner


def plan_rows(args: EvalArgs) -> list[Row]:
    """The grid of rows, DE expanded into its warm-start modes."""
    rows = []
    for env in _split(args.envs):
        for budget in _split(args.budgets):
            try:
                population, iterations = (int(v) for v in budget.lower().split("x"))
            except ValueError:
                message = f"budget {budget!r} must look like 64x4 (population x iterations)"
                raise SystemExit(message) from None
            for planner, reward in product(_split(args.planners), _split(args.rewards)):
                modes = _split(args.warm_starts) if planner == "de" else []
                rows += [
                    Row(env, planner, population, iterations, mode, reward)
                    for mode in modes or [""]
                ]
    return rows


def evaluate_row(job: tuple[Row, EvalArgs]) -> dict:
    """Run one row's episodes; return its summary with the row's labels."""
    row, args = job
    torch.set_num_threads(1)
    spec = get_task(row.env)
    prior = load_prior(row.planner, spec, args.prior)
    env = make_env(row.env)
    objective = make_objective(spec, env, row.reward, args.world_model, args.seed)
    budget = make_budget(spec, env, prior, row.population, row.iterations)
    settings = planner_settings(spec, args.search_steps, args.final_steps, row.warm_start or None)
    policy = make_policy(env, spec, row.planner, objective, budget, args.seed, prior, settings)
    max_steps = args.max_steps or spec.max_steps
    episodes = [
        run_episode(env, policy, args.seed + i, max_steps, None) for i in range(args.episodes)
    ]
    env.close()
    summary = summarise(episodes, budget)
    return {"env": row.env, "planner": row.label, "reward": row.reward, **summary}


def plot_rows(results: list[dict], path: Path) -> None:
    """Success rate and smoothness against reward evaluations per step, one panel pair per env."""
    envs = sorted({r["env"] for r in results})
    figure = Figure(figsize=(10, 3.5 * len(envs)), dpi=90)
    FigureCanvasAgg(figure)
    for index, env in enumerate(envs):
        success = figure.add_subplot(len(envs), 2, 2 * index + 1)
        smooth = figure.add_subplot(len(envs), 2, 2 * index + 2)
        for key in sorted({(r["planner"], r["reward"]) for r in results if r["env"] == env}):
            rows = sorted(
                (r for r in results if (r["env"], r["planner"], r["reward"]) == (env, *key)),
                key=lambda r: r["reward_evals_per_step"],
            )
            evals = [r["reward_evals_per_step"] for r in rows]
            success.plot(evals, [r["success_rate"] for r in rows], marker="o", label="/".join(key))
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
    rows = plan_rows(args)
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
        "reward",
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


if __name__ == "__main__":
    main(parse_args(EvalArgs, __doc__))
