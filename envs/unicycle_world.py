"""The unicycle world without Gymnasium: kinematics, rewards and the batched planning objective.

A planar vehicle drives to a goal, optionally through circular obstacles.

Kinematics ``x' = v cos(theta), y' = v sin(theta), theta' = omega`` integrated exactly over each
time step ``dt`` (constant ``v``, ``omega`` trace a circular arc), by :func:`unicycle_step`. The
Gymnasium env (:mod:`envs.unicycle`) and the batched planning objective both advance through
:func:`transition`, so the planner scores a candidate with exactly the states and rewards the env
would give it.

Planning state ``(D,)`` float64 (``D = 5 + 3K`` for ``K`` obstacles), from ``env.get_state()``:
``[x, y, theta, goal_x, goal_y, obstacle_1_x, obstacle_1_y, obstacle_1_radius, ...]``.

Actions are normalised to ``[-1, 1]^2``: ``a[0]`` maps affinely to the speed
``v in [v_min, v_max]`` (``-1`` is ``v_min``, by default standing still: the vehicle drives
forward only but can turn in place) and ``a[1]`` to the yaw rate ``omega = a[1] * omega_max``.

Reward per step (maximised): ``progress_weight * (d_before - d_after)`` where ``d`` is the distance
to the goal, ``+ success_bonus`` on the step that ends within ``goal_tolerance`` (the episode then
terminates) and ``- collision_penalty`` on the step whose end pose overlaps an obstacle (the
episode then terminates: collision is a non-differentiable event, not a soft cost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from planner.action_scaling import ActionScaling

POSE_DIM = 3
"""``(x, y, theta)``: the vehicle part of the planning state."""
GOAL_DIM = 2
OBSTACLE_DIM = 3
"""``(center_x, center_y, radius)`` of one circular obstacle."""
ACTION_DIM = 2


@dataclass(frozen=True)
class UnicycleConfig:
    """Sizes, bounds, rewards and obstacle layout of the unicycle world.

    The defaults make one step move at most ``v_max * dt = 0.1``: a planning horizon of H = 16
    steps covers up to 1.6, about half of a typical start-goal distance (2 to 3.5), and an
    episode needs roughly 25-60 steps (more around obstacles), well inside ``max_episode_steps``.
    """

    dt: float = 0.1
    """Time step (s) of one env step and one planning step."""
    v_min: float = 0.0
    """Speed at normalised action ``a[0] = -1``; 0 means forward-only (negative allows reverse)."""
    v_max: float = 1.0
    """Speed at normalised action ``a[0] = +1``."""
    omega_max: float = 2.5
    """Yaw rate (rad/s) at ``a[1] = +-1``: a half turn in place takes 13 steps."""
    start_noise: float = 0.1
    """Start position ~ U[-start_noise, start_noise]^2 around the origin; heading ~ U[-pi, pi)."""
    goal_distance_range: tuple[float, float] = (2.0, 3.5)
    """Goal sampled at this distance from the origin, in a uniformly random direction."""
    goal_tolerance: float = 0.15
    """Success when the vehicle centre is within this distance of the goal."""
    max_episode_steps: int = 120
    """The env truncates after this many steps."""
    progress_weight: float = 1.0
    """Reward per unit of decrease in goal distance."""
    success_bonus: float = 1.0
    """Reward added on the step that reaches the goal."""
    collision_penalty: float = 5.0
    """Subtracted on a colliding step; larger than the most progress an H = 16 plan can make
    (1.6), so a colliding plan ranks below one that stands still."""
    num_obstacles: int = 0
    """K circular obstacles per layout (0: free plane)."""
    obstacle_radius_range: tuple[float, float] = (0.15, 0.35)
    """Obstacle radii ~ U[range]."""
    blocking_obstacles: int = 2
    """How many obstacles (at most K) sit on the start-goal line; the rest is clutter around it."""
    corridor_half_width: float = 1.2
    """Clutter centres lie within this distance of the start-goal line."""
    vehicle_radius: float = 0.1
    """Collision when the vehicle centre is closer than ``radius + vehicle_radius`` to a centre."""
    endpoint_clearance: float = 0.35
    """Free distance kept between any obstacle surface and the start or the goal."""
    gap_clearance: float = 0.05
    """A layout is solvable if a path keeps this margin beyond ``vehicle_radius`` everywhere."""
    max_layout_tries: int = 200
    """Layouts are resampled until solvable and blocked; give up after this many."""

    def __post_init__(self) -> None:
        positive = (
            "dt",
            "v_max",
            "omega_max",
            "goal_tolerance",
            "vehicle_radius",
            "max_layout_tries",
            "max_episode_steps",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"UnicycleConfig.{name} must be > 0, got {getattr(self, name)!r}.")
        non_negative = (
            "start_noise", "progress_weight", "success_bonus", "collision_penalty",
            "num_obstacles", "blocking_obstacles", "corridor_half_width", "endpoint_clearance",
            "gap_clearance",
        )  # fmt: skip
        for name in non_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(
                    f"UnicycleConfig.{name} must be >= 0, got {getattr(self, name)!r}."
                )
        if not self.v_min < self.v_max:
            raise ValueError(
                f"UnicycleConfig needs v_min < v_max, got v_min={self.v_min}, v_max={self.v_max}; "
                "use v_min=0 for a forward-only vehicle or a negative v_min to allow reverse."
            )
        for name in ("goal_distance_range", "obstacle_radius_range"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(
                    f"UnicycleConfig.{name} must be (low, high) with 0 < low <= high, "
                    f"got {(low, high)!r}."
                )
        if self.goal_distance_range[0] <= self.goal_tolerance + self.start_noise * np.sqrt(2):
            raise ValueError(
                "UnicycleConfig.goal_distance_range[0] must exceed goal_tolerance + the start "
                "noise radius so that no episode starts solved; raise it or lower the tolerance."
            )
        reserve = self.endpoint_clearance + self.vehicle_radius + self.obstacle_radius_range[1]
        if self.num_obstacles and self.goal_distance_range[0] - 2 * self.start_noise < 2 * reserve:
            raise ValueError(
                "Obstacles do not fit between start and goal with endpoint_clearance: need "
                f"goal_distance_range[0] - 2 start_noise >= {2 * reserve:.3f}; raise the goal "
                "distance or lower endpoint_clearance / obstacle_radius_range."
            )

    @property
    def state_dim(self) -> int:
        """D: length of the planning state (pose, goal, obstacles)."""
        return POSE_DIM + GOAL_DIM + OBSTACLE_DIM * self.num_obstacles

    @cached_property
    def action_scaling(self) -> ActionScaling:
        """Normalised ``(a[0], a[1])`` <-> (speed in ``[v_min, v_max]``, yaw rate within
        ``+-omega_max``)."""
        return ActionScaling([self.v_min, -self.omega_max], [self.v_max, self.omega_max])

    def scale_actions(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised actions ``(..., 2)`` (clipped to [-1, 1]) -> speed, yaw rate ``(...)``."""
        scaled = self.action_scaling.to_env(actions)
        return scaled[..., 0], scaled[..., 1]

    def normalize_actions(self, speed: np.ndarray, yaw_rate: np.ndarray) -> np.ndarray:
        """Speed, yaw rate ``(...)`` -> normalised ``(..., 2)`` (unclipped inverse of scaling)."""
        scaled = np.stack([np.asarray(speed), np.asarray(yaw_rate)], axis=-1)
        return self.action_scaling.to_normalised(scaled, clip=False)


