"""The evaluation grid: every (row, seed) episode run once, logged as it ends, resumable.

A *row* is one (task, planner, budget) configuration; the grid runs it on the same episode
seeds as every other row. Each episode is one unit of work: its planner is seeded with the
episode's seed, so an episode's result does not depend on which episodes ran before it, in
which process, or whether the grid was interrupted and resumed. Finished episodes are appended
to ``episodes.csv`` (flushed and fsynced line by line), which is also how a stopped grid knows
where to continue: nothing is repeated and nothing is lost.
"""

from __future__ import annotations

import csv
import functools
import multiprocessing
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from envs.registry import get_task, make_env
from experiments.harness.episodes import run_episode
from experiments.harness.wiring import load_prior, make_budget, make_policy, planner_settings


@dataclass(frozen=True)
class Row:
    """One line of a comparison: a task, a planner and its budget N x T per control step."""

    env: str
    planner: str
    population: int
    iterations: int
    warm_start: str = ""
    """Diffusion Elites only; empty: the task's default."""

    @property
    def label(self) -> str:
        """The planner's name in tables: ``de[shift]`` for a DE warm-start variant."""
        return f"de[{self.warm_start}]" if self.warm_start else self.planner

    @property
    def budget(self) -> str:
        """``NxT``."""
        return f"{self.population}x{self.iterations}"


@dataclass(frozen=True)
class GridSettings:
    """What every row of one grid shares (None: each task's default)."""

    max_steps: int | None = None
    search_steps: int | None = None
    final_steps: int | None = None
    prior: str | None = None


COLUMNS: dict[str, type] = {
    "env": str,
    "planner": str,
    "budget": str,
    "population": int,
    "iterations": int,
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
"""The columns of ``episodes.csv``, one row per episode, and the type each is read back as."""


def _key(env: str, planner: str, budget: str, seed: int) -> tuple:
    return (env, planner, budget, int(seed))


class EpisodeLog:
    """``episodes.csv``: one line per finished episode, written the moment it finishes.

    Opening an existing log reads what it holds (a last line cut off by an interruption is
    dropped, and that episode runs again), so a grid resumes where it stopped.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        if self.path.exists():
            self._read()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as file:
                csv.writer(file).writerow(COLUMNS)
        self._done = {self._key_of(record) for record in self.records}

    def _read(self) -> None:
        text = self.path.read_text()
        complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
        if complete != text:  # an interrupted write: keep the whole lines only
            self.path.write_text(complete)
        rows = list(csv.DictReader(complete.splitlines()))
        if rows and list(rows[0]) != list(COLUMNS):
            raise ValueError(
                f"{self.path} has columns {list(rows[0])}, not this version's {list(COLUMNS)}; "
                "write to a new --out folder"
            )
        self.records = [{name: COLUMNS[name](row[name]) for name in COLUMNS} for row in rows]

    @staticmethod
    def _key_of(record: dict[str, Any]) -> tuple:
        return _key(record["env"], record["planner"], record["budget"], record["seed"])

    def done(self, row: Row, seed: int) -> bool:
        """Whether the episode of ``row`` with ``seed`` is in the log already."""
        return _key(row.env, row.label, row.budget, seed) in self._done

    def append(self, record: dict[str, Any]) -> None:
        """Add one finished episode (a dict with every column) and make it durable."""
        with open(self.path, "a", newline="") as file:
            csv.writer(file).writerow([record[name] for name in COLUMNS])
            file.flush()
            os.fsync(file.fileno())
        self.records.append(record)
        self._done.add(self._key_of(record))


@functools.lru_cache(maxsize=4)
def _row_setup(row: Row, settings: GridSettings) -> tuple:
    """Env, objective, prior, budget and planner settings of a row, built once per process."""
    spec = get_task(row.env)
    prior = load_prior(row.planner, spec, settings.prior)
    env = make_env(row.env)
    objective = spec.make_objective(env)
    budget = make_budget(spec, env, prior, row.population, row.iterations)
    config = planner_settings(
        spec, settings.search_steps, settings.final_steps, row.warm_start or None
    )
    max_steps = settings.max_steps if settings.max_steps is not None else spec.max_steps
    return spec, env, objective, prior, budget, config, max_steps


def run_grid_episode(job: tuple[Row, int, GridSettings, int]) -> dict[str, Any]:
    """Run one episode of the grid; returns its ``episodes.csv`` record."""
    row, seed, settings, workers = job
    torch.set_num_threads(1)
    spec, env, objective, prior, budget, config, max_steps = _row_setup(row, settings)
    policy = make_policy(env, spec, row.planner, objective, budget, seed, prior, config)
    episode = run_episode(env, policy, seed, max_steps, None)
    evaluations = np.asarray(episode["reward_evaluations"])
    return {
        "env": row.env,
        "planner": row.label,
        "budget": row.budget,
        "population": row.population,
        "iterations": row.iterations,
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
    rows: list[Row],
    seeds: Iterable[int],
    settings: GridSettings,
    log: EpisodeLog,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Run every episode of ``rows x seeds`` that ``log`` does not hold yet; return all records.

    ``workers > 1`` runs episodes in that many local processes (spawned): results are the
    same, but control rates then share the cores, so each record notes its worker count.
    """
    seeds = list(seeds)
    jobs = [
        (row, seed, settings, workers) for row in rows for seed in seeds if not log.done(row, seed)
    ]
    total = len(rows) * len(seeds)
    with tqdm(total=total, initial=total - len(jobs), desc="episodes", unit="ep") as bar:
        if workers == 1:
            results: Iterable[dict] = map(run_grid_episode, jobs)
            for record in results:
                log.append(record)
                bar.update()
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for record in pool.imap_unordered(run_grid_episode, jobs):
                    log.append(record)
                    bar.update()
    wanted = {_key(row.env, row.label, row.budget, seed) for row in rows for seed in seeds}
    return [record for record in log.records if EpisodeLog._key_of(record) in wanted]
