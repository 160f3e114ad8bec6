"""Expert iteration's pieces: teacher episodes that record their plans, filtered imitation, and
the training set they make (used by experiments/improve_prior.py).

A teacher episode is a planner acting in the true simulator; it records, at every control step,
the normalised action it executed and the plan it chose (with the plan's predicted return).
Filtered imitation keeps the best episodes by return; the prior is then trained on the kept
episodes' plans and their executed action windows of H steps, both as the K knots the prior
decodes (a window is fitted by :meth:`planner.knots.KnotSchedule.fit`; K = H: the actions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.datasets import action_chunks
from envs.mujoco_rewards import CostTerm
from envs.registry import make_env
from experiments.harness.episodes import run_episode
from planner.files import atomic_write
from planner.knots import KnotSchedule
from planner.threads import use_planning_threads
from policies.setup import PlanningSetup

TEACHER_FIELDS = ("actions", "plans", "predicted", "rewards")
"""What a teacher episode file holds besides its scalars: executed normalised actions (L, A),
chosen plans as the K knots the planner searched (L, K, A), their predicted returns (L,) and
the env's rewards (L,)."""


class PlanRecorder:
    """The ``recorder`` of :func:`~experiments.harness.episodes.run_episode` that keeps each
    control step's executed action and chosen plan (its knots)."""

    def __init__(self) -> None:
        self.actions: list[np.ndarray] = []
        self.plans: list[np.ndarray] = []
        self.predicted: list[float] = []

    def add(self, env: Any, state: Any, result: Any) -> None:
        """Record one control step's :class:`~planner.planning.PlanResult`."""
        self.actions.append(np.asarray(result.action, dtype=np.float32))
        self.plans.append(np.asarray(result.knots, dtype=np.float32))
        self.predicted.append(float(result.predicted_reward))


@dataclass(frozen=True)
class TeacherJob:
    """One teacher episode: ``planner`` (``"de"`` over the prior at ``prior_path``, or an
    action-space baseline planning the prior's ``schedule``: K knots over H steps) at budget
    N x T, from ``seed``."""

    env: str
    planner: str
    prior_path: str | None
    population: int
    iterations: int
    schedule: KnotSchedule
    seed: int
    max_steps: int
    device: str = "cpu"
    costs: tuple[CostTerm, ...] | None = None
    """Planning cost terms (None: the task's)."""


def teacher_episode(job: TeacherJob) -> dict[str, Any]:
    """Run one :class:`TeacherJob` in the true simulator; returns ``seed``, ``return``,
    ``steps`` and the arrays of :data:`TEACHER_FIELDS`. A module-level function of one
    picklable argument, so it runs as a local process or a Ray task alike."""
    use_planning_threads()
    env = make_env(job.env)
    setup = PlanningSetup(
        task=job.env,
        planner=job.planner,
        population=job.population,
        iterations=job.iterations,
        horizon=job.schedule.horizon if job.planner != "de" else None,
        knots=job.schedule.knots if job.planner != "de" else None,
        interpolation=job.schedule.interpolation if job.planner != "de" else None,
        prior=job.prior_path if job.planner == "de" else None,
        device=job.device,
        seed=job.seed,
        costs=job.costs,
    )
    policy = setup.policy(env)
    recorder = PlanRecorder()
    episode = run_episode(env, policy, job.seed, job.max_steps, recorder)
    env.close()
    return {
        "seed": job.seed,
        "return": float(episode["return"]),
        "steps": int(episode["steps"]),
        "actions": np.stack(recorder.actions),
        "plans": np.stack(recorder.plans),
        "predicted": np.asarray(recorder.predicted, dtype=np.float64),
        "rewards": np.asarray(episode["rewards"], dtype=np.float64),
    }


def save_episode(
    path: Path, episode: dict[str, Any], fields: tuple[str, ...] = TEACHER_FIELDS
) -> None:
    """Write an episode's ``seed``, ``return``, ``steps`` and arrays ``fields`` (default: a
    teacher episode's) as an npz, atomically (a stopped run never leaves half a file)."""
    scalars = {key: np.asarray(episode[key]) for key in ("seed", "return", "steps")}
    with atomic_write(path) as file:
        np.savez_compressed(file, **scalars, **{key: episode[key] for key in fields})


def load_episode(path: Path, fields: tuple[str, ...] = TEACHER_FIELDS) -> dict[str, Any]:
    """An episode written by :func:`save_episode` with the same ``fields``."""
    with np.load(path) as archive:
        episode = {key: archive[key] for key in fields}
        episode["seed"] = int(archive["seed"])
        episode["return"] = float(archive["return"])
        episode["steps"] = int(archive["steps"])
    return episode


def keep_best(returns: np.ndarray | list[float], fraction: float) -> np.ndarray:
    """Filtered imitation: indices of the best ``fraction`` of episodes by return.

    Keeps exactly ``max(1, round(fraction * n))`` of ``n`` episodes, best first; ties go to the
    earlier episode. ``fraction`` must be in (0, 1].
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"the kept fraction must be in (0, 1], got {fraction}")
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim != 1 or len(returns) == 0:
        raise ValueError(f"returns must be a non-empty 1-D array, got shape {returns.shape}")
    count = max(1, round(fraction * len(returns)))
    order = np.argsort(-np.nan_to_num(returns, nan=-math.inf), kind="stable")
    return order[:count]


def imitation_set(episodes: list[dict[str, Any]], schedule: KnotSchedule) -> np.ndarray:
    """The training plans ``(M, K, A)`` of kept episodes, as ``schedule``'s knots: every window
    of H executed actions inside an episode (fitted to knots), and every plan the teacher
    chose."""
    windows, plans = [], []
    for episode in episodes:
        actions = episode["actions"]
        if len(actions) >= schedule.horizon:
            index = np.zeros(len(actions), dtype=np.int64)
            chunks, _ = action_chunks(actions, index, schedule.horizon, stride=1, pad_ends=False)
            windows.append(schedule.fit(chunks))
        if episode["plans"].shape[1] != schedule.knots:
            raise ValueError(
                f"teacher plans have {episode['plans'].shape[1]} knots, the prior "
                f"{schedule.knots}: the teacher must plan with the prior's knots"
            )
        plans.append(episode["plans"])
    return np.concatenate(windows + plans).astype(np.float32)
