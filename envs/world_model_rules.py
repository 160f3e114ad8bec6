"""The MuJoCo tasks' termination and reward rules on observations, for planning with a learned
world model.

:class:`planner.world_model.WorldModelObjective` predicts observations, not simulator states; it
takes the task's termination as a plain function ``terminated (N,) = fn(observations (N, O))``
and its reward as ``rewards (N,) = fn(observations (N, O), actions (N, A), next_observations
(N, O))`` (mbrl-lib style). Each rule here applies the env's own terms, with the env's own
weights and ranges (read as :mod:`envs.mujoco_rewards` reads them), to observations: Hopper and
Walker2d rebuild ``qpos`` and ``qvel`` from the observation and call the same
:class:`envs.mujoco_rewards.HealthyRange` the simulator objective uses.

Rewards, per task (``reward_fn``); actions are the planner's, normalised to [-1, 1], and
scaled to the env's bounds for the control cost:

- HalfCheetah, Hopper, Walker2d, Swimmer: ``forward_weight * next_obs[i]`` with ``i`` the
  observed root x velocity ``qvel[0]`` (the first velocity after the observed ``qpos``:
  HalfCheetah 8, Hopper 5, Walker2d 8, Swimmer 3), plus ``healthy_reward`` times the health of
  ``next_obs`` (Hopper, Walker2d), minus ``control_weight * sum(action**2)``. Control cost and
  health are the env's exactly. The forward term is not: the env pays the x displacement over
  the step divided by dt, the mean velocity over its ``frame_skip`` substeps, which x (not
  observed) would give; the observation holds only the velocity at the step's end. Hopper and
  Walker2d also clip observed velocities to [-10, 10].
- Reacher: ``-dist_weight * |next_obs[8:10]|`` (fingertip minus target, x and y, read after the
  step as the env's reward reads it; z is 0 for both bodies) minus the control cost: exact.
- InvertedPendulum: 1 while the pole stands (the termination rule on ``next_obs``): exact.
- InvertedDoublePendulum: none; its reward reads the pole tip's site position, which the
  observation does not hold, so a world model must learn it.

A world model plans on every task whose termination the observation shows
(:func:`world_model_tasks`: the MuJoCo tasks but InvertedDoublePendulum); where no reward rule
exists, it plans with its learned reward head.

One approximation of termination: Hopper's observation clips joint velocities to [-10, 10] while
its healthy state range is (-100, 100), so a velocity above 100 (never seen in practice) cannot
end an episode in the model. A non-finite observation always terminates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.envs.mujoco.inverted_double_pendulum_v5 import InvertedDoublePendulumEnv
from gymnasium.envs.mujoco.inverted_pendulum_v5 import InvertedPendulumEnv

from envs.mujoco_rewards import (
    CostTerm,
    HealthyRange,
    LocomotionReward,
    PlanningCosts,
    ReacherReward,
    reward_for,
)
from envs.registry import get_task, make_env, task_names
from planner.action_scaling import ActionScaling


@dataclass(frozen=True)
class ObservedHealth:
    """Hopper/Walker2d: unhealthy (terminated) when ``HealthyRange`` fails on the observation.

    The observation is ``qpos[1:]`` (or all of ``qpos`` when the env observes x) followed by
    ``qvel``; x never enters the health check, so it is filled with 0 when not observed.
    """

    healthy: HealthyRange
    nq: int
    x_observed: bool

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        """``terminated (N,)`` from ``observations (N, O)``."""
        return ~self.healthy(*observed_state(observations, self.nq, self.x_observed))


def observed_state(
    observations: np.ndarray, nq: int, x_observed: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``qpos (N, nq)`` and ``qvel (N, O - nq + 1 or O - nq)`` of a locomotion env's
    ``observations (N, O)`` (``qpos[1:]`` or all of ``qpos``, then ``qvel``); an unobserved x
    is filled with 0 (no health check or cost term reads it)."""
    obs = np.asarray(observations, dtype=np.float64)
    if x_observed:
        return obs[:, :nq], obs[:, nq:]
    x = np.zeros((len(obs), 1))
    return np.concatenate([x, obs[:, : nq - 1]], axis=1), obs[:, nq - 1 :]


def _qpos_layout(base: gym.Env) -> tuple[int, bool]:
    """``nq`` of the unwrapped locomotion env ``base`` and whether its observation holds x."""
    return int(base.model.nq), not base._exclude_current_positions_from_observation


def pole_fallen(observations: np.ndarray) -> np.ndarray:
    """InvertedPendulum: terminated when the pole angle (``obs[1]``) leaves [-0.2, 0.2]."""
    obs = np.asarray(observations, dtype=np.float64)
    return ~np.isfinite(obs).all(axis=1) | (np.abs(obs[:, 1]) > 0.2)


