"""Obstacle layouts of the unicycle world: seeded sampling and the check that a path exists."""

from __future__ import annotations

import numpy as np

from envs.unicycle_world import OBSTACLE_DIM, UnicycleConfig


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