def unicycle_step(
    poses: np.ndarray, speed: np.ndarray, yaw_rate: np.ndarray, dt: float
) -> np.ndarray:
    """Advance poses ``(N, 3)`` by one step of constant ``speed (N,)`` and ``yaw_rate (N,)``.

    Exact arc integration, written with the midpoint heading and a sinc factor so that it stays
    exact and smooth through ``yaw_rate = 0`` (a straight line). Heading wrapped to [-pi, pi).
    """
    x, y, theta = poses[:, 0], poses[:, 1], poses[:, 2]
    turn = yaw_rate * dt
    chord = speed * dt * np.sinc(turn / (2.0 * np.pi))  # np.sinc(u) = sin(pi u) / (pi u)
    mid_heading = theta + 0.5 * turn
    new_theta = np.mod(theta + turn + np.pi, 2.0 * np.pi) - np.pi
    return np.stack(
        [x + chord * np.cos(mid_heading), y + chord * np.sin(mid_heading), new_theta], 1
    )


def split_state(state: np.ndarray, config: UnicycleConfig) -> tuple[np.ndarray, ...]:
    """Planning state ``(D,)`` -> pose ``(3,)``, goal ``(2,)``, obstacles ``(K, 3)``."""
    state = np.asarray(state, dtype=np.float64)
    if state.shape != (config.state_dim,):
        raise ValueError(
            f"Expected a unicycle planning state of shape ({config.state_dim},) = pose (3) + goal"
            f" (2) + 3 x {config.num_obstacles} obstacles, got shape {state.shape}; pass "
            "env.get_state() of an env built with the same UnicycleConfig."
        )
    obstacles = state[POSE_DIM + GOAL_DIM :].reshape(config.num_obstacles, OBSTACLE_DIM)
    return state[:POSE_DIM], state[POSE_DIM : POSE_DIM + GOAL_DIM], obstacles


