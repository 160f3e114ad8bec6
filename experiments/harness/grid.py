"""The evaluation grid: every (row, seed) episode run once, logged as it ends, resumable.

A *row* is one (task, planner, budget) configuration; the grid runs it on its episode seeds
(every row of a task on the same seeds). Each episode is one unit of work: its planner is
seeded with the episode's seed, so an episode's result does not depend on which episodes ran
before it, in which process, or whether the grid was interrupted and resumed. Finished
episodes are appended to ``episodes.csv`` (flushed and fsynced line by line), which is also how
a stopped grid knows where to continue: nothing is repeated and nothing is lost.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from envs.mujoco_rewards import CostTerm
from envs.registry import get_task, make_env
from experiments.harness.cli import REPO_ROOT, UsageError
from experiments.harness.distributed import map_unordered, ray_session
from experiments.harness.episodes import NO_BUDGET, run_episode
from planner.threads import available_cores, use_planning_threads
from policies.setup import AGENTS, Planning, PlanningSetup


@dataclass(frozen=True)
class Row:
    """One line of a comparison: a task, a controller and its budget N x T per control step.

    A new dimension of the comparison (say, the reward a planner searches with) is one more
    field here, one more entry in :meth:`columns` and in :data:`COLUMNS` (before ``seed``);
    episode keys, tables, pairing and plots follow from those.
    """

    env: str
    planner: str
    population: int | None = None
    """N; None for an agent (:data:`~policies.setup.AGENTS`), which has no budget."""
    iterations: int | None = None
    """T; None for an agent."""
    warm_start: str = ""
    """Diffusion Elites only; empty: the task's default."""
    tuning: tuple[tuple[str, Any], ...] = ()
    """Baseline settings that replace the task's tuned ones (``(("execute", "mean"),)``);
    empty: the task's (``TaskSpec.tuning``)."""
    reward: str = "simulator"
    """What the planner scores candidates with: ``simulator`` or ``world-model`` (from the
    observation, :mod:`planner.world_model`); an agent's rows say ``simulator``."""
    decoder: str = ""
    """Diffusion Elites only: ``SEARCH[:FINAL]``, what it searches with and what decodes the
    executed plan, each ``ddim`` or ``student`` (``student:ddim``); empty: the task's."""

    def __post_init__(self) -> None:
        planning = self.planner not in AGENTS
        if planning != (self.population is not None and self.iterations is not None):
            raise ValueError(
                f"row {self}: a planner needs population and iterations, an agent neither"
            )

    @property
    def label(self) -> str:
        """The planner's name in tables: ``de[shift]`` for a DE warm-start variant, ``de[student]``
        for a DE decoder,
        ``mppi[noise_std=0.2,temperature=0.5]`` for a baseline with its own settings."""
        variant = [part for part in (self.warm_start, self.decoder) if part]
        variant += [f"{name}={value}" for name, value in self.tuning]
        return f"{self.planner}[{','.join(variant)}]" if variant else self.planner

    @property
    def budget(self) -> str:
        """``NxT``, or :data:`NO_BUDGET` for an agent."""
        if self.population is None:
            return NO_BUDGET
        return f"{self.population}x{self.iterations}"

    def columns(self) -> dict[str, Any]:
        """What identifies the row in ``episodes.csv`` (the first columns of each line)."""
        return {
            "env": self.env,
            "planner": self.label,
            "budget": self.budget,
            "population": self.population,
            "iterations": self.iterations,
            "reward": self.reward,
        }


