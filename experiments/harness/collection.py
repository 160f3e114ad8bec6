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
    prior's condition where the prior is conditioned, as the policy plans."""

    def __init__(self, planning: Planning) -> None:
        self.planner = planning.planner()
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
    return {
        "observations": np.asarray(observations, dtype=np.float32),
        "actions": np.asarray(actions, dtype=np.float32),
        "rewards": np.asarray(rewards, dtype=np.float64),
        "next_observations": np.asarray(next_observations, dtype=np.float32),
        "terminated": np.asarray(terminals, dtype=bool),
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