def transition(
    config: UnicycleConfig,
    poses: np.ndarray,
    actions: np.ndarray,
    goal: np.ndarray,
    obstacles: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step for N vehicles: the single source of truth for the env and the objective.

    poses ``(N, 3)``, actions ``(N, 2)`` normalised, goal ``(2,)``, obstacles ``(K, 3)`` ->
    new poses ``(N, 3)``, rewards ``(N,)``, success ``(N,)`` bool, collision ``(N,)`` bool.
    A step that both collides and ends at the goal counts as a collision only.
    """
    speed, yaw_rate = config.scale_actions(actions)
    return scaled_transition(config, poses, speed, yaw_rate, goal, obstacles)


def scaled_transition(
    config: UnicycleConfig,
    poses: np.ndarray,
    speed: np.ndarray,
    yaw_rate: np.ndarray,
    goal: np.ndarray,
    obstacles: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`transition` with the actions already scaled to ``speed (N,)`` and ``yaw_rate
    (N,)`` (a rollout scales all H steps at once)."""
    new_poses = unicycle_step(poses, speed, yaw_rate, config.dt)
    dist_before = np.hypot(poses[:, 0] - goal[0], poses[:, 1] - goal[1])
    dist_after = np.hypot(new_poses[:, 0] - goal[0], new_poses[:, 1] - goal[1])
    gaps = np.hypot(
        new_poses[:, None, 0] - obstacles[None, :, 0], new_poses[:, None, 1] - obstacles[None, :, 1]
    ) - (obstacles[None, :, 2] + config.vehicle_radius)
    collision = np.any(gaps < 0.0, axis=1)
    success = (dist_after <= config.goal_tolerance) & ~collision
    rewards = (
        config.progress_weight * (dist_before - dist_after)
        + config.success_bonus * success
        - config.collision_penalty * collision
    )
    return new_poses, rewards, success, collision


class UnicycleRollout(NamedTuple):
    """Batched rollout of N candidates over H steps; after termination the pose is frozen."""

    states: np.ndarray
    """(N, H+1, 3) poses, the start pose first."""
    rewards: np.ndarray
    """(N, H) per-step rewards, 0 after termination."""
    success: np.ndarray
    """(N,) bool, reached the goal."""
    collision: np.ndarray
    """(N,) bool, hit an obstacle."""


class UnicycleObjective:
    """Batched planning reward: ``objective(state (D,), actions (N, H, 2)) -> rewards (N,)``.

    Each candidate's summed reward equals what ``env.set_state(state)`` followed by H
    ``env.step`` calls would return, including the collision penalty and success termination
    (nothing counts after either), bit for bit: the rollout evaluates :func:`transition`'s
    arithmetic for all H steps at once (headings wrapped step by step, positions as running
    sums in step order), then keeps each candidate's steps up to its terminal one.
    """

    def __init__(self, config: UnicycleConfig | None = None) -> None:
        self.config = config or UnicycleConfig()

    def rollout(self, state: np.ndarray, actions: np.ndarray) -> UnicycleRollout:
        """Roll out ``actions (N, H, 2)`` in [-1, 1] from planning ``state (D,)``."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 3 or actions.shape[2] != ACTION_DIM:
            raise ValueError(
                f"Expected actions of shape (N, H, {ACTION_DIM}), got {actions.shape}; add a "
                "leading axis for a single candidate (actions[None])."
            )
        return self._rollout(split_state(state, self.config), actions)

    def __call__(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Summed rewards ``(N,)`` float64 of ``actions (N, H, 2)`` from ``state (D,)``."""
        return self.rollout(state, actions).rewards.sum(axis=1)

    def bind(self, state: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """``rewards (N,) = score(actions (N, H, 2))`` from ``state (D,)``, checked once here
        (for a planner, whose actions are valid by construction; no poses are kept)."""
        (x0, y0, theta0), goal, obstacles = split_state(state, self.config)

        def score(actions: np.ndarray) -> np.ndarray:
            x, y, _ = self._kinematics(x0, y0, theta0, actions)
            return self._events(x, y, goal, obstacles)[0].sum(axis=1)

        return score

    def rollout_states(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Poses ``(N, H+1, 3)`` visited by ``actions (N, H, 2)`` (for plotting)."""
        return self.rollout(state, actions).states

    def _rollout(
        self, parts: tuple[np.ndarray, np.ndarray, np.ndarray], actions: np.ndarray
    ) -> UnicycleRollout:
        (x0, y0, theta0), goal, obstacles = parts
        x, y, theta = self._kinematics(x0, y0, theta0, actions)
        rewards, alive, reached, hit = self._events(x, y, goal, obstacles)
        # A candidate's pose stays where its terminal step left it
        last_pose = np.minimum(np.arange(x.shape[1]), alive.sum(axis=1)[:, None])
        poses = np.stack([x, y, theta], axis=2)
        states = np.take_along_axis(poses, last_pose[:, :, None], axis=1)
        return UnicycleRollout(states, rewards, (alive & reached).any(1), (alive & hit).any(1))

    def _kinematics(
        self, x0: float, y0: float, theta0: float, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Poses x, y, theta ``(N, H+1)`` as if no candidate stopped: :func:`unicycle_step`'s
        arithmetic for every step at once."""
        config = self.config
        num, horizon, _ = actions.shape
        speed, yaw_rate = config.scale_actions(actions)  # (N, H) each
        turn = yaw_rate * config.dt
        chord = speed * config.dt * np.sinc(turn / (2.0 * np.pi))
        # Wrapped after every step, as the env wraps it; rows are steps, so each op is contiguous
        heading = np.empty((horizon + 1, num))
        heading[0] = theta0
        turn_by_step = np.ascontiguousarray(turn.T)
        for step in range(horizon):
            row = heading[step + 1]
            np.add(heading[step], turn_by_step[step], out=row)
            np.add(row, np.pi, out=row)
            np.mod(row, 2.0 * np.pi, out=row)
            np.subtract(row, np.pi, out=row)
        theta = heading.T
        mid_heading = theta[:, :-1] + 0.5 * turn
        start = np.ones((num, 1))
        x = np.cumsum(np.concatenate([x0 * start, chord * np.cos(mid_heading)], axis=1), axis=1)
        y = np.cumsum(np.concatenate([y0 * start, chord * np.sin(mid_heading)], axis=1), axis=1)
        return x, y, theta

    def _events(
        self, x: np.ndarray, y: np.ndarray, goal: np.ndarray, obstacles: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """From positions ``(N, H+1)``: rewards ``(N, H)`` with nothing counted after each
        candidate's terminal step, and per step whether it was alive, reached the goal, hit
        an obstacle (:func:`scaled_transition`'s arithmetic)."""
        config = self.config
        num, horizon = x.shape[0], x.shape[1] - 1
        distance = np.hypot(x - goal[0], y - goal[1])  # (N, H+1)
        gaps = np.hypot(x[:, 1:, None] - obstacles[:, 0], y[:, 1:, None] - obstacles[:, 1]) - (
            obstacles[:, 2] + config.vehicle_radius
        )
        hit = np.any(gaps < 0.0, axis=2)
        reached = (distance[:, 1:] <= config.goal_tolerance) & ~hit
        step_rewards = (
            config.progress_weight * (distance[:, :-1] - distance[:, 1:])
            + config.success_bonus * reached
            - config.collision_penalty * hit
        )
        ended = hit | reached
        alive = np.ones((num, horizon), dtype=bool)
        alive[:, 1:] = ~np.logical_or.accumulate(ended, axis=1)[:, :-1]
        return np.where(alive, step_rewards, 0.0), alive, reached, hit