@dataclass(frozen=True)
class GridSettings:
    """What every row of one grid shares (None: each task's default)."""

    max_steps: int | None = None
    search_steps: int | None = None
    final_steps: int | None = None
    prior: str | None = None
    force_prior: bool = False
    """Plan with ``prior`` even if it records another task."""
    student: str | None = None
    """The student of ``student`` decoder rows (default: the task's shipped one)."""
    world_model: str | None = None
    """The world model of ``world-model`` rows (default: the task's shipped one)."""
    propagation: str | None = None
    """How ``world-model`` rows roll the model's ensemble out (one of
    :data:`~planner.world_model.PROPAGATIONS`; None: each task's, recorded per row); grid-wide
    like the model itself: to compare propagations, run one grid each and pair them with
    experiments/compare_runs.py (a row field would add a column to episodes.csv, which the
    results already written could not be read by)."""
    particles: int | None = None
    """Particles per candidate of ``world-model`` rows (None: the propagation's default)."""
    pessimism: float = 0.0
    """k of ``world-model`` rows' candidate score, mean - k std over its particles' returns."""
    horizon: int | None = None
    """H of the planners without a prior (default: the task's); DE plans over its prior's."""
    horizon_seconds: float | None = None
    """H in seconds instead of steps (planners without a prior)."""
    knots: int | None = None
    """K knots per plan of the planners without a prior (None: the task's); DE: its prior's."""
    interpolation: str | None = None
    """How K knots become H actions (None: the task's); DE: its prior's."""
    costs: tuple[CostTerm, ...] | None = None
    """Planning-only cost terms of every simulator row (None: each task's declared ones; empty:
    none); grid-wide, like the world model: to compare terms, run one grid each and pair them."""
    value_agent: str | None = None
    """The SAC agent whose critic values the horizon's end of every planner row (None: each
    task's, :attr:`~envs.registry.TaskSpec.value_agent`; ``"none"``: no value)."""
    value_weight: float | None = None
    """The value is multiplied by it (None: each task's weight)."""


def _optional_int(text: str) -> int | None:
    return None if text == "" else int(text)


COLUMNS: dict[str, Any] = {
    "env": str,
    "planner": str,
    "budget": str,
    "population": _optional_int,
    "iterations": _optional_int,
    "reward": str,
    "seed": int,
    "return": float,
    "steps": int,
    "success": int,
    "collision": int,
    "mean_abs_action_change": float,
    "reward_evals_per_step": float,
    "max_reward_evals_per_step": int,
    "control_hz": float,
    "plan_ms_p50": float,
    "workers": int,
}
"""The columns of ``episodes.csv``, one row per episode, and how each is read back."""

TIMING_COLUMNS = ("control_hz", "plan_ms_p50")
"""Columns measured with a clock: they differ from run to run; every other column does not."""

KEY_COLUMNS = tuple(COLUMNS)[: list(COLUMNS).index("seed") + 1]
"""The columns that name an episode: its row's (:meth:`Row.columns`, first in COLUMNS) and the
seed."""


def episode_key(record: dict[str, Any]) -> tuple:
    """The name of an episode's record: its values of :data:`KEY_COLUMNS`."""
    return tuple(record[name] for name in KEY_COLUMNS)


def row_key(row: Row, seed: int) -> tuple:
    """:func:`episode_key` of the episode of ``row`` with ``seed``."""
    return episode_key({**row.columns(), "seed": seed})


class EpisodeLog:
    """``episodes.csv``: one line per finished episode, written the moment it finishes.

    Opening an existing log reads what it holds (a last line cut off by an interruption is
    dropped, and that episode runs again), so a grid resumes where it stopped.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = self.path.read_text() if self.path.exists() else ""
        complete = text[: text.rfind("\n") + 1]
        if not complete:  # a new log, or one cut off inside its header
            with open(self.path, "w", newline="") as file:
                csv.writer(file).writerow(COLUMNS)
        else:
            self._read(complete.splitlines())
            if complete != text:  # an interrupted write: keep the whole lines only
                self.path.write_text(complete)
        self._done = {episode_key(record) for record in self.records}

    def _read(self, lines: list[str]) -> None:
        header, *rows = list(csv.reader(lines))
        if header != list(COLUMNS):
            raise UsageError(
                f"{self.path} has columns {header}, not this version's {list(COLUMNS)}; "
                "write to a new --out folder"
            )
        self.records = [
            {name: read(cell) for (name, read), cell in zip(COLUMNS.items(), row, strict=True)}
            for row in rows
        ]

    def done(self, row: Row, seed: int) -> bool:
        """Whether the episode of ``row`` with ``seed`` is in the log already."""
        return row_key(row, seed) in self._done

    def append(self, record: dict[str, Any]) -> None:
        """Add one finished episode (a dict with every column) and make it durable."""
        with open(self.path, "a", newline="") as file:
            csv.writer(file).writerow(["" if record[n] is None else record[n] for n in COLUMNS])
            file.flush()
            os.fsync(file.fileno())
        self.records.append(record)
        self._done.add(episode_key(record))


def row_setup(row: Row, settings: GridSettings) -> PlanningSetup:
    """What a row plans with: its planner, budget, reward, warm start and decoders, and what the
    grid's rows share."""
    search, _, final = row.decoder.partition(":")
    return PlanningSetup(
        task=row.env,
        planner=row.planner,
        population=row.population,
        iterations=row.iterations,
        horizon=settings.horizon,
        horizon_seconds=settings.horizon_seconds,
        knots=settings.knots,
        interpolation=settings.interpolation,
        prior=settings.prior if row.planner == "de" else None,
        decoder=search or None,
        final_decoder=final or None,
        student=settings.student if row.planner == "de" else None,
        force_prior=settings.force_prior,
        reward=row.reward,
        world_model=settings.world_model,
        propagation=settings.propagation,
        particles=settings.particles,
        pessimism=settings.pessimism if row.reward == "world-model" else 0.0,
        search_steps=settings.search_steps,
        final_steps=settings.final_steps,
        warm_start=row.warm_start or None,
        tuning=row.tuning,
        costs=settings.costs,
        value_agent=settings.value_agent,
        value_weight=settings.value_weight,
    )