def termination_fn(env: gym.Env):
    """The termination rule on observations of a supported MuJoCo env (None: it never ends).

    Raises:
        NotImplementedError: InvertedDoublePendulum, whose rule reads a site position that its
            observation does not hold.
    """
    base = env.unwrapped
    if isinstance(base, InvertedPendulumEnv):
        return pole_fallen
    if isinstance(base, InvertedDoublePendulumEnv):
        raise NotImplementedError(
            "InvertedDoublePendulum ends on the pole tip's height, which its observation does "
            "not hold; plan it with the simulator reward"
        )
    reward = reward_for(base)
    if isinstance(reward, LocomotionReward) and reward.terminate_when_unhealthy:
        return ObservedHealth(reward.healthy, *_qpos_layout(base))
    return None


def winding_angles(env: gym.Env) -> tuple[int, ...]:
    """Observation dims a world model of ``env`` reads on the circle
    (:attr:`planner.world_model.WorldModelConfig.periodic`): the observed angles of hinge joints
    without limits on a locomotion task that no termination ends first.

    HalfCheetah's root pitch (``obs[1]``) is one: every flip adds 2 pi, and a model that reads it
    raw meets, after the first flip, inputs it never saw (a 1000-step episode of its planner
    reached 12.8 rad and stopped running). Hopper's and Walker2d's root pitch is a hinge without
    limits too, but their healthy range ends the episode within +-1 rad, so they read it raw
    (as their shipped models were trained). Where the observation is not ``qpos`` (all or but
    its leading entries) followed by ``qvel``, none.
    """
    base = env.unwrapped
    try:
        reward = reward_for(base)
    except NotImplementedError:
        return ()
    if not isinstance(reward, LocomotionReward) or termination_fn(env) is not None:
        return ()
    model = base.model
    unobserved = model.nq + model.nv - int(np.prod(base.observation_space.shape))
    if not 0 <= unobserved <= model.nq:
        return ()
    hinges = (
        int(model.jnt_qposadr[j])
        for j in range(model.njnt)
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE and not model.jnt_limited[j]
    )
    return tuple(sorted(adr - unobserved for adr in hinges if adr >= unobserved))


@dataclass(frozen=True)
class ObservedLocomotionReward:
    """HalfCheetah, Hopper, Walker2d, Swimmer: the env's reward terms on observations.

    ``forward``: ``forward_weight * next_obs[velocity_index]``, the observed root x velocity at
    the step's end (the env divides the step's x displacement by dt instead); ``healthy``:
    ``healthy_reward`` where ``health`` (the termination rule's check) passes on ``next_obs``;
    ``control``: ``control_weight * sum(env action**2)``.
    """

    velocity_index: int
    forward_weight: float
    control_weight: float
    scaling: ActionScaling
    health: ObservedHealth | None = None
    healthy_reward: float = 0.0

    def terms(self, observations, actions, next_observations) -> dict[str, np.ndarray]:
        """The named terms ``(N,)`` each; the reward is ``forward + healthy - control``."""
        next_obs = np.asarray(next_observations, dtype=np.float64)
        terms = {
            "forward": self.forward_weight * next_obs[:, self.velocity_index],
            "healthy": np.zeros(len(next_obs)),
            "control": _control_cost(self.control_weight, self.scaling, actions),
        }
        if self.health is not None:
            terms["healthy"] = self.healthy_reward * ~self.health(next_obs)
        return terms

    def __call__(self, observations, actions, next_observations) -> np.ndarray:
        """``rewards (N,)`` from ``observations, next_observations (N, O)``, ``actions (N, A)``."""
        terms = self.terms(observations, actions, next_observations)
        return terms["forward"] + terms["healthy"] - terms["control"]


@dataclass(frozen=True)
class ObservedReacherReward:
    """Reacher: ``distance``, ``dist_weight`` times the norm of ``next_obs[8:10]`` (fingertip
    minus target, after the step, as the env's reward reads it), and the control cost."""

    dist_weight: float
    control_weight: float
    scaling: ActionScaling

    def terms(self, observations, actions, next_observations) -> dict[str, np.ndarray]:
        """The named terms ``(N,)`` each; the reward is ``-distance - control``."""
        vec = np.asarray(next_observations, dtype=np.float64)[:, 8:10]
        return {
            "distance": self.dist_weight * np.linalg.norm(vec, axis=-1),
            "control": _control_cost(self.control_weight, self.scaling, actions),
        }

    def __call__(self, observations, actions, next_observations) -> np.ndarray:
        """``rewards (N,)`` from ``observations, next_observations (N, O)``, ``actions (N, A)``."""
        terms = self.terms(observations, actions, next_observations)
        return -terms["distance"] - terms["control"]


