"""The MuJoCo tasks' termination rules on observations, for planning with a learned world model.

:class:`planner.world_model.WorldModelObjective` predicts observations, not simulator states; it
takes the task's termination as a plain function ``terminated (N,) = fn(observations (N, O))``
(mbrl-lib style). Each rule here applies the env's own check, with the env's own ranges, to an
observation: Hopper and Walker2d rebuild ``qpos`` and ``qvel`` from the observation and call the
same :class:`envs.mujoco_rewards.HealthyRange` the simulator objective uses.

One approximation: Hopper's observation clips joint velocities to [-10, 10] while its healthy
state range is (-100, 100), so a velocity above 100 (never seen in practice) cannot end an
episode in the model. A non-finite observation always terminates.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.inverted_double_pendulum_v5 import InvertedDoublePendulumEnv
from gymnasium.envs.mujoco.inverted_pendulum_v5 import InvertedPendulumEnv

from envs.mujoco_rewards import HealthyRange, LocomotionReward, reward_for


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
        obs = np.asarray(observations, dtype=np.float64)
        if self.x_observed:
            qpos, qvel = obs[:, : self.nq], obs[:, self.nq :]
        else:
            x = np.zeros((len(obs), 1))
            qpos, qvel = np.concatenate([x, obs[:, : self.nq - 1]], axis=1), obs[:, self.nq - 1 :]
        return ~self.healthy(qpos, qvel)


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
        x_observed = not base._exclude_current_positions_from_observation
        return ObservedHealth(reward.healthy, int(base.model.nq), x_observed)
    return None