@functools.lru_cache(maxsize=4)
def _row_planning(row: Row, settings: GridSettings) -> Planning:
    """A row's setup resolved on its env (prior, objective, budget), once per process."""
    return row_setup(row, settings).resolve(make_env(row.env))


def episode_planning(row: Row, seed: int, settings: GridSettings) -> Planning:
    """What the episode of ``row`` with ``seed`` plans with: the row's planning (built once per
    process) and, for a world model, its own objective seeded with ``seed``, so that a sampling
    propagation scores an episode alike whatever episodes ran before it in the process."""
    planning = _row_planning(row, settings)
    if row.reward != "world-model":
        return planning
    return planning.with_objective(replace(planning.setup, seed=seed).objective(planning.env))


def run_grid_episode(job: tuple[Row, int, GridSettings, int]) -> dict[str, Any]:
    """Run one episode of the grid; returns its ``episodes.csv`` record."""
    row, seed, settings, workers = job
    use_planning_threads(max(1, available_cores() // workers))  # episodes share the cores
    planning = episode_planning(row, seed, settings)
    policy = planning.policy(seed)
    env = planning.env
    max_steps = get_task(row.env).max_steps if settings.max_steps is None else settings.max_steps
    episode = run_episode(env, policy, seed, max_steps, None)
    evaluations = np.asarray(episode["reward_evaluations"])
    return {
        **row.columns(),
        "seed": seed,
        "return": episode["return"],
        "steps": episode["steps"],
        "success": int(episode["success"]),
        "collision": int(episode["collision"]),
        "mean_abs_action_change": episode["mean_abs_action_change"],
        "reward_evals_per_step": float(evaluations.mean()),
        "max_reward_evals_per_step": int(evaluations.max()),
        "control_hz": episode["steps"] / episode["seconds"],
        "plan_ms_p50": float(np.percentile(episode["plan_ms"], 50)),
        "workers": workers,
    }


def run_grid(
    episodes: list[tuple[Row, int]],
    settings: GridSettings,
    log: EpisodeLog,
    workers: int = 1,
    ray_address: str | None = None,
) -> list[dict[str, Any]]:
    """Run every ``(row, seed)`` episode that ``log`` does not hold yet; return all their records.

    ``workers > 1`` runs episodes in that many local processes (spawned); ``ray_address`` runs
    each as a Ray task (:func:`~experiments.harness.distributed.map_unordered`). Results are the
    same, but control rates then share the cores, so each record notes how many episodes ran
    at once (``workers``: the local processes, or the Ray cluster's CPUs). Each record is
    appended to ``log`` as its episode finishes; they come back in the order of ``episodes``.
    """
    total = len(episodes)
    with ray_session(ray_address, workers) as parallel:
        jobs = [
            (row, seed, settings, parallel) for row, seed in episodes if not log.done(row, seed)
        ]
        with tqdm(total=total, initial=total - len(jobs), desc="episodes", unit="ep") as bar:
            for record in map_unordered(run_grid_episode, jobs, ray_address, workers):
                log.append(record)
                bar.update()
    by_key = {episode_key(record): record for record in log.records}
    return [by_key[row_key(row, seed)] for row, seed in episodes]


def describe_grid(
    suite: str | None, episodes: list[tuple[Row, int]], settings: GridSettings
) -> dict[str, Any]:
    """The grid as JSON-ready data (``grid.json``): what a resumed run must match exactly. Each
    row records the prior and value it plans with (:func:`planned_with`), so a folder planned
    with another does not resume, even where only a task's default changed."""
    seeds: dict[Row, list[int]] = {}
    for row, seed in episodes:
        seeds.setdefault(row, []).append(seed)
    rows = [
        {
            **dataclasses.asdict(row),
            "seeds": of_row,
            **planned_with(row_setup(row, settings)),
        }
        for row, of_row in seeds.items()
    ]
    return {"suite": suite, "settings": dataclasses.asdict(settings), "rows": rows}


def planned_with(setup: PlanningSetup) -> dict[str, Any]:
    """What ``setup`` plans with as it resolves it, as JSON: ``prior``, DE's prior checkpoint
    (:meth:`~policies.setup.PlanningSetup.prior_file`); ``value``, the value at the horizon's
    end (:meth:`~policies.setup.PlanningSetup.value`): the agent and its weight; and
    ``propagation``, how a world-model row rolls its ensemble out. Each is None where the setup
    has none. A task's default may change between releases; a record of what was resolved is
    what tells a resumed run or a reader which one was used."""
    prior, value = setup.prior_file(), setup.value()
    return {
        "prior": None if prior is None else _shown(prior),
        "value": None if value is None else {"agent": _shown(value[0]), "weight": value[1]},
        "propagation": setup.propagation if setup.reward == "world-model" else None,
    }


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it lies in it, else absolute."""
    path = path.resolve()
    return str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


RESOLVED_SETTINGS = ("value_agent", "value_weight", "propagation")
"""Settings compared as each row resolved them (its recorded ``value`` and ``propagation``), not
as given: a row planned without a value before its task declared one differs, other rows do not."""


def _compared_settings(record: dict[str, Any]) -> dict[str, Any]:
    """A grid record's settings as a resume compares them: one added since the folder was
    written reads as its default there, and the value settings are left to the rows."""
    settings = {**dataclasses.asdict(GridSettings()), **record.get("settings", {})}
    return {name: value for name, value in settings.items() if name not in RESOLVED_SETTINGS}


PRIORS_BEFORE_RECORDS = {"hopper": "checkpoints/hopper-action.pt"}
"""The shipped priors of the tasks whose default changed when grid.json began to record each
row's prior; every other task's DE rows written before then planned with today's default."""


def _as_resolved(row: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A recorded row with what it planned with (:func:`planned_with`) where it was written
    before rows recorded it: its propagation, then its prior (:func:`_with_prior`)."""
    if "propagation" not in row:  # the grid's, and every task's default then: the mean
        propagation = settings.get("propagation") or "mean"
        row = {**row, "propagation": propagation if row.get("reward") == "world-model" else None}
    return _with_prior(row, settings)


def _with_prior(row: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A recorded row with its ``prior``: a DE row written before rows recorded it planned
    with ``--prior`` where the grid set one, else its task's default of that time."""
    if "prior" in row:
        return row
    if row.get("planner") != "de":
        return {**row, "prior": None}
    if settings.get("prior"):
        return {**row, "prior": _shown(Path(settings["prior"]))}
    shipped = PRIORS_BEFORE_RECORDS.get(row["env"]) or get_task(row["env"]).prior_path
    return {**row, "prior": None if shipped is None else _shown(REPO_ROOT / shipped)}


def grid_difference(recorded: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """How two :func:`describe_grid` records differ, in words (None: they are the same grid).

    Keys other than those :func:`describe_grid` writes (a recorded command) are not compared.
    """
    if recorded.get("suite") != wanted.get("suite"):
        return f"suite: {recorded.get('suite')} there, {wanted.get('suite')} here"
    if _compared_settings(recorded) != _compared_settings(wanted):
        return f"settings: {recorded.get('settings')} there, {wanted.get('settings')} here"
    old, new = recorded.get("rows", []), wanted.get("rows", [])
    old = [_as_resolved(before, recorded.get("settings", {})) for before in old]
    for index, (before, now) in enumerate(zip(old, new, strict=False)):
        fields = [name for name in {**before, **now} if before.get(name) != now.get(name)]
        if fields:
            changes = "; ".join(f"{f} {before.get(f)} there, {now.get(f)} here" for f in fields)
            return f"row {index + 1} ({before.get('env')} {before.get('planner')}): {changes}"
    if len(old) != len(new):
        return f"{len(old)} rows there, {len(new)} here"
    return None
