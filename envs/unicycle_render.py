"""Drawing of the unicycle world onto a matplotlib Axes (env frames and planner GIFs).

Works on any Axes (Agg figures included, no window). Candidate trajectories are pose or position
arrays as returned by ``UnicycleObjective.rollout_states``.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Circle, FancyArrow

from envs.unicycle_world import UnicycleConfig, split_state


def scene_limits(state: np.ndarray, config: UnicycleConfig, margin: float = 0.6) -> tuple:
    """Square ``((x_low, x_high), (y_low, y_high))`` around the origin, vehicle, goal, obstacles.

    Depends on the vehicle only while it stays inside the box spanned by the origin, goal and
    obstacles, so a whole episode can be drawn with fixed limits from its first state.
    """
    pose, goal, obstacles = split_state(state, config)
    points = np.vstack([np.zeros(2), pose[:2], goal, obstacles[:, :2]])
    reach = np.concatenate([np.zeros(3), obstacles[:, 2]])[:, None]
    low = (points - reach).min(axis=0) - margin
    high = (points + reach).max(axis=0) + margin
    center, half = 0.5 * (low + high), 0.5 * float(np.max(high - low))
    return (center[0] - half, center[0] + half), (center[1] - half, center[1] + half)


def _lines(ax: Axes, trajectories: np.ndarray, **style) -> None:
    """Plot trajectories ``(M, L, >=2)`` (x, y first) with one style."""
    for trajectory in np.asarray(trajectories):
        ax.plot(trajectory[:, 0], trajectory[:, 1], **style)


def draw_scene(
    ax: Axes,
    state: np.ndarray,
    config: UnicycleConfig | None = None,
    path: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    elites: np.ndarray | None = None,
    plan: np.ndarray | None = None,
    limits: tuple | None = None,
) -> None:
    """Draw the scene of planning ``state (D,)`` onto ``ax``.

    path ``(L, >=2)``: travelled positions (black). candidates ``(N, H+1, >=2)``: population (light
    grey). elites ``(E, H+1, >=2)``: best first, coloured from yellow (best) to purple by rank.
    plan ``(H+1, >=2)``: executed plan (red). limits: ``((x_low, x_high), (y_low, y_high))``,
    default :func:`scene_limits` (pass the first frame's limits to keep a GIF steady).
    """
    config = config or UnicycleConfig()
    pose, goal, obstacles = split_state(state, config)
    for cx, cy, radius in obstacles:
        ax.add_patch(Circle((cx, cy), radius, color="0.35", zorder=1))
    ax.add_patch(Circle(goal, config.goal_tolerance, fill=False, color="tab:green", lw=2, zorder=2))
    ax.plot(*goal, marker="*", color="tab:green", markersize=12, zorder=2)
    if candidates is not None:
        _lines(ax, candidates, color="0.8", lw=0.6, zorder=3)
    if elites is not None:
        elites = np.asarray(elites)
        colors = matplotlib.colormaps["viridis_r"](np.linspace(0.0, 1.0, len(elites)))
        for trajectory, color in zip(elites[::-1], colors[::-1], strict=True):
            ax.plot(trajectory[:, 0], trajectory[:, 1], color=color, lw=1.2, zorder=4)
    if path is not None and len(path) > 1:
        _lines(ax, np.asarray(path)[None], color="black", lw=1.5, zorder=5)
    if plan is not None:
        _lines(ax, np.asarray(plan)[None], color="tab:red", lw=2.0, zorder=6)
    ax.add_patch(Circle(pose[:2], config.vehicle_radius, color="tab:blue", zorder=7))
    heading = 2.0 * config.vehicle_radius * np.array([np.cos(pose[2]), np.sin(pose[2])])
    ax.add_patch(
        FancyArrow(*pose[:2], *heading, width=0.03, head_width=0.08, color="navy", zorder=8)
    )
    (x_low, x_high), (y_low, y_high) = limits or scene_limits(state, config)
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
