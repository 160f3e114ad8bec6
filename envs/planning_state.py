"""How a planner reads the full simulator state of a Gymnasium env, or of each env of a VecEnv.

Observations rarely carry everything a planning objective needs to restart the simulation (a
MuJoCo env's full integration state, the unicycle's goal and obstacles). The planning state is
read from the simulator itself:

- a unicycle env: ``env.get_state()``, pose, goal and obstacles;
- a supported Gymnasium v5 MuJoCo env (:data:`envs.mujoco_rewards.SUPPORTED_ENV_IDS`), made by
  ``gymnasium.make`` with any wrappers around it: its ``mj_getState`` snapshot;
- an env wrapped in :class:`PlanningState` (what :func:`envs.registry.make_env` returns): its
  ``planning_state()`` method, which also works inside a ``SubprocVecEnv``.

:func:`state_reader` turns an env or an SB3 VecEnv into a function returning one state per
sub-env, which is what :class:`policies.diffusion_elites.DiffusionElitesPolicy` plans from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.envs.mujoco import MujocoEnv

from envs.mujoco_rewards import SUPPORTED_ENV_IDS, unsupported_reason
from envs.mujoco_tasks import snapshot
from envs.unicycle import UnicycleEnv

PLANNING_STATE = "planning_state"


def _unicycle_state(env: UnicycleEnv) -> Any:
    return env.get_state()


def state_function(env: gym.Env) -> Callable[[gym.Env], Any]:
    """The function that reads the planning state of ``env.unwrapped``.

    Raises:
        NotImplementedError: a MuJoCo env this project has no planning objective for.
        TypeError: an env whose simulator state the planner cannot read.
    """
    base = env.unwrapped
    if isinstance(base, UnicycleEnv):
        return _unicycle_state
    if isinstance(base, MujocoEnv):
        env_id = base.spec.id if base.spec is not None else type(base).__name__
        if env_id not in SUPPORTED_ENV_IDS:
            reason = unsupported_reason(env_id) or "its reward terms are not written here"
            raise NotImplementedError(
                f"no planning objective for {env_id}: {reason}; plan on one of "
                f"{', '.join(SUPPORTED_ENV_IDS)}"
            )
        return snapshot
    raise TypeError(
        f"cannot read the simulator state of {type(base).__name__}: the planner needs the full "
        "state its objective restarts from. Use a unicycle or supported MuJoCo env, or wrap your "
        "env in envs.planning_state.PlanningState(env, read_state) with your own reader"
    )


class PlanningState(gym.Wrapper):
    """Adds ``planning_state()`` to an env: the full state its task's objective plans from.

    Args:
        env: the env to wrap.
        read_state: ``unwrapped env -> state``; default :func:`state_function` of ``env``.
    """

    def __init__(self, env: gym.Env, read_state: Callable[[gym.Env], Any] | None = None) -> None:
        super().__init__(env)
        self._read_state = read_state or state_function(env)

    def planning_state(self) -> Any:
        """The simulator state of this env now, for ``objective(state, actions)``."""
        return self._read_state(self.env.unwrapped)


def read_planning_state(env: gym.Env) -> Any:
    """The planning state of ``env`` now: its ``planning_state()`` if a wrapper adds one, else
    read from the simulator (:func:`state_function`)."""
    try:
        return env.get_wrapper_attr(PLANNING_STATE)()
    except AttributeError:
        return state_function(env)(env.unwrapped)


def state_reader(env: Any) -> Callable[[], Sequence[Any]]:
    """A function returning the planning state of each sub-env of ``env``, in VecEnv order.

    ``env`` is a Gymnasium env, or an SB3 VecEnv: a ``DummyVecEnv`` of any supported envs, or
    another VecEnv (``SubprocVecEnv``) whose envs answer ``planning_state()`` (wrap each in
    :class:`PlanningState`, as ``make_env`` does). Checks once, here, that the states can be
    read, so an unsupported env fails when the policy is built rather than mid-episode.
    """
    if isinstance(env, gym.Env):
        read = _reader_of(env)
        return lambda: [read()]
    if hasattr(env, "envs"):  # SB3 DummyVecEnv: the sub-envs live in this process
        readers = [_reader_of(sub_env) for sub_env in env.envs]
        return lambda: [read() for read in readers]
    if hasattr(env, "env_method") and hasattr(env, "has_attr"):
        if not env.has_attr(PLANNING_STATE):
            raise TypeError(
                f"the envs of this {type(env).__name__} live in other processes and do not "
                "answer planning_state(): wrap each env in envs.planning_state.PlanningState "
                "(or make it with envs.registry.make_env) before vectorising"
            )
        return lambda: env.env_method(PLANNING_STATE)
    raise TypeError(
        f"cannot read planning states from {type(env).__name__}: pass a Gymnasium env or an "
        "SB3 VecEnv"
    )


def _reader_of(env: gym.Env) -> Callable[[], Any]:
    """A no-argument reader of one env's planning state (resolved once)."""
    try:
        method = env.get_wrapper_attr(PLANNING_STATE)
    except AttributeError:
        read = state_function(env)
        return lambda: read(env.unwrapped)
    return method