def pole_standing_reward(observations, actions, next_observations) -> np.ndarray:
    """InvertedPendulum: 1 where the pole still stands after the step, else 0, ``(N,)``."""
    return (~pole_fallen(next_observations)).astype(np.float64)


def _control_cost(weight: float, scaling: ActionScaling, actions) -> np.ndarray:
    """``weight * sum(env action**2)`` ``(N,)`` of normalised ``actions (N, A)``."""
    return weight * np.square(scaling.to_env(actions)).sum(axis=-1)


def reward_fn(env: gym.Env):
    """The reward rule on observations of a supported MuJoCo env, or None where its observation
    cannot give the reward (InvertedDoublePendulum: the pole tip's site position is not
    observed) and a world model must learn it.

    Raises:
        NotImplementedError: an env with no planning reward at all (:func:`reward_for`).
    """
    base = env.unwrapped
    if isinstance(base, InvertedPendulumEnv):
        return pole_standing_reward
    if isinstance(base, InvertedDoublePendulumEnv):
        return None
    reward = reward_for(base)
    scaling = ActionScaling(base.action_space.low, base.action_space.high)
    if isinstance(reward, ReacherReward):
        return ObservedReacherReward(reward.dist_weight, reward.control_weight, scaling)
    health = None
    if reward.healthy is not None:
        health = ObservedHealth(reward.healthy, *_qpos_layout(base))
    return ObservedLocomotionReward(
        velocity_index=base.observation_structure["qpos"],
        forward_weight=reward.forward_weight,
        control_weight=reward.control_weight,
        scaling=scaling,
        health=health,
        healthy_reward=reward.healthy_reward,
    )


@dataclass(frozen=True)
class ObservedCosts:
    """A task's planning-only cost terms (:class:`envs.mujoco_rewards.PlanningCosts`) on
    observations, so a world model's planner is charged what the simulator's is.

    Torso height and pitch (``height``, ``upright``, ``flip``) read the observed ``qpos``
    exactly; ``speed`` and ``forward`` read the observed root x velocity at the step's end, as
    :class:`ObservedLocomotionReward`'s forward term does (the simulator's costs read the
    step's mean velocity); ``control`` reads the action exactly.
    """

    costs: PlanningCosts
    nq: int
    x_observed: bool
    velocity_index: int
    scaling: ActionScaling

    def __call__(self, observations, actions, next_observations) -> np.ndarray:
        """``costs (N,)`` of the steps from ``observations`` to ``next_observations (N, O)`` by
        normalised ``actions (N, A)``."""
        qpos, _ = observed_state(next_observations, self.nq, self.x_observed)
        x_velocity = np.asarray(next_observations, dtype=np.float64)[:, self.velocity_index]
        return self.costs.of(qpos, x_velocity, self.scaling.to_env(actions))


def cost_fn(env: gym.Env, costs: tuple[CostTerm, ...]) -> ObservedCosts | None:
    """The cost terms ``costs`` on observations of ``env`` (None: no terms, or all of weight 0).

    Raises:
        ValueError: a term ``env`` lacks what it reads (as in simulation), or ``env`` is not a
            locomotion env (no other task's observation is read here).
    """
    base = env.unwrapped
    resolved = PlanningCosts.from_env(base, tuple(costs))
    if not resolved:
        return None
    reward = reward_for(base)
    if not isinstance(reward, LocomotionReward):
        raise ValueError(
            "cost terms on a world model's observations are written for the locomotion envs "
            f"only, not {type(base).__name__}: pass no cost terms"
        )
    nq, x_observed = _qpos_layout(base)
    return ObservedCosts(
        resolved,
        nq=nq,
        x_observed=x_observed,
        velocity_index=base.observation_structure["qpos"],
        scaling=ActionScaling(base.action_space.low, base.action_space.high),
    )


@functools.cache
def world_model_tasks() -> tuple[str, ...]:
    """Short names of the tasks a learned world model can plan on: those whose termination rule
    reads only the observation (:func:`termination_fn`; not the unicycle tasks, nor
    InvertedDoublePendulum). A task without a reward rule (:func:`reward_fn`) plans with the
    model's reward head."""
    return tuple(name for name in task_names() if _termination_refused(name) is None)


def check_world_model_task(name: str) -> None:
    """Raise ValueError, saying why and naming the tasks that can, unless a learned world model
    can plan on task ``name`` (a short name or Gymnasium id)."""
    spec = get_task(name)  # ValueError naming the known tasks
    reason = _termination_refused(spec.name)
    if reason is not None:
        raise ValueError(f"{reason}; a world model plans on {', '.join(world_model_tasks())}")


def _termination_refused(name: str) -> str | None:
    """Why task ``name`` has no termination rule on observations (None: it has one)."""
    env = make_env(name)
    try:
        termination_fn(env)
    except NotImplementedError as exc:
        return str(exc)
    finally:
        env.close()
    return None
