"""Hopper's survival value as a planning terminal value (:mod:`planner.value` on Hopper-v5).

Features are Hopper-v5's own observation, ``concatenate([qpos[1:], clip(qvel, -10, 10)])``
(F = 11), so the value reads what an agent would. :func:`hopper_terminal_value` turns a
:class:`~planner.value.SurvivalValue` into the ``terminal_value`` of
:class:`envs.mujoco_tasks.MujocoObjective`: alive bonus x weight x predicted survival steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from planner.value import SurvivalValue, survival_targets

NQ, NV = 6, 6
"""Hopper's qpos and qvel sizes: full states hold time, qpos, qvel, ... (``mj_getState``)."""
FEATURES = NQ - 1 + NV
VELOCITY_CLIP = 10.0
"""Hopper-v5 clips qvel to [-10, 10] in its observation."""


def hopper_features(qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    """Observation features ``(N, 11)`` of ``qpos (N, 6)`` and ``qvel (N, 6)`` (x dropped)."""
    return np.concatenate([qpos[:, 1:], np.clip(qvel, -VELOCITY_CLIP, VELOCITY_CLIP)], axis=1)


def state_features(states: np.ndarray) -> np.ndarray:
    """Features ``(M, 11)`` of full integration states ``(M, D)`` (time, qpos, qvel, ...)."""
    states = np.asarray(states, dtype=np.float64)
    return hopper_features(states[:, 1 : 1 + NQ], states[:, 1 + NQ : 1 + NQ + NV])


def episode_dataset(
    episodes: Sequence[tuple[np.ndarray, int, bool]], horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(M, 11)`` and survival targets ``(M,)`` of the labelled states of episodes.

    Args:
        episodes: per episode, its states ``(steps + 1, D)`` (as ``run_episode`` returns them),
            its step count and whether it terminated.
        horizon: K, the cap on survival (see :func:`planner.value.survival_targets`).
    """
    features, targets = [], []
    for states, steps, terminated in episodes:
        if len(states) != steps + 1:
            raise ValueError(
                f"an episode of {steps} steps has {steps + 1} states, got {len(states)}"
            )
        target, known = survival_targets(steps, terminated, horizon)
        features.append(state_features(states)[known])
        targets.append(target[known])
    return np.concatenate(features), np.concatenate(targets)


def hopper_terminal_value(model: SurvivalValue, alive_bonus: float, weight: float = 1.0):
    """``values (N,) = value(qpos (N, 6), qvel (N, 6))``: ``alive_bonus * weight *`` predicted
    survival steps, the ``terminal_value`` of a Hopper planning objective."""
    if model.config.features != FEATURES:
        raise ValueError(f"a hopper value reads {FEATURES} features, not {model.config.features}")
    scale = alive_bonus * weight

    def value(qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        return scale * model.predict(hopper_features(qpos, qvel))

    return value
