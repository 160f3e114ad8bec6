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
the model's error that differs between them says why. Where the planner adds a value at the
horizon's end (hopper's and walker2d's critics), both also score the population without it, and
the ranking is split: by the return over the horizon alone, by the value alone, and with the
value read at the true end state (the model's return plus the simulator's value), which says how
the model would rank if its end states were exact. The episode's own transitions then give the
model's open-loop k-step error on the states its planner drives the system into (k = 1, 5, 10,
16 and the planner's horizon H; each observation dimension in units of the std of the model's
training observations), over all dimensions and per dimension: a dimension of small spread (a
root's height) can dominate the mean over dimensions while mattering little to the reward.

Writes into ``--out`` (default ``runs/check_world_model__<env>__<time>/``): ``steps.csv`` (seed,
step, the model's and the simulator's score of the chosen plan, the env's reward, the ranking of
the last population), ``summary.json`` (the command, each episode's return, steps, mean scores and
ranking, the step the model overrated its plan most, and the k-step errors, also by dimension)
and ``scores.png`` (both scores and the rank correlation against the step, one row per episode).
Seeds 0-9 are the test seeds: look at models on others (the default is 1000).
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
from planner.world_model import k_step_errors_by_dimension, over_dimensions
from policies.planners import PLANNERS
from policies.setup import Planning, PlanningSetup

KS = (1, 5, 10, 16)
"""Open-loop steps of the k-step error; the planner's horizon H is added where it is not one of
them (walker2d's prior plans 32 steps)."""
OUTPUTS = ("steps.csv", "summary.json", "scores.png")
RANKING = ("rank_correlation", "elite_overlap", "regret", "spread", "reordering_error")
"""How the model ranked a population against the simulator (:func:`population_ranking`)."""
VALUE_SPLIT = (
    "return_rank_correlation",
    "value_rank_correlation",
    "exact_value_rank_correlation",
    "value_spread",
    "value_reordering_error",
)
"""The same ranking split into the horizon's return and the value at its end
(:func:`value_split`); NaN where the planner adds no value."""


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
    (``progress``: anything with ``update(n)``, advanced by one per control step).

    ``returns``, given, are the model's and the simulator's objectives without the value at the
    horizon's end (the model's called with the observation, the simulator's with the env's
    state): each population is then scored by both once more, and its ranking split into the
    return and the value (:func:`value_split`). TS-inf and the mean score alike on every call;
    TS-1 draws its members anew, so its split also carries the two draws' difference."""

    def __init__(
        self,
        planning: Planning,
        simulator: Any,
        progress: Any = None,
        returns: tuple[Any, Any] | None = None,
    ) -> None:
        super().__init__(planning)
        self.simulator, self.progress, self.returns = simulator, progress, returns
        self._forget_scores()

    def begin(self, env: Any, length: int | None) -> None:
        """A new episode: no warm start, no scores."""
        super().begin(env, length)
        self._forget_scores()

    def _forget_scores(self) -> None:
        self.model_scores: list[float] = []
        self.simulator_scores: list[float] = []
        self.ranking: dict[str, list[float]] = {name: [] for name in (*RANKING, *VALUE_SPLIT)}

    def act(self, env: Any, observation: np.ndarray, step: int) -> np.ndarray:
        """The planner's action from ``observation``; both scores of its plan are kept, and how
        the model ranked its last population (NaN on a step that recorded none)."""
        result = self.decide(env, observation)
        plans = result.plan[None]
        if result.candidates is not None:  # one rollout batch: the plan, then its population
            plans = np.concatenate([plans, result.candidates])
        state = read_planning_state(env)
        scored = self.simulator(state, plans)
        self.model_scores.append(float(result.predicted_reward))
        self.simulator_scores.append(float(scored[0]))
        ranked = dict.fromkeys((*RANKING, *VALUE_SPLIT), math.nan)
        if result.candidates is not None:
            model = result.candidate_rewards
            ranked |= population_ranking(model, scored[1:], len(result.elite_indices))
            if self.returns is not None:
                model_return = self.returns[0](observation, result.candidates)
                simulator_return = self.returns[1](state, result.candidates)
                ranked |= value_split(model, model_return, scored[1:], simulator_return)
        for name, values in self.ranking.items():
            values.append(ranked[name])
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
    return {
        "rank_correlation": _rank_correlation(model, simulator),
        "elite_overlap": len(model_top & simulator_top) / top,
        "regret": float(simulator.max() - simulator[np.argmax(model)]),
        "spread": float(simulator.std()),
        "reordering_error": float((model - simulator).std()),
    }


