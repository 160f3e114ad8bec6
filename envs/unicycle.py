"""The unicycle world: a planar vehicle driving to a goal, optionally through circular obstacles.

Kinematics ``x' = v cos(theta), y' = v sin(theta), theta' = omega`` integrated exactly over each
time step ``dt`` (constant ``v``, ``omega`` trace a circular arc), by :func:`unicycle_step`. The
Gymnasium env and the batched planning objective both advance through :func:`transition`, so the
planner scores a candidate with exactly the states and rewards the env would give it.

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

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
import numpy as np

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

    def scale_actions(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised actions ``(..., 2)`` (clipped to [-1, 1]) -> speed, yaw rate ``(...)``."""
        actions = np.clip(actions, -1.0, 1.0)
        speed = self.v_min + 0.5 * (actions[..., 0] + 1.0) * (self.v_max - self.v_min)
        return speed, actions[..., 1] * self.omega_max

    def normalize_actions(self, speed: np.ndarray, yaw_rate: np.ndarray) -> np.ndarray:
        """Speed, yaw rate ``(...)`` -> normalised ``(..., 2)`` (unclipped inverse of scaling)."""
        speed_n = 2.0 * (np.asarray(speed) - self.v_min) / (self.v_max - self.v_min) - 1.0
        return np.stack([speed_n, np.asarray(yaw_rate) / self.omega_max], axis=-1)


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


