"""A planner as a stable-baselines3-style policy.

:class:`DiffusionElitesPolicy` follows SB3's ``predict(observation, state=None,
episode_start=None, deterministic=False) -> (actions, state)`` contract, so
``stable_baselines3.common.evaluation.evaluate_policy`` and any SB3-style loop can run it.

Reading the simulator state. A planner needs the full state of the simulator it controls
(a MuJoCo snapshot, the vehicle pose and goal), which observations usually do not carry. The
policy is built around a *state reader*: a function that returns the planning state of each
sub-environment, one per row of the observation batch. :meth:`DiffusionElitesPolicy.for_env`
wires it to a Gymnasium env or an SB3 VecEnv through :func:`envs.planning_state.state_reader`:
a plain ``gymnasium.make`` MuJoCo env of a supported task works as it is, as does any env made
by :func:`envs.registry.make_env`.
An objective that scores candidates from the observation alone (a learned world model,
:class:`planner.world_model.WorldModelObjective`) needs no reader: with ``read_states=None``
(``for_env(..., plan_from_observation=True)``) each sub-env's observation is its planning state.

Actions. Planners act in ``[-1, 1]``; the policy maps them onto the action space's bounds with
:class:`planner.action_scaling.ActionScaling`. Those bounds must be finite: ``for_env`` looks
through ``gymnasium.wrappers.ClipAction`` (which reports infinite bounds but passes in-bound
actions through unchanged) to the bounds of the env inside it, and refuses other wrapper stacks
with infinite bounds rather than emit NaN actions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import ClipAction

from envs.planning_state import state_reader
from planner.action_scaling import ActionScaling
from planner.planning import PlanResult
from planner.threads import use_planning_threads


def plannable_action_space(env: Any) -> gym.spaces.Box:
    """The Box whose finite bounds the policy maps planner actions onto, for ``env``.

    ``env.action_space`` itself when its bounds are finite. Otherwise (``ClipAction`` reports
    ``(-inf, inf)``) the space of the first env inside the wrapper stack with finite bounds,
    looking only through wrappers that pass in-bound actions unchanged (``ClipAction`` and wrappers
    that do not transform actions). For an SB3 ``DummyVecEnv`` its first env is inspected.

    Raises:
        ValueError: no finite bounds can be found safely; the message says what to change.
    """
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"DiffusionElitesPolicy needs a continuous Box action space, got {space}")
    if np.isfinite(space.low).all() and np.isfinite(space.high).all():
        return space
    inner = env.envs[0] if hasattr(env, "envs") and env.envs else env
    while isinstance(inner, gym.Wrapper):
        if isinstance(inner, gym.ActionWrapper) and not isinstance(inner, ClipAction):
            break  # it transforms actions: the inner bounds are not this wrapper's bounds
        inner = inner.env
        inner_space = inner.action_space
        if np.isfinite(inner_space.low).all() and np.isfinite(inner_space.high).all():
            return inner_space
    raise ValueError(
        f"the action space of {type(env).__name__} has infinite bounds ({space}), so planner "
        "actions in [-1, 1] cannot be mapped onto it. Put action wrappers with infinite bounds "
        "outside ClipAction only, or build DiffusionElitesPolicy(...) with action_space= a Box "
        "of the env's real bounds"
    )


class DiffusionElitesPolicy:
    """Receding-horizon planning behind SB3's ``predict`` contract.

    Args:
        make_planner: ``make_planner(i)`` builds the planner of sub-env ``i``; each sub-env keeps
            its own planner, so warm starts never mix episodes.
        read_states: returns the planning state of each sub-env, in VecEnv order; None: plan
            from each sub-env's observation.
        action_space: the env's Box action space, with finite bounds; planners act in [-1, 1]
            and the policy maps that onto the bounds.
        observation_space: tells a single observation (its shape) from a batch; without it a
            1-D observation is taken as a single env's.
        condition_on_observation: pass each sub-env's observation to its planner as the
            prior's conditioning vector.

    Building a policy applies the planning thread policy (:mod:`planner.threads`: torch on one
    thread, rollouts on every core), the fastest measured, so a policy made in a notebook
    plans as fast as the scripts do.

    Attributes:
        last_results: each sub-env's last :class:`~planner.planning.PlanResult`.
        last_states: the planning states the last ``predict`` read, one per sub-env.
    """

    def __init__(
        self,
        make_planner: Callable[[int], Any],
        read_states: Callable[[], Sequence[Any]] | None,
        action_space: gym.spaces.Box,
        observation_space: gym.spaces.Space | None = None,
        condition_on_observation: bool = False,
    ) -> None:
        if not isinstance(action_space, gym.spaces.Box):
            raise TypeError(
                f"DiffusionElitesPolicy needs a continuous Box action space, got {action_space}"
            )
        self.scaling = ActionScaling(action_space.low, action_space.high)
        self.make_planner = make_planner
        self.read_states = read_states
        self.action_space = action_space
        self.observation_space = observation_space
        self.condition_on_observation = condition_on_observation
        self.planners: list[Any] = []
        self.last_results: list[PlanResult | None] = []
        self.last_states: list[Any] = []
        use_planning_threads()

    @classmethod
    def for_env(
        cls,
        env: Any,
        make_planner: Callable[[int], Any],
        condition_on_observation: bool = False,
        plan_from_observation: bool = False,
    ) -> DiffusionElitesPolicy:
        """A policy controlling ``env`` (a Gymnasium env or an SB3 VecEnv).

        The planning states are read with :func:`envs.planning_state.state_reader` (with
        ``plan_from_observation``: they are the observations) and the action bounds come from
        :func:`plannable_action_space`.
        """
        return cls(
            make_planner,
            None if plan_from_observation else state_reader(env),
            plannable_action_space(env),
            env.observation_space,
            condition_on_observation,
        )

    def reset(self, index: int | None = None) -> None:
        """Forget the warm start of sub-env ``index`` (all sub-envs if None)."""
        indices = range(len(self.planners)) if index is None else [index]
        for i in indices:
            self.planners[i].reset()
            self.last_results[i] = None

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        """Plan one action per sub-env.

        Args:
            observation: (O,) for one env or (n_envs, O) for a VecEnv.
            state: recurrent state of SB3's contract; unused, returned as is.
            episode_start: (n_envs,) booleans; True resets that sub-env's warm start.
            deterministic: accepted for SB3 compatibility; planners are already deterministic
                under their seed.

        Returns:
            actions (A,) or (n_envs, A) in the action space's units, and ``state``.
        """
        observation = np.asarray(observation)
        single_ndim = 1 if self.observation_space is None else len(self.observation_space.shape)
        single = observation.ndim == single_ndim
        batch = observation[None] if single else observation
        n_envs = batch.shape[0]
        states = list(batch) if self.read_states is None else list(self.read_states())
        self.last_states = states
        if len(states) != n_envs:
            raise ValueError(
                f"the state reader returned {len(states)} states for {n_envs} observations; "
                "build the policy with DiffusionElitesPolicy.for_env(the same env you step)"
            )
        self._ensure_planners(n_envs)
        if episode_start is not None:
            for i in np.flatnonzero(np.asarray(episode_start, dtype=bool).reshape(-1)):
                self.reset(int(i))
        actions = np.empty((n_envs, *self.action_space.shape), dtype=np.float64)
        for i in range(n_envs):
            cond = batch[i] if self.condition_on_observation else None
            result = self.planners[i].plan(states[i], cond=cond)
            self.last_results[i] = result
            actions[i] = self.scaling.to_env(result.action)
        actions = actions.astype(self.action_space.dtype)
        return (actions[0] if single else actions), state

    def _ensure_planners(self, n_envs: int) -> None:
        while len(self.planners) < n_envs:
            self.planners.append(self.make_planner(len(self.planners)))
            self.last_results.append(None)