def value_split(
    model: np.ndarray,
    model_return: np.ndarray,
    simulator: np.ndarray,
    simulator_return: np.ndarray,
) -> dict[str, float]:
    """Whether the model ranks a population by its return over the horizon, by the value at the
    horizon's end, or by neither. Each score (``model``, ``simulator``) is split into the return
    (``model_return``, ``simulator_return``: the same candidates scored without the value) and
    the value (the score minus the return). Over the candidates all four score finitely:
    ``return_rank_correlation`` and ``value_rank_correlation`` rank each part against the
    simulator's; ``exact_value_rank_correlation`` ranks the model's return plus the simulator's
    value against the simulator's score, the ranking the model would give if it read the value
    at the true end state; ``value_spread`` and ``value_reordering_error`` are
    :func:`population_ranking`'s spread and reordering error of the value part. NaN where fewer
    than two candidates remain, or the correlation of a constant part."""
    scores = [np.asarray(x, float) for x in (model, model_return, simulator, simulator_return)]
    finite = np.logical_and.reduce([np.isfinite(x) for x in scores])
    if finite.sum() < 2:
        return dict.fromkeys(VALUE_SPLIT, math.nan)
    model, model_return, simulator, simulator_return = (x[finite] for x in scores)
    model_value, simulator_value = model - model_return, simulator - simulator_return
    return {
        "return_rank_correlation": _rank_correlation(model_return, simulator_return),
        "value_rank_correlation": _rank_correlation(model_value, simulator_value),
        "exact_value_rank_correlation": _rank_correlation(
            model_return + simulator_value, simulator
        ),
        "value_spread": float(simulator_value.std()),
        "value_reordering_error": float((model_value - simulator_value).std()),
    }


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of ``a`` and ``b``; NaN if either is constant."""
    return math.nan if np.ptp(a) == 0 or np.ptp(b) == 0 else float(spearmanr(a, b)[0])


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
        **{f"mean_{name}": finite_mean(values) for name, values in source.ranking.items()},
        "model_scores": source.model_scores,
        "simulator_scores": source.simulator_scores,
        "rank_correlations": source.ranking["rank_correlation"],
        "return_rank_correlations": source.ranking["return_rank_correlation"],
        "value_rank_correlations": source.ranking["value_rank_correlation"],
    }


PER_STEP = (
    "model_scores",
    "simulator_scores",
    "rank_correlations",
    "return_rank_correlations",
    "value_rank_correlations",
)
""":func:`episode_summary`'s per-step lists, which summary.json leaves to steps.csv."""


