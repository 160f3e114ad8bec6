"""The Gymnasium envs of the unicycle world: ``UnicycleGoal-v0`` and ``UnicycleObstacles-v0``.

The world itself (kinematics, rewards, planning state, the batched objective) is
:mod:`envs.unicycle_world`; layouts are :mod:`envs.unicycle_layouts`; drawing is
:mod:`envs.unicycle_render`. Actions are normalised to ``[-1, 1]^2`` (speed, yaw rate).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from envs.unicycle_layouts import sample_layout
from envs.unicycle_render import draw_scene, scene_limits
from envs.unicycle_world import (
    ACTION_DIM,
    OBSTACLE_DIM,
    POSE_DIM,
    UnicycleConfig,
    UnicycleObjective,
    split_state,
    transition,
)


class UnicycleEnv(gym.Env):
    """Gymnasium env of the unicycle world; subclasses pick the default :class:`UnicycleConfig`.

    Observation ``(O,)`` float32, ``O = 7 + 3K``: goal position in the vehicle frame (forward,
    left), goal distance, ``cos(theta)``, ``sin(theta)``, vehicle ``x``, ``y``; then per obstacle
    its centre in the vehicle frame and its radius (bounds cover any episode started by
    ``reset``). Action ``(2,)`` in [-1, 1] (speed, yaw rate).
    ``info``: ``success``, ``collision``, ``distance`` (to the goal).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}
    default_config = UnicycleConfig()

    def __init__(self, config: UnicycleConfig | None = None, render_mode: str | None = None):
        self.config = config or self.default_config
        if not isinstance(self.config, UnicycleConfig):
            raise TypeError(f"config must be a UnicycleConfig, got {type(self.config).__name__}.")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}.")
        self.render_mode = render_mode
        cfg = self.config
        obs_dim = 7 + OBSTACLE_DIM * cfg.num_obstacles
        # Twice the farthest the vehicle can drive plus the farthest scene object: a loose
        # bound that no episode started by reset can leave.
        travel = max(abs(cfg.v_min), cfg.v_max) * cfg.dt * cfg.max_episode_steps
        scene = cfg.goal_distance_range[1] + cfg.corridor_half_width + cfg.obstacle_radius_range[1]
        bound = 2.0 * (travel + scene + cfg.start_noise)
        self.observation_space = gym.spaces.Box(-bound, bound, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.objective = UnicycleObjective(self.config)
        self._state = np.zeros(self.config.state_dim)
        self._path: list[np.ndarray] = []
        self._steps = 0
        self._figure = None
        self._render_limits = None

    @property
    def dt(self) -> float:
        """Seconds of one step (as MuJoCo envs' ``dt``)."""
        return self.config.dt

    def get_state(self) -> np.ndarray:
        """Planning state ``(D,)`` float64: pose, goal, obstacles (a copy)."""
        return self._state.copy()

    def set_state(self, state: np.ndarray) -> None:
        """Restore a planning state ``(D,)``; restarts the drawn path, keeps the step count."""
        pose, _, _ = split_state(state, self.config)
        self._state = np.asarray(state, dtype=np.float64).copy()
        self._path = [pose[:2].copy()]
        self._render_limits = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Random start near the origin, goal at ``goal_distance_range``, seeded layout."""
        super().reset(seed=seed)
        cfg, rng = self.config, self.np_random
        start = rng.uniform(-cfg.start_noise, cfg.start_noise, size=2)
        heading = rng.uniform(-np.pi, np.pi)
        distance = rng.uniform(*cfg.goal_distance_range)
        direction = rng.uniform(-np.pi, np.pi)
        goal = distance * np.array([np.cos(direction), np.sin(direction)])
        obstacles = sample_layout(cfg, start, goal, rng)
        self.set_state(np.concatenate([start, [heading], goal, obstacles.ravel()]))
        self._steps = 0
        return self._observation(), self._info(success=False, collision=False)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance one ``dt`` with normalised ``action (2,)``; see the module doc for the reward."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"Expected an action of shape ({ACTION_DIM},), got {action.shape}.")
        pose, goal, obstacles = split_state(self._state, self.config)
        poses, reward, success, collision = transition(
            self.config, pose[None], action[None], goal, obstacles
        )
        self._state[:POSE_DIM] = poses[0]
        self._path.append(poses[0, :2].copy())
        self._steps += 1
        terminated = bool(success[0] or collision[0])
        truncated = self._steps >= self.config.max_episode_steps and not terminated
        info = self._info(success=bool(success[0]), collision=bool(collision[0]))
        return self._observation(), float(reward[0]), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """``(height, width, 3)`` uint8 frame of vehicle, path, goal and obstacles."""
        if self.render_mode is None:
            gym.logger.warn("render() needs render_mode='rgb_array' at construction.")
            return None
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if self._figure is None:
            self._figure = Figure(figsize=(4, 4), dpi=100)
            FigureCanvasAgg(self._figure)
            self._figure.add_axes((0.02, 0.02, 0.96, 0.96))
        axes = self._figure.axes[0]
        axes.clear()
        if self._render_limits is None:  # fixed from the first frame on, for steady videos
            self._render_limits = scene_limits(self._state, self.config)
        path = np.asarray(self._path)
        draw_scene(axes, self._state, self.config, path=path, limits=self._render_limits)
        self._figure.canvas.draw()
        return np.asarray(self._figure.canvas.buffer_rgba())[..., :3].copy()

    def close(self) -> None:
        """Drop the render figure."""
        self._figure = None

    def _observation(self) -> np.ndarray:
        pose, goal, obstacles = split_state(self._state, self.config)
        cos, sin = np.cos(pose[2]), np.sin(pose[2])

        def to_body(points: np.ndarray) -> np.ndarray:
            delta = points - pose[:2]
            return np.column_stack(
                [cos * delta[:, 0] + sin * delta[:, 1], -sin * delta[:, 0] + cos * delta[:, 1]]
            )

        goal_body = to_body(goal[None])[0]
        parts = [goal_body, [np.hypot(*goal_body), cos, sin], pose[:2]]
        parts.append(np.column_stack([to_body(obstacles[:, :2]), obstacles[:, 2]]).ravel())
        return np.concatenate(parts).astype(np.float32)

    def _info(self, success: bool, collision: bool) -> dict[str, Any]:
        pose, goal, _ = split_state(self._state, self.config)
        distance = float(np.hypot(*(goal - pose[:2])))
        return {"success": success, "collision": collision, "distance": distance}


class UnicycleGoalEnv(UnicycleEnv):
    """Drive to a goal on the free plane (``UnicycleGoal-v0``)."""


class UnicycleObstaclesEnv(UnicycleEnv):
    """Drive to a goal through a seeded layout of circular obstacles (``UnicycleObstacles-v0``).

    The default layout has 10 obstacles: 2 on the start-goal line, 8 as clutter around it.
    """

    default_config = UnicycleConfig(num_obstacles=10)

    def __init__(self, config: UnicycleConfig | None = None, render_mode: str | None = None):
        super().__init__(config, render_mode)
        if self.config.num_obstacles < 1:
            raise ValueError("UnicycleObstaclesEnv needs num_obstacles >= 1; use UnicycleGoalEnv.")


ENV_IDS = {"UnicycleGoal-v0": UnicycleGoalEnv, "UnicycleObstacles-v0": UnicycleObstaclesEnv}


def register_unicycle_envs() -> None:
    """Register ``UnicycleGoal-v0`` and ``UnicycleObstacles-v0`` with gymnasium (idempotent).

    The envs truncate themselves at ``max_episode_steps``, so no TimeLimit wrapper is added.
    """
    for env_id, env_class in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=f"{__name__}:{env_class.__name__}")
