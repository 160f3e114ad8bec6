"""Recording transitions: one episode of any action source in the true simulator, row by row.

A *source* answers ``begin(env, length)`` (a new episode of at most ``length`` steps) and
``act(env, observation, step)`` (a normalised action ``(A,)``); :func:`collect_episode` runs one
and keeps every transition, which is what a world model trains on. experiments/collect_data.py
collects agents', smooth random and planners' episodes into one file;
experiments/improve_world_model.py runs :func:`planner_episode`, :func:`random_episode` and
:func:`agent_episode` jobs, one file per episode.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np

from envs.datasets import smooth_random_actions
from envs.mujoco_tasks import MujocoTask
from envs.planning_state import read_planning_state
from envs.registry import get_task, make_env
from experiments.harness.cli import UsageError
from planner.action_scaling import ActionScaling
from planner.planning import PlanResult
from planner.threads import use_planning_threads
from policies.setup import Planning, PlanningSetup, load_agent

TRANSITION_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminated")
"""The arrays of an episode's transitions, L rows each: ``observations (L, O)``, normalised
``actions (L, A)``, ``rewards (L,)``, ``next_observations (L, O)``, ``terminated (L,)``."""


class PlannerSource:
    """The planner of a resolved :class:`~policies.setup.Planning`, planning from the env's
    ``planning_state()`` (or from the observation, for a world model), the observation its
    prior's condition where the prior is conditioned, as the policy plans.

    Attributes:
        planner: the planner.
        objective: what scores its candidates (the planning's objective).
    """

    def __init__(self, planning: Planning) -> None:
        self.planner = planning.planner()
        self.objective = planning.objective
        self.from_observation = planning.plans_from_observation
        self.conditioned = planning.conditioned

    def begin(self, env: gym.Env, length: int | None) -> None:
        """Forget the previous episode's warm start."""
        self.planner.reset()

    def decide(self, env: gym.Env, observation: np.ndarray) -> PlanResult:
        """The planner's decision from the env's current state."""
        state = observation if self.from_observation else read_planning_state(env)
        return self.planner.plan(state, cond=observation if self.conditioned else None)

    def act(self, env: gym.Env, observation: np.ndarray, step: int) -> np.ndarray:
        """The planner's normalised action from the env's current state."""
        return self.decide(env, observation).action


class CandidateRecorder:
    """A planner's objective that also keeps ``k`` random candidates of every population it
    scores, each replayed in the simulator from the state the planner planned from.

    A kept candidate is stepped through ``replay`` (a copy of the task's env of its own) with the
    unwrapped env's own ``step`` (no reset, no time limit), up to its horizon or its terminal
    step, and stored as an episode of its own (:data:`TRANSITION_FIELDS`); its first observation
    is the task's :meth:`~envs.mujoco_tasks.MujocoTask.observations` of that state. These are
    the states and actions a world model's planner must rank: the candidates the prior proposes,
    from the states the planner drives the robot into. A simulator objective is handed the state;
    a world model's (``plans_from_observation``) only the observation, so the state is read from
    ``acting``, the env the planner acts in. Replaying needs the simulator's full state: a real
    robot cannot give this data. The scores are the objective's, unchanged, and the candidates
    are drawn from the recorder's own ``rng``: the planner's episode is the same with or
    without it.

    Attributes:
        plans_from_observation: the objective's (what the planner hands it).
        episodes: the replayed candidates so far, in the order they were scored.
        steps: for each, the episode step it was scored at (its state's time over the env's
            step duration).
    """

    def __init__(
        self,
        objective: Any,
        replay: gym.Env,
        k: int,
        rng: np.random.Generator,
        acting: gym.Env | None = None,
    ) -> None:
        self.plans_from_observation = getattr(objective, "plans_from_observation", False)
        if self.plans_from_observation and acting is None:
            raise ValueError(
                "this objective plans from the observation: pass acting, the env the planner "
                "acts in, whose simulator state the candidates are replayed from"
            )
        self.objective, self.replay, self.acting = objective, replay, acting
        self.k, self.rng = k, rng
        self.task = MujocoTask(replay)
        self.scaling = ActionScaling(replay.action_space.low, replay.action_space.high)
        self.episodes: list[dict[str, np.ndarray]] = []
        self.steps: list[int] = []

    def __call__(self, state: Any, actions: np.ndarray) -> np.ndarray:
        """The objective's rewards ``(N,)`` of ``actions (N, H, A)`` from ``state``; keeps ``k``."""
        rewards = self.objective(state, actions)
        if self.plans_from_observation:
            state = read_planning_state(self.acting)
        kept = self.rng.choice(len(actions), size=min(self.k, len(actions)), replace=False)
        self.task.restore(self.replay, state)
        base = self.replay.unwrapped
        step = round(base.data.time / base.dt)
        first = self.task.observations(base.data.qpos[None], base.data.qvel[None])[0]
        for row in np.sort(kept):
            self.episodes.append(self._replay(state, first, np.asarray(actions[row])))
            self.steps.append(step)
        return rewards

    def _replay(
        self, state: np.ndarray, observation: np.ndarray, plan: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The transitions of ``plan (H, A)`` from ``state`` (whose observation is
        ``observation``), to its terminal step."""
        self.task.restore(self.replay, state)
        base = self.replay.unwrapped
        rows = []
        for action in np.clip(plan, -1.0, 1.0):  # as scored; stored as float32
            next_observation, reward, terminated, _, _ = base.step(self.scaling.to_env(action))
            rows.append((observation, action, reward, next_observation, terminated))
            observation = next_observation
            if terminated:
                break
        return stored_transitions(*zip(*rows, strict=True))


def transitions(episodes: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The episodes' transitions (:data:`TRANSITION_FIELDS`) stored one after another, with
    ``episode_index (M,)``."""
    merged = {key: np.concatenate([e[key] for e in episodes]) for key in TRANSITION_FIELDS}
    lengths = [len(e["rewards"]) for e in episodes]
    merged["episode_index"] = np.repeat(np.arange(len(episodes)), lengths)
    return merged


def planner_source(setup: PlanningSetup, env: gym.Env) -> tuple[PlannerSource, Planning]:
    """The source planning with ``setup`` on ``env`` (seeded with ``setup.seed``), and the
    resolved :class:`~policies.setup.Planning` it plans with (budget, objective)."""
    planning = setup.resolve(env)
    return PlannerSource(planning), planning


def collect_episode(
    env: gym.Env,
    source: Any,
    seed: int,
    max_steps: int | None,
    action_noise: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """One episode from ``env.reset(seed=seed)``; returns its transitions (L rows each).

    The normalised action (source action + ``N(0, action_noise^2)``, clipped) is rounded to
    float32 before it is scaled and executed, so replaying the stored actions from the same reset
    reproduces the episode.
    """
    scaling = ActionScaling(env.action_space.low, env.action_space.high)
    limits = [n for n in (max_steps, env.spec.max_episode_steps) if n is not None]
    source.begin(env, min(limits) if limits else None)
    observation, _ = env.reset(seed=seed)
    observations, actions, rewards, terminals, next_observations = [], [], [], [], []
    for step in range(sys.maxsize if max_steps is None else max_steps):
        action = np.asarray(source.act(env, observation, step), dtype=np.float64)
        if action_noise:
            action = action + action_noise * rng.standard_normal(action.shape)
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        next_observation, reward, terminated, truncated, _ = env.step(scaling.to_env(action))
        observations.append(observation)
        actions.append(action)
        rewards.append(float(reward))
        terminals.append(bool(terminated))
        next_observations.append(next_observation)
        observation = next_observation
        if terminated or truncated:
            break
    return stored_transitions(observations, actions, rewards, next_observations, terminals)


def stored_transitions(
    observations: Any, actions: Any, rewards: Any, next_observations: Any, terminated: Any
) -> dict[str, np.ndarray]:
    """One episode's rows as stored (:data:`TRANSITION_FIELDS`): float32 observations and
    actions, float64 rewards, bool terminations."""
    arrays = (observations, actions, rewards, next_observations, terminated)
    dtypes = (np.float32, np.float32, np.float64, np.float32, bool)
    return {
        key: np.asarray(array, dtype=dtype)
        for key, array, dtype in zip(TRANSITION_FIELDS, arrays, dtypes, strict=True)
    }


class SmoothRandomSource:
    """One :func:`envs.datasets.smooth_random_actions` sequence over each whole episode.

    Its number of constant-level segments is drawn around ``length / segment_steps`` (from half
    to one and a half times that), so long episodes keep switching rather than holding a level
    for hundreds of steps.
    """

    def __init__(self, action_dim: int, segment_steps: float, rng: np.random.Generator) -> None:
        self.action_dim, self.segment_steps, self.rng = action_dim, segment_steps, rng
        self.sequence = np.empty((0, action_dim))

    def begin(self, env: gym.Env, length: int | None) -> None:
        """Draw the episode's sequence of ``length`` actions."""
        if length is None:
            raise UsageError(f"{env.spec.id} has no step limit: pass --max-steps")
        typical = max(1.0, length / self.segment_steps)
        segments = (max(1, round(0.5 * typical)), max(1, round(1.5 * typical)))
        self.sequence = smooth_random_actions(1, length, self.action_dim, self.rng, segments)[0]

    def act(self, env: gym.Env, observation: np.ndarray, step: int) -> np.ndarray:
        """Step ``step`` of the episode's sequence."""
        return self.sequence[step]


class AgentSource:
    """An SB3 agent's ``predict(observation, deterministic)``, normalised."""

    def __init__(self, model: Any, deterministic: bool, space: gym.spaces.Box) -> None:
        self.model, self.deterministic = model, deterministic
        self.scaling = ActionScaling(space.low, space.high)

    def begin(self, env: gym.Env, length: int | None) -> None:
        """Start an episode (agents keep no episode state)."""

    def act(self, env: gym.Env, observation: np.ndarray, step: int) -> np.ndarray:
        """The agent's normalised action (A,) for ``observation (O,)``."""
        action, _ = self.model.predict(observation, deterministic=self.deterministic)
        return self.scaling.to_normalised(action)


@dataclass(frozen=True)
class PlannerEpisode:
    """One episode of ``setup``'s planner in the true simulator from ``seed`` (which also seeds
    the planner and its world model), cut at ``max_steps``, planning on ``cores`` CPU cores
    (None: the policy in force, :func:`~planner.threads.use_planning_threads`)."""

    setup: PlanningSetup
    seed: int
    max_steps: int | None
    cores: int | None = None


def planner_episode(job: PlannerEpisode) -> dict[str, Any]:
    """Run one :class:`PlannerEpisode`; returns its transitions (:data:`TRANSITION_FIELDS`),
    ``seed``, ``return`` (the env's) and ``steps``. A module-level function of one picklable
    argument, so it runs as a local process or a Ray task alike."""
    use_planning_threads(job.cores)
    env = make_env(job.setup.task)
    source, _ = planner_source(replace(job.setup, seed=job.seed), env)
    return _recorded(env, source, job.seed, job.max_steps)


@dataclass(frozen=True)
class RandomEpisode:
    """One episode of smooth random actions (:class:`SmoothRandomSource`, a level every
    ``segment_steps`` steps on average) on ``task`` from ``seed``, cut at ``max_steps``."""

    task: str
    seed: int
    max_steps: int
    segment_steps: float = 16.0


def random_episode(job: RandomEpisode) -> dict[str, Any]:
    """Run one :class:`RandomEpisode`; returns what :func:`planner_episode` returns."""
    env = make_env(job.task)
    rng = np.random.default_rng(job.seed)
    source = SmoothRandomSource(env.action_space.shape[0], job.segment_steps, rng)
    return _recorded(env, source, job.seed, job.max_steps, rng)


@dataclass(frozen=True)
class AgentEpisode:
    """One episode of the SAC agent at ``agent`` on ``task`` from ``seed``, acting on its mean
    action plus ``N(0, noise^2)`` (normalised units), cut at ``max_steps``."""

    task: str
    agent: str
    seed: int
    max_steps: int
    noise: float = 0.0


def agent_episode(job: AgentEpisode) -> dict[str, Any]:
    """Run one :class:`AgentEpisode`; returns what :func:`planner_episode` returns."""
    env = make_env(job.task)
    model = load_agent(get_task(job.task), env, "sac", job.agent)
    source = AgentSource(model, deterministic=True, space=env.action_space)
    return _recorded(env, source, job.seed, job.max_steps, noise=job.noise)


def _recorded(
    env: gym.Env,
    source: Any,
    seed: int,
    max_steps: int | None,
    rng: np.random.Generator | None = None,
    noise: float = 0.0,
) -> dict[str, Any]:
    """The episode of ``source`` from ``seed`` (env closed after), with its scalars."""
    rng = np.random.default_rng(seed) if rng is None else rng
    episode = collect_episode(env, source, seed, max_steps, noise, rng)
    env.close()
    rewards = episode["rewards"]
    return {**episode, "seed": seed, "return": float(rewards.sum()), "steps": len(rewards)}
