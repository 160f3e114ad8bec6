"""Does a world model's planner believe its plans? Episodes planned with a world model in the
real env, each chosen plan also scored by the simulator.

    python experiments/check_world_model.py --env hopper
    python experiments/check_world_model.py --env half-cheetah --world-model runs/wm.pt --episodes 1
    python experiments/check_world_model.py --env walker2d --value-agent none --max-steps 100

Each episode plans with the world model from the observation, exactly as ``run_mpc.py --reward
world-model`` (the same flags: ``--world-model``, ``--prior``, ``--propagation``, ...). At every
control step the plan it chose is also scored by the task's simulator from the env's state at that
step, open loop, with the same helpers (cost terms, termination cost, value at the horizon's
end). Where the model's score stays above the simulator's, the planner is steering by an error of
its model: the steps just before a fall show which states the model has not learned. A model can
score the chosen plan right and still choose badly, so the planner's whole last population is
scored by the simulator too: how the model ranks those candidates against the simulator (rank
correlation, the share of its elites that are the simulator's, and the regret: the simulator's
best candidate's score minus its score of the model's best) says whether the search is led
where the simulator would lead it, and the spread of the candidates' scores against the part of
the model's error that differs between them says why. The
episode's own transitions then give the model's open-loop k-step error on the states its
planner drives the system into (k = 1, 5, 10, 16; per observation dimension, in units of the std
of the model's training observations).

Writes into ``--out`` (default ``runs/check_world_model__<env>__<time>/``): ``steps.csv`` (seed,
step, the model's and the simulator's score of the chosen plan, the env's reward, the ranking of
the last population), ``summary.json`` (the command, each episode's return, steps, mean scores and
ranking, the step the model overrated its plan most, and the k-step errors) and ``scores.png``
(both scores and the rank correlation against the step, one row per episode). Seeds 0-9 are the
test seeds: look at models on others (the default is 1000).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import spearmanr
from tqdm import tqdm

from envs.planning_state import read_planning_state
from envs.registry import make_env
from experiments.harness.cli import (
    ScriptArgs,
    arg,
    check_device,
    command_line,
    format_cell,
    print_table,
    run_main,
    write_json,
)
from experiments.harness.collection import PlannerSource, collect_episode, transitions
from experiments.harness.outputs import check_output, new_run_folder, overwrite_arg
from experiments.harness.world_models import (
    particles_arg,
    propagation_arg,
    world_model_reward_arg,
    world_model_task_arg,
)
from planner.threads import use_planning_threads
from planner.world_model import k_step_errors
from policies.planners import PLANNERS
from policies.setup import Planning, PlanningSetup

KS = (1, 5, 10, 16)
"""Open-loop steps of the k-step error (16: the H of the shipped priors)."""
OUTPUTS = ("steps.csv", "summary.json", "scores.png")
RANKING = ("rank_correlation", "elite_overlap", "regret", "spread", "reordering_error")
"""How the model ranked a population against the simulator (:func:`population_ranking`)."""


@dataclass
class CheckArgs(ScriptArgs):
    """Arguments of check_world_model.py (None: the task's default)."""

    env: str = world_model_task_arg("hopper")
    world_model: str | None = arg(
        None, "world model checkpoint (default: checkpoints/<env>-world-model.pt)"
    )
    seed: int = arg(1000, "episode i uses env seed seed+i (0-9 are the test seeds)", minimum=0)
    episodes: int = arg(3, "episodes to plan", minimum=1)
    max_steps: int = arg(200, "steps per episode at most", minimum=1)
    planner: str = arg("de", "planner with the world model", PLANNERS)
    population: int | None = arg(None, "N per iteration (default: the task's)", minimum=1)
    iterations: int | None = arg(None, "T per control step (default: the task's)", minimum=1)
    prior: str | None = arg(None, "DE's prior checkpoint (default: the task's shipped one)")
    propagation: str | None = propagation_arg()
    particles: int | None = particles_arg()
    world_model_reward: str | None = world_model_reward_arg()
    value_agent: str | None = arg(
        None,
        "SAC agent whose critic values the horizon's end (default: the task's; none: no value)",
    )
    value_weight: float | None = arg(None, "the value is multiplied by it (default: the task's)")
    device: str = arg("cpu", "torch device of the prior and the world model", check=check_device)
    threads: int | None = arg(None, "CPU cores planning may use (default: every one)", minimum=1)
    out: str | None = arg(None, "output folder (default: a new one under runs/)")
    overwrite: bool = overwrite_arg()


class CheckedPlanner(PlannerSource):
    """A source for :func:`~experiments.harness.collection.collect_episode`: a world model's
    planning, whose every chosen plan is also scored by ``simulator`` from the env's state
    (``progress``: anything with ``update(n)``, advanced by one per control step)."""

    def __init__(self, planning: Planning, simulator: Any, progress: Any = None) -> None:
        super().__init__(planning)
        self.simulator, self.progress = simulator, progress
        self._forget_scores()

    def begin(self, env: Any, length: int | None) -> None:
        """A new episode: no warm start, no scores."""
        super().begin(env, length)
        self._forget_scores()

    def _forget_scores(self) -> None:
        self.model_scores: list[float] = []
        self.simulator_scores: list[float] = []
        self.ranking: dict[str, list[float]] = {name: [] for name in RANKING}

    def act(self, env: Any, observation: np.ndarray, step: int) -> np.ndarray:
        """The planner's action from ``observation``; both scores of its plan are kept, and how
        the model ranked its last population (NaN on a step that recorded none)."""
        result = self.decide(env, observation)
        plans = result.plan[None]
        if result.candidates is not None:  # one rollout batch: the plan, then its population
            plans = np.concatenate([plans, result.candidates])
        scored = self.simulator(read_planning_state(env), plans)
        self.model_scores.append(float(result.predicted_reward))
        self.simulator_scores.append(float(scored[0]))
        ranked = dict.fromkeys(RANKING, math.nan)
        if result.candidates is not None:
            ranked = population_ranking(
                result.candidate_rewards, scored[1:], len(result.elite_indices)
            )
        for name in RANKING:
            self.ranking[name].append(ranked[name])
        if self.progress is not None:
            self.progress.update(1)
        return result.action


def population_ranking(model: np.ndarray, simulator: np.ndarray, elites: int) -> dict[str, float]:
    """How the model ranked one population against the simulator, over the candidates both
    scored finitely: ``rank_correlation`` (Spearman's), ``elite_overlap`` (the share of the
    model's top ``elites`` among the simulator's top ``elites``), ``regret`` (the simulator's
    best score minus its score of the model's best candidate; 0 when both pick the same), and
    why: ``spread``, the std of the simulator's scores over the population, against
    ``reordering_error``, the std of the model's error (model minus simulator) over it. An
    error the candidates share moves no rank; only the part that differs between them can, so
    the model ranks well where ``reordering_error`` is well below ``spread`` (a score merely
    scaled, which reorders nothing, counts as error here). NaN where fewer than two candidates
    remain, or the correlation of a constant score."""
    model, simulator = np.asarray(model, float), np.asarray(simulator, float)
    both = np.isfinite(model) & np.isfinite(simulator)
    if both.sum() < 2:
        return dict.fromkeys(RANKING, math.nan)
    model, simulator = model[both], simulator[both]
    top = min(max(elites, 1), len(model))
    model_top = set(np.argsort(-model, kind="stable")[:top].tolist())
    simulator_top = set(np.argsort(-simulator, kind="stable")[:top].tolist())
    constant = np.ptp(model) == 0 or np.ptp(simulator) == 0
    return {
        "rank_correlation": math.nan if constant else float(spearmanr(model, simulator)[0]),
        "elite_overlap": len(model_top & simulator_top) / top,
        "regret": float(simulator.max() - simulator[np.argmax(model)]),
        "spread": float(simulator.std()),
        "reordering_error": float((model - simulator).std()),
    }


def simulator_setup(model_setup: PlanningSetup) -> PlanningSetup:
    """The simulator's objective with the world model planner's helpers: its value (or none)
    and its cost terms, so both score the same thing."""
    value = model_setup.value()
    return PlanningSetup(
        model_setup.task,
        costs=model_setup.costs,
        value_agent=str(value[0]) if value else "none",
        value_weight=value[1] if value else None,
        device=model_setup.device,
    )


def episode_summary(episode: dict[str, np.ndarray], source: CheckedPlanner) -> dict[str, Any]:
    """One checked episode: what summary.json says of it, and both scores of every step
    (``model_scores``, ``simulator_scores``)."""
    model = np.asarray(source.model_scores)
    simulator = np.asarray(source.simulator_scores)
    overrated = model - simulator
    worst = int(np.nanargmax(overrated)) if np.isfinite(overrated).any() else None
    return {
        "return": float(episode["rewards"].sum()),
        "steps": len(episode["rewards"]),
        "terminated": bool(episode["terminated"][-1]),
        "mean_model_score": float(np.nanmean(model)),
        "mean_simulator_score": float(np.nanmean(simulator)),
        "most_overrated_step": worst,
        "most_overrated_by": None if worst is None else float(overrated[worst]),
        **{f"mean_{name}": finite_mean(source.ranking[name]) for name in RANKING},
        "model_scores": source.model_scores,
        "simulator_scores": source.simulator_scores,
        "rank_correlations": source.ranking["rank_correlation"],
    }


PER_STEP = ("model_scores", "simulator_scores", "rank_correlations")
""":func:`episode_summary`'s per-step lists, which summary.json leaves to steps.csv."""


def finite_mean(values: list[float]) -> float | None:
    """The mean of the finite ``values`` (None: none is)."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def own_state_errors(model: Any, recorded: list[dict[str, np.ndarray]]) -> dict[str, float | None]:
    """The model's open-loop k-step error (:data:`KS`) on the ``recorded`` episodes'
    transitions, per observation dimension in units of the std of its training observations
    (its input normaliser's scale); None where no episode has k steps."""
    data = transitions(recorded)
    keys = ("observations", "actions", "next_observations", "episode_index")
    scale = model.input_normalizer.scale[: model.config.obs_dim].cpu().numpy()
    found = k_step_errors(model, *(data[key] for key in keys), ks=KS, obs_scale=scale)
    return {str(k): v if math.isfinite(v) else None for k, v in found.items()}


def scores_figure(episodes: list[dict[str, Any]], env: str) -> Figure:
    """Each episode's model and simulator score of the chosen plan against the step (left), and
    the rank correlation of their scores of the last population (right)."""
    figure = Figure(figsize=(11, 2.2 * len(episodes) + 0.6), dpi=90)
    FigureCanvasAgg(figure)
    rows = len(episodes)
    for row, episode in enumerate(episodes):
        ax = figure.add_subplot(rows, 2, 2 * row + 1)
        ax.plot(episode["model_scores"], label="world model's score")
        ax.plot(episode["simulator_scores"], label="simulator's score, same plan and state")
        end = "falls" if episode["terminated"] else "ends"
        ax.set_title(
            f"{env}, seed {episode['seed']}: return {episode['return']:.0f}, {end} at step "
            f"{episode['steps']}",
            fontsize=9,
        )
        ax.set_ylabel("plan's score")
        if row == 0:
            ax.legend(fontsize=8)
        rank = figure.add_subplot(rows, 2, 2 * row + 2, sharex=ax)
        rank.plot(episode["rank_correlations"], color="tab:green", linewidth=0.8)
        rank.axhline(0.0, color="grey", linewidth=0.5)
        rank.set_ylim(-1.05, 1.05)
        rank.set_ylabel("rank correlation")
        rank.set_title("last population: model's ranking against the simulator's", fontsize=9)
    ax.set_xlabel("control step")
    rank.set_xlabel("control step")
    figure.tight_layout()
    return figure


def main(args: CheckArgs) -> dict[str, Any]:
    """Plan and check the episodes; write and print the results."""
    folder = Path(args.out) if args.out else new_run_folder("check_world_model", args.env)
    for name in OUTPUTS:
        check_output(folder / name, args.overwrite)
    use_planning_threads(args.threads)
    setup = PlanningSetup.from_fields(args, task=args.env, reward="world-model")
    env = make_env(setup.spec.name)
    simulator = simulator_setup(setup).objective(env)
    bar = tqdm(total=args.episodes * args.max_steps, desc=f"{args.env}, checked", unit="step")
    episodes, rows, recorded = [], [], []
    for seed in range(args.seed, args.seed + args.episodes):
        # each episode's planner and model seeded by its seed, as evaluate.py's and
        # collect_data.py's: the episode is theirs to the digit
        planning = replace(setup, seed=seed, record=True).resolve(env)
        source = CheckedPlanner(planning, simulator, bar)
        episode = collect_episode(env, source, seed, args.max_steps, 0.0, None)
        bar.update(args.max_steps - len(episode["rewards"]))  # the steps a fall cut short
        summary = {"seed": seed, **episode_summary(episode, source)}
        episodes.append(summary)
        recorded.append(episode)
        columns = (
            source.model_scores, source.simulator_scores, episode["rewards"],
            *(source.ranking[name] for name in RANKING),
        )  # fmt: skip
        rows += [(seed, step, *values) for step, values in enumerate(zip(*columns, strict=True))]
        bar.write(
            f"seed {seed}: return {summary['return']:.1f} in {summary['steps']} steps; mean "
            f"score of the chosen plan: model {summary['mean_model_score']:.1f}, simulator "
            f"{summary['mean_simulator_score']:.1f}; mean rank correlation "
            f"{format_cell(summary['mean_rank_correlation'], '.2f')}"
        )
    bar.close()
    env.close()
    errors = own_state_errors(planning.objective.model, recorded)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "steps.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seed", "step", "model_score", "simulator_score", "reward", *RANKING])
        writer.writerows(rows)
    result = {
        "command": command_line(),
        "env": setup.spec.name,
        "world_model": setup.world_model or "the task's shipped model",
        "value": None if setup.value() is None else [str(p) for p in setup.value()],
        "k_step_error": errors,
        "k_step_scale": "std of the model's training observations",
        "ranking": "the planner's last population, scored by the model and by the simulator",
        "episodes": [{k: v for k, v in e.items() if k not in PER_STEP} for e in episodes],
    }
    write_json(folder / "summary.json", result)
    scores_figure(episodes, setup.spec.name).savefig(folder / "scores.png")
    print_table(
        [
            {
                "seed": e["seed"],
                "return": e["return"],
                "steps": e["steps"],
                "model score": e["mean_model_score"],
                "simulator score": e["mean_simulator_score"],
                "most overrated at": e["most_overrated_step"],
                "rank corr": e["mean_rank_correlation"],
                "elite overlap": e["mean_elite_overlap"],
                "regret": e["mean_regret"],
                "spread": e["mean_spread"],
                "reordering error": e["mean_reordering_error"],
            }
            for e in episodes
        ],
        [
            "seed", "return", "steps", "model score", "simulator score", "most overrated at",
            "rank corr", "elite overlap", "regret", "spread", "reordering error",
        ],
        {
            "return": ".1f", "model score": ".1f", "simulator score": ".1f", "rank corr": ".2f",
            "elite overlap": ".2f", "regret": ".3g", "spread": ".3g", "reordering error": ".3g",
        },
    )  # fmt: skip
    text = ", ".join(f"k={k} {format_cell(v, '.3f')}" for k, v in errors.items())
    print(f"k-step error on these episodes (-: no episode that long): {text}")
    print(f"wrote {folder}/steps.csv, summary.json and scores.png")
    return result


if __name__ == "__main__":
    run_main(main, CheckArgs, __doc__)
