"""Plannable MuJoCo tasks over Gymnasium v5 envs: full-state snapshots and batched planning rewards.

A :class:`MujocoTask` wraps one Gymnasium v5 MuJoCo env and gives the planner

- ``snapshot(env) -> state (D,)`` and ``restore(env, state)``: the env's whole integration state
  (``mj_getState`` with ``mjSTATE_INTEGRATION``: time, qpos, qvel, act, history, plugin state,
  ``qacc_warmstart`` and the user inputs). The warm start is in it because MuJoCo's iterative
  constraint solver starts from it: contact-rich tasks replay bit for bit only with it.
- ``objective(threads)`` -> :class:`MujocoObjective`: ``rewards (N,) = objective(state (D,),
  actions (N, H, A) in [-1, 1])``, equal to the sum of the env's ``step`` rewards for each
  action sequence (per-task terms in :mod:`envs.mujoco_rewards`).

Rollouts run on ``mujoco.batch`` (MuJoCo >= 4.0): a persistent thread pool stepping N
simulations, recording any ``mjData`` field after every substep and keeping per-simulation
warning counters. It is used rather than ``mujoco.rollout`` because ``mujoco.rollout`` records
only states and sensors, and Reacher's reward reads a body position that neither holds (the
fourth RK4 stage's kinematics, see :mod:`envs.mujoco_rewards`); the batch's results are
bit-identical to stepping one ``mjData`` per candidate at any thread count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import gymnasium
import mujoco
import numpy as np
from mujoco import batch as mj_batch

from envs.mujoco_rewards import SUPPORTED_ENV_IDS, CostTerm, PlanningCosts, reward_for
from planner.action_scaling import ActionScaling
from planner.objective import TerminalValue, terminal_values
from planner.threads import current_planning_threads
from planner.validation import check_count

STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION.value
_TIME = mujoco.mjtState.mjSTATE_TIME.value
_WARNING_COUNT = 1  # mjWarningStat is (lastinfo, number)
DEFAULT_EPISODE_STEPS = 1000
"""The step limit assumed for an env made without one (every v5 MuJoCo env's registered limit)."""


@dataclass(frozen=True)
class TaskInfo:
    """A task's short name, Gymnasium id and default planning horizon H (env steps)."""

    short_name: str
    env_id: str
    default_horizon: int


TASKS: dict[str, TaskInfo] = {
    info.short_name: info
    for info in (
        TaskInfo("inverted-pendulum", "InvertedPendulum-v5", 16),
        TaskInfo("reacher", "Reacher-v5", 16),
        TaskInfo("half-cheetah", "HalfCheetah-v5", 16),
        TaskInfo("hopper", "Hopper-v5", 16),
        TaskInfo("walker2d", "Walker2d-v5", 32),
        TaskInfo("swimmer", "Swimmer-v5", 32),
        TaskInfo("inverted-double-pendulum", "InvertedDoublePendulum-v5", 16),
    )
}


class MujocoTask:
    """A Gymnasium v5 MuJoCo env the planner can search over.

    Args:
        env: the env (wrapped or not), made with ``gymnasium.make`` so that it has a spec. Its
            model and reward weights are read here; later edits to the env's model do not
            reach objectives made from this task.

    Attributes:
        env: the env given.
        env_id: its Gymnasium id, e.g. ``"Hopper-v5"``.
        model: its ``MjModel``.
        frame_skip: physics steps per env step; each action is held for that many.
        action_dim: A. obs_dim: O. state_dim: D, the length of a snapshot.
        default_horizon: H, planning horizon in env steps.
        action_scaling: the map between normalised actions and the env's bounds.
        termination_cost: what a planning objective charges a candidate that terminates (a
            fall) within its horizon: the reward's ``alive_bonus`` times the episode's step
            limit, the most a fall forfeits. 0 for tasks that never terminate.
    """

    def __init__(self, env: gymnasium.Env):
        base = env.unwrapped
        spec = base.spec
        info = next((i for i in TASKS.values() if spec and i.env_id == spec.id), None)
        if info is None:
            raise NotImplementedError(
                f"no planning task for env {spec.id if spec else type(base).__name__!r}; make "
                f"one of {', '.join(SUPPORTED_ENV_IDS)} with gymnasium.make (or make_task)"
            )
        self.reward = reward_for(base)
        self.env = env
        self.env_id = spec.id
        self.model = base.model
        self.frame_skip = int(base.frame_skip)
        self.action_scaling = ActionScaling(base.action_space.low, base.action_space.high)
        self.action_dim = self.action_scaling.action_dim
        self.obs_dim = int(base.observation_space.shape[0])
        self.state_dim = int(mujoco.mj_stateSize(self.model, STATE_SPEC))
        self.default_horizon = info.default_horizon
        self.termination_cost = float(self.reward.alive_bonus) * episode_limit(base)
        self._observer: gymnasium.Env | None = None  # made on the first observations() call

    def __repr__(self) -> str:
        return f"MujocoTask({self.env_id}, A={self.action_dim}, D={self.state_dim})"

    def snapshot(self, env: gymnasium.Env | None = None) -> np.ndarray:
        """The full integration state ``(D,)`` of ``env`` (default: the task's env)."""
        return snapshot(self.env if env is None else env)

    def restore(self, env: gymnasium.Env | None, state: np.ndarray) -> None:
        """Put ``env`` (default: the task's env) back into a snapshot ``state (D,)``.

        Stepping afterwards is bit-identical to stepping from the snapshotted moment. Derived
        fields (body positions, ...) are recomputed by ``mj_forward`` (which leaves the warm
        start alone), so they are current kinematics rather than the previous step's last
        integrator stage.
        """
        base = (self.env if env is None else env).unwrapped
        state = self.check_state(state)
        mujoco.mj_setState(base.model, base.data, state, STATE_SPEC)
        mujoco.mj_forward(base.model, base.data)

    def check_state(self, state: Any) -> np.ndarray:
        """``state`` as a contiguous float64 ``(D,)`` array, or ValueError saying what is wrong."""
        array = np.ascontiguousarray(state, dtype=np.float64)
        if array.shape != (self.state_dim,):
            raise ValueError(
                f"{self.env_id} state must have shape ({self.state_dim},) as returned by "
                f"task.snapshot(env), got {array.shape}"
            )
        return array

    def observations(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """The env's observations ``(N, O)`` of the states ``qpos (N, nq)``, ``qvel (N, nv)``:
        each set into a private copy of the env (made from its spec, never stepped), forwarded
        and read by the env's own observation function."""
        if self._observer is None:
            spec = self.env.unwrapped.spec
            self._observer = gymnasium.make(spec.id, **spec.kwargs).unwrapped
        base = self._observer
        out = np.empty((len(qpos), self.obs_dim))
        for row, (position, velocity) in enumerate(zip(qpos, qvel, strict=True)):
            base.data.qpos[:], base.data.qvel[:] = position, velocity
            mujoco.mj_forward(base.model, base.data)
            out[row] = base._get_obs()
        return out

    def scale_actions(self, actions: np.ndarray) -> np.ndarray:
        """Normalised actions ``(..., A)`` in [-1, 1] (clipped) -> env actions within bounds."""
        return self.action_scaling.to_env(actions)

    def objective(
        self,
        threads: int | None = None,
        termination_cost: float | None = None,
        costs: tuple[CostTerm, ...] = (),
        terminal_value: TerminalValue | None = None,
    ) -> MujocoObjective:
        """A batched planning reward on ``threads`` threads (default: the thread policy's) that
        charges ``termination_cost`` for a fall (default: the task's) and the planning-only
        cost terms ``costs`` at every step, and adds ``terminal_value`` to the candidates that
        do not fall (default: none)."""
        return MujocoObjective(self, threads, termination_cost, costs, terminal_value)


class MujocoObjective:
    """Planning reward of a task: ``rewards (N,) = objective(state (D,), actions (N, H, A))``.

    Each candidate's actions (normalised, clipped to [-1, 1], scaled to the env's bounds) are
    held for ``frame_skip`` physics steps each, from ``state``; its reward is the sum of the
    env's per-step rewards up to and including its terminal step (Hopper falling, the pendulum
    tipping), nothing after. A candidate that terminates within the horizon is also charged
    ``termination_cost``, once: planning only, so that a fall ranks below surviving even when it
    happens late in the horizon or after a lunge that paid well (with the bare env reward a fall
    only forfeits the horizon's remaining alive bonus, at most H, not the episode's). Episode
    returns are the env's own and never include it. A candidate whose simulation diverges (any
    MuJoCo warning: unstable qpos/qvel/qacc and the automatic reset that follows, full contact
    buffers, ...) at or before its terminal step gets reward -inf, never the score of a reset
    state; divergence after the terminal step does not matter, as the env would have stopped.
    Planning-only cost terms (``costs``, :class:`envs.mujoco_rewards.PlanningCosts`) are
    subtracted from each step's reward before the steps are summed, so they count up to the
    terminal step too; like the termination cost they never enter an episode's return. An
    optional ``terminal_value`` of the observation of a candidate's last state is added to the
    reward of every candidate that does not terminate within the horizon: what it would earn
    after it. It is planning only too.

    Args:
        task: the task to score.
        threads: threads of the persistent pool, the caller's included (default: the planning
            thread policy's, :func:`planner.threads.current_planning_threads`).
        termination_cost: charged once per terminating candidate (None: the task's
            ``termination_cost``; 0: score with the env's reward alone).
        costs: planning-only cost terms charged at every step (default: none); a term the
            task's body lacks raises ValueError.
        terminal_value: ``values (N,) = terminal_value(observations (N, O))``, one finite value
            per candidate (:data:`TerminalValue`; None: nothing after the horizon).

    Attributes:
        num_evaluated: candidates scored so far.
        num_diverged: of those, candidates scored -inf because their simulation diverged.
        pools_built: thread pools built so far (one for a planner at a fixed budget).
    """

    def __init__(
        self,
        task: MujocoTask,
        threads: int | None = None,
        termination_cost: float | None = None,
        costs: tuple[CostTerm, ...] = (),
        terminal_value: TerminalValue | None = None,
    ):
        threads = current_planning_threads().rollout_threads if threads is None else threads
        check_count("threads", threads, hint="or None for every core")
        cost = task.termination_cost if termination_cost is None else termination_cost
        if not (math.isfinite(cost) and cost >= 0):
            raise ValueError(
                f"termination_cost must be a finite number >= 0 (0: no cost), got {cost!r}"
            )
        self.task = task
        self.threads = threads
        self.termination_cost = float(cost)
        self.costs = PlanningCosts.from_env(task.env.unwrapped, tuple(costs))
        self.terminal_value = terminal_value
        self.num_evaluated = 0
        self.num_diverged = 0
        # qpos is always recorded: the state before each env step is the qpos after the last;
        # qvel too where a terminal value reads the last state
        needed = ("qpos", "qvel") if terminal_value is not None else ("qpos",)
        self._fields = tuple(dict.fromkeys((*needed, *task.reward.fields)))
        self._record = (*self._fields, _TIME)
        self._batch: mj_batch.Batch | None = None
        self.pools_built = 0

    def __call__(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Rewards ``(N,)`` float64 of ``actions (N, H, A)`` from ``state (D,)``, both checked."""
        return self._rewards(self.task.check_state(state), self._check_actions(actions))

    def bind(self, state: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """``rewards (N,) = score(actions (N, H, A))`` from ``state (D,)``, checked once here.

        For a planner, whose candidates are finite ``(N, H, A)`` arrays in [-1, 1] by
        construction: the actions are not checked again on every call.
        """
        return partial(self._rewards, self.task.check_state(state))

    def _rewards(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        task = self.task
        n, horizon, _ = actions.shape
        skip = task.frame_skip
        env_actions = task.scale_actions(actions)

        # Simulate
        batch, ids = self._pool_for(n)
        batch.state[:n] = state
        batch.warning[:n] = 0
        records = batch.rollout(
            horizon * skip,
            control=np.repeat(env_actions, skip, axis=1),
            record=self._record,
            ids=ids,
        )

        # Score every env step from what the env reads after its last substep
        after = {field: records[field][:, skip - 1 :: skip] for field in self._fields}
        qpos0 = state[1 : 1 + task.model.nq]  # mj_getState order: time, then qpos
        qpos_before = np.concatenate(
            [np.broadcast_to(qpos0, (n, 1, task.model.nq)), after["qpos"][:, :-1]], axis=1
        )
        step_rewards, terminated = task.reward(after, qpos_before, env_actions)
        if self.costs:
            step_rewards = step_rewards - self.costs(after, qpos_before, env_actions)
        last_step = np.where(terminated.any(axis=1), terminated.argmax(axis=1), horizon - 1)
        counted = np.arange(horizon) <= last_step[:, None]
        rewards = np.where(counted, step_rewards, 0.0).sum(axis=1)
        fell = terminated.any(axis=1)
        rewards -= self.termination_cost * fell
        if self.terminal_value is not None:
            rewards += self._terminal_values(after, ~fell & np.isfinite(rewards))

        # Invalidate divergence up to the terminal step: the batch stops a simulation at its
        # first warning and repeats that substep's record, so time stops advancing there
        warned = batch.warning[:n, :, _WARNING_COUNT].any(axis=1)
        time = records[_TIME][:, :, 0]
        frozen = time[:, 1:] == time[:, :-1]
        warning_substep = np.where(frozen.any(axis=1), frozen.argmax(axis=1), horizon * skip - 1)
        diverged = (warned & (warning_substep // skip <= last_step)) | ~np.isfinite(rewards)
        rewards[diverged] = -np.inf
        self.num_evaluated += n
        self.num_diverged += int(diverged.sum())
        return rewards

    def _terminal_values(self, after: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
        """``terminal_value`` of the observation after the last step of the candidates ``rows``
        (a mask ``(N,)``; the others get 0), checked for shape and finiteness."""
        qpos, qvel = after["qpos"][rows, -1], after["qvel"][rows, -1]
        finite = np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
        rows = np.flatnonzero(rows)[finite]  # a diverged state scores -inf below anyway
        values = np.zeros(len(after["qpos"]))
        if not len(rows):
            return values
        observations = self.task.observations(qpos[finite], qvel[finite])
        values[rows] = terminal_values(self.terminal_value, observations)
        return values

    def close(self) -> None:
        """Stop the thread pool (a later call starts a new one)."""
        self._batch = None

    def _pool_for(self, n: int) -> tuple[mj_batch.Batch, np.ndarray | None]:
        """The pool and the ids of its first ``n`` simulations (None: all of them).

        One pool serves every call: it grows to the largest N asked for and runs smaller calls
        on its first rows, so a planner whose populations differ within a step (64, 62, 2)
        builds it once.
        """
        if self._batch is None or self._batch.nsim < n:
            self._batch = mj_batch.Batch(self.task.model, nsim=n, nthread=self.threads)
            self.pools_built += 1
        return self._batch, None if n == self._batch.nsim else np.arange(n)

    def _check_actions(self, actions: Any) -> np.ndarray:
        array = np.asarray(actions, dtype=np.float64)
        expected = f"(N, H, {self.task.action_dim}) normalised actions for {self.task.env_id}"
        if array.ndim != 3 or array.shape[2] != self.task.action_dim or 0 in array.shape[:2]:
            raise ValueError(f"actions must be {expected}, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"actions must be finite {expected}; got NaN or inf entries")
        return array


def episode_limit(env: gymnasium.Env) -> int:
    """The env's episode step limit (:data:`DEFAULT_EPISODE_STEPS` without one)."""
    spec = env.unwrapped.spec
    return (spec.max_episode_steps if spec else None) or DEFAULT_EPISODE_STEPS


def termination_cost(env: gymnasium.Env) -> float:
    """The planning cost of a fall in a supported env: its reward's ``alive_bonus`` times its
    episode step limit, the most a fall forfeits (``MujocoTask.termination_cost``)."""
    return float(reward_for(env.unwrapped).alive_bonus) * episode_limit(env)


def snapshot(env: gymnasium.Env) -> np.ndarray:
    """The full integration state ``(D,)`` of a MuJoCo env (see :class:`MujocoTask`)."""
    base = env.unwrapped
    state = np.empty(mujoco.mj_stateSize(base.model, STATE_SPEC))
    mujoco.mj_getState(base.model, base.data, state, STATE_SPEC)
    return state


def make_task(name: str, **env_kwargs: Any) -> MujocoTask:
    """A task from a short name (``"hopper"``, see ``TASKS``) or a Gymnasium id (``"Hopper-v5"``).

    ``env_kwargs`` go to ``gymnasium.make`` (reward weights, ``frame_skip``, ``render_mode``,
    ...); the planning reward reads the weights from the made env.
    """
    info = TASKS.get(name)
    env_id = info.env_id if info else name
    if env_id not in SUPPORTED_ENV_IDS:
        raise NotImplementedError(
            f"no planning task {name!r}; use a short name ({', '.join(TASKS)}) or a Gymnasium "
            f"id ({', '.join(SUPPORTED_ENV_IDS)})"
        )
    return MujocoTask(gymnasium.make(env_id, **env_kwargs))