def finite_mean(values: list[float]) -> float | None:
    """The mean of the finite ``values`` (None: none is)."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def own_state_errors(
    model: Any, recorded: list[dict[str, np.ndarray]], ks: tuple[int, ...]
) -> tuple[dict[str, float | None], dict[str, list[float] | None]]:
    """The model's open-loop k-step error at each k of ``ks`` on the ``recorded`` episodes'
    transitions, each observation dimension in units of the std of its training observations
    (its input normaliser's scale; of the sine, for a dim it reads on the circle): over all
    dimensions, and per dimension; None where no episode has k steps."""
    data = transitions(recorded)
    keys = ("observations", "actions", "next_observations", "episode_index")
    scale = model.input_normalizer.scale[: model.config.obs_dim].cpu().numpy()
    found = k_step_errors_by_dimension(model, *(data[key] for key in keys), ks=ks, obs_scale=scale)
    overall = {str(k): over_dimensions(v) for k, v in found.items()}
    return (
        {k: v if math.isfinite(v) else None for k, v in overall.items()},
        {str(k): v.tolist() if np.isfinite(v).all() else None for k, v in found.items()},
    )


def largest_dimensions(errors: list[float], count: int = 5) -> str:
    """``"dim 9 1.25, dim 0 1.23, ..."``: the ``count`` observation dims of largest error."""
    order = np.argsort(errors)[::-1][:count]
    return ", ".join(f"dim {d} {errors[d]:.2f}" for d in order)


def scores_figure(episodes: list[dict[str, Any]], env: str) -> Figure:
    """Each episode's model and simulator score of the chosen plan against the step (left), and
    the rank correlation of their scores of the last population (right; where the planner adds
    a value, also of the return and of the value alone)."""
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
        rank.plot(episode["rank_correlations"], color="tab:green", linewidth=0.8, label="score")
        if np.isfinite(episode["value_rank_correlations"]).any():  # the planner adds a value
            for part, color in (("return", "tab:blue"), ("value", "tab:red")):
                found = episode[f"{part}_rank_correlations"]
                rank.plot(found, color=color, linewidth=0.6, alpha=0.7, label=f"its {part}")
            if row == 0:
                rank.legend(fontsize=7, ncol=3)
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
    # with a value, each ranking is split into the return and the value: both score without it
    splits = setup.value() is not None
    without_value = replace(setup, value_agent="none", value_weight=None)
    simulator_return = simulator_setup(without_value).objective(env) if splits else None
    bar = tqdm(total=args.episodes * args.max_steps, desc=f"{args.env}, checked", unit="step")
    episodes, rows, recorded = [], [], []
    for seed in range(args.seed, args.seed + args.episodes):
        # each episode's planner and model seeded by its seed, as evaluate.py's and
        # collect_data.py's: the episode is theirs to the digit
        planning = replace(setup, seed=seed, record=True).resolve(env)
        returns = None
        if splits:
            returns = (replace(without_value, seed=seed).objective(env), simulator_return)
        source = CheckedPlanner(planning, simulator, bar, returns)
        episode = collect_episode(env, source, seed, args.max_steps, 0.0, None)
        bar.update(args.max_steps - len(episode["rewards"]))  # the steps a fall cut short
        summary = {"seed": seed, **episode_summary(episode, source)}
        episodes.append(summary)
        recorded.append(episode)
        columns = (
            source.model_scores, source.simulator_scores, episode["rewards"],
            *(source.ranking[name] for name in (*RANKING, *VALUE_SPLIT)),
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
    ks = tuple(sorted({*KS, planning.budget.horizon}))
    errors, by_dimension = own_state_errors(planning.objective.model, recorded, ks)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "steps.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["seed", "step", "model_score", "simulator_score", "reward"]
        writer.writerow([*header, *RANKING, *VALUE_SPLIT])
        writer.writerows(rows)
    result = {
        "command": command_line(),
        "env": setup.spec.name,
        "world_model": setup.world_model or "the task's shipped model",
        "value": None if setup.value() is None else [str(p) for p in setup.value()],
        "k_step_error": errors,
        "k_step_error_by_dimension": by_dimension,
        "k_step_scale": "std of the model's training observations",
        "ranking": "the planner's last population, scored by the model and by the simulator",
        "value_split": (
            "rank correlations of the population's return and value parts apart, and of the "
            "model's return plus the simulator's value (exact value); null: no value"
        ),
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
                "by return": e["mean_return_rank_correlation"],
                "by value": e["mean_value_rank_correlation"],
                "exact value": e["mean_exact_value_rank_correlation"],
            }
            for e in episodes
        ],
        [
            "seed", "return", "steps", "model score", "simulator score", "most overrated at",
            "rank corr", "elite overlap", "regret", "spread", "reordering error", "by return",
            "by value", "exact value",
        ],
        {
            "return": ".1f", "model score": ".1f", "simulator score": ".1f", "rank corr": ".2f",
            "elite overlap": ".2f", "regret": ".3g", "spread": ".3g", "reordering error": ".3g",
            "by return": ".2f", "by value": ".2f", "exact value": ".2f",
        },
    )  # fmt: skip
    text = ", ".join(f"k={k} {format_cell(v, '.3f')}" for k, v in errors.items())
    if splits:
        print(
            "rank corr by return, by value: each part of the score apart; exact value: the "
            "model's return plus the value at the true end state"
        )
    print(f"k-step error on these episodes (-: no episode that long): {text}")
    horizon = planning.budget.horizon
    if by_dimension[str(horizon)] is not None:
        largest = largest_dimensions(by_dimension[str(horizon)])
        print(f"k={horizon} error by observation dim, largest first: {largest}")
    print(f"wrote {folder}/steps.csv, summary.json and scores.png")
    return result


if __name__ == "__main__":
    run_main(main, CheckArgs, __doc__)