def unicycle_feasibility_residual(
    positions: np.ndarray,
    dt: float,
    v_range: tuple[float, float],
    omega_max: float,
    stride: int = 1,
) -> np.ndarray:
    """How far position trajectories ``(N, H, 2)`` are from ones a unicycle could drive: ``(N,)``.

    The unicycle holds speed ``v in v_range`` and yaw rate ``|omega| <= omega_max`` constant over
    each step of ``dt`` (as :func:`unicycle_step` and the datasets do). Over windows of
    k = ``stride`` steps at every offset j, the chord ``c_j = p_{j+k} - p_j`` of any such path
    obeys two necessary conditions: its implied speed ``|c_j| / (k dt)`` lies in
    ``[v_min cos(omega_max dt / 2) cos((k - 1) omega_max dt / 2), v_max]`` (each step's chord is
    ``v dt sinc`` of its turn, and the window turns by at most ``(k - 1) omega_max dt``), and
    consecutive chords ``c_j``, ``c_{j+k}`` differ in direction by at most ``(2k - 1) omega_max
    dt`` (each lies within the heading range of its own steps). The residual is the largest
    excess beyond these bounds anywhere along the path, relative to the bound:
    ``max_j max(dist(speed_j, speed bounds) / v_max, max(|turn_j| / ((2k - 1) dt) - omega_max,
    0) / omega_max)``; 1 means a window needs twice the allowed speed or yaw rate.

    So it is exactly 0 for every drivable trajectory and large for a break (a jump of several
    step lengths anywhere). At ``stride=1`` it also flags position jitter that turns the chords
    back and forth faster than ``omega_max``; a larger stride judges the path at a coarser time
    scale, where noise much smaller than k step lengths averages out.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if isinstance(stride, bool) or not isinstance(stride, int | np.integer) or stride < 1:
        raise ValueError(f"stride must be an int >= 1 (steps per window), got {stride!r}.")
    if positions.ndim != 3 or positions.shape[2] != 2 or positions.shape[1] < 2 * stride + 1:
        raise ValueError(
            f"positions must be (N, H, 2) with H >= 2 * stride + 1 = {2 * stride + 1} (two "
            f"windows to turn between), got shape {positions.shape}; add a leading axis for one "
            "trajectory (positions[None]) or lower stride."
        )
    v_min, v_max = v_range
    if not (dt > 0 and 0 <= v_min <= v_max and v_max > 0 and omega_max > 0):
        raise ValueError(
            f"Need dt > 0, 0 <= v_min <= v_max with v_max > 0 and omega_max > 0, got dt={dt!r}, "
            f"v_range={v_range!r}, omega_max={omega_max!r}."
        )
    k = stride
    step_turn = omega_max * dt
    slowest = v_min * np.cos(step_turn / 2) * max(np.cos((k - 1) * step_turn / 2), 0.0)
    chords = positions[:, k:] - positions[:, :-k]
    speed = np.hypot(chords[..., 0], chords[..., 1]) / (k * dt)
    heading = np.arctan2(chords[..., 1], chords[..., 0])
    turn = np.mod(heading[:, k:] - heading[:, :-k] + np.pi, 2.0 * np.pi) - np.pi
    speed_excess = np.maximum(np.maximum(slowest - speed, speed - v_max), 0.0) / v_max
    yaw_excess = np.maximum(np.abs(turn) / ((2 * k - 1) * dt) - omega_max, 0.0) / omega_max
    return np.maximum(speed_excess.max(axis=1), yaw_excess.max(axis=1))


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

    Vectorised over the N candidates (a loop over the H steps only); each candidate's summed
    reward equals what ``env.set_state(state)`` followed by H ``env.step`` calls would return,
    including the collision penalty and success termination (nothing counts after either).
    """

    def __init__(self, config: UnicycleConfig | None = None) -> None:
        self.config = config or UnicycleConfig()

    def rollout(self, state: np.ndarray, actions: np.ndarray) -> UnicycleRollout:
        """Roll out ``actions (N, H, 2)`` in [-1, 1] from planning ``state (D,)``."""
        pose, goal, obstacles = split_state(state, self.config)
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 3 or actions.shape[2] != ACTION_DIM:
            raise ValueError(
                f"Expected actions of shape (N, H, {ACTION_DIM}), got {actions.shape}; add a "
                "leading axis for a single candidate (actions[None])."
            )
        num, horizon, _ = actions.shape
        states = np.empty((num, horizon + 1, POSE_DIM))
        states[:, 0] = pose
        rewards = np.zeros((num, horizon))
        success = np.zeros(num, dtype=bool)
        collision = np.zeros(num, dtype=bool)
        for step in range(horizon):
            poses, step_rewards, reached, hit = transition(
                self.config, states[:, step], actions[:, step], goal, obstacles
            )
            alive = ~(success | collision)
            states[:, step + 1] = np.where(alive[:, None], poses, states[:, step])
            rewards[:, step] = np.where(alive, step_rewards, 0.0)
            success |= alive & reached
            collision |= alive & hit
        return UnicycleRollout(states, rewards, success, collision)

    def __call__(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Summed rewards ``(N,)`` float64 of ``actions (N, H, 2)`` from ``state (D,)``."""
        return self.rollout(state, actions).rewards.sum(axis=1)

    def rollout_states(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Poses ``(N, H+1, 3)`` visited by ``actions (N, H, 2)`` (for plotting)."""
        return self.rollout(state, actions).states


def path_exists(
    start: np.ndarray,
    goal: np.ndarray,
    obstacles: np.ndarray,
    inflation: float,
    resolution: float = 0.05,
) -> bool:
    """Whether a path from ``start (2,)`` to ``goal (2,)`` keeps ``inflation`` from every surface.

    Flood fill on a grid over the scene (plus a margin that lets paths go around everything);
    since the vehicle can turn in place, any such free path is drivable.
    """
    margin = 1.0 + 2.0 * inflation
    points = np.vstack([start, goal, obstacles[:, :2]])
    low = points.min(axis=0) - margin - obstacles[:, 2].max(initial=0.0)
    high = points.max(axis=0) + margin + obstacles[:, 2].max(initial=0.0)
    xs = np.arange(low[0], high[0], resolution)
    ys = np.arange(low[1], high[1], resolution)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    free = np.ones(gx.shape, dtype=bool)
    for cx, cy, radius in obstacles:
        free &= np.hypot(gx - cx, gy - cy) > radius + inflation

    def cell(point: np.ndarray) -> tuple[int, int]:
        return round((point[0] - xs[0]) / resolution), round((point[1] - ys[0]) / resolution)

    reached = np.zeros_like(free)
    reached[cell(start)] = free[cell(start)]
    while True:
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= free
        if grown[cell(goal)]:
            return True
        if np.array_equal(grown, reached):
            return False
        reached = grown


def sample_layout(
    config: UnicycleConfig, start: np.ndarray, goal: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Seeded obstacles ``(K, 3)`` that block the straight start-goal line yet leave a path.

    The first ``blocking_obstacles`` sit on the line (centre within half a radius of it) between
    30% and 70% of the way; the others are clutter anywhere along it, within
    ``corridor_half_width`` to either side. Obstacles never overlap one another, so the field is
    a set of gaps, many narrower than the vehicle; every obstacle keeps ``endpoint_clearance``
    from start and goal. Obstacles are placed one by one by rejection sampling, and a layout is
    kept only if the straight line collides and :func:`path_exists` with
    ``vehicle_radius + gap_clearance``.
    """
    if config.num_obstacles == 0:
        return np.zeros((0, OBSTACLE_DIM))
    line = goal - start
    length = float(np.linalg.norm(line))
    along, normal = line / length, np.array([-line[1], line[0]]) / length
    straight = start + np.linspace(0.0, 1.0, int(np.ceil(length / 0.02)) + 1)[:, None] * line
    inflation = config.vehicle_radius + config.gap_clearance

    def place(index: int, placed: np.ndarray) -> np.ndarray | None:
        for _ in range(100):
            radius = rng.uniform(*config.obstacle_radius_range)
            if index < config.blocking_obstacles:
                distance_along = rng.uniform(0.3, 0.7) * length
                offset = rng.uniform(-0.5, 0.5) * radius
            else:
                distance_along = rng.uniform(0.0, length)
                offset = rng.uniform(-1.0, 1.0) * config.corridor_half_width
            center = start + distance_along * along + offset * normal
            endpoint_distance = min(np.linalg.norm(center - start), np.linalg.norm(center - goal))
            clear = endpoint_distance - radius - config.vehicle_radius > config.endpoint_clearance
            spacing = np.linalg.norm(placed[:, :2] - center, axis=1) - placed[:, 2] - radius
            if clear and np.all(spacing > 0.0):
                return np.array([*center, radius])
        return None

    for _ in range(config.max_layout_tries):
        obstacles = np.zeros((0, OBSTACLE_DIM))
        for index in range(config.num_obstacles):
            obstacle = place(index, obstacles)
            if obstacle is None:
                break
            obstacles = np.vstack([obstacles, obstacle])
        if len(obstacles) < config.num_obstacles:
            continue
        straight_gap = np.linalg.norm(straight[:, None] - obstacles[None, :, :2], axis=2) - (
            obstacles[:, 2] + config.vehicle_radius
        )
        if np.any(straight_gap < 0.0) and path_exists(start, goal, obstacles, inflation):
            return obstacles
    raise RuntimeError(
        f"No solvable obstacle layout in {config.max_layout_tries} tries; lower num_obstacles or "
        "obstacle_radius_range, or widen corridor_half_width."
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

        from envs.unicycle_render import draw_scene, scene_limits

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
