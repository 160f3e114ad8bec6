"""How far a position trajectory is from one the unicycle could drive (the blog's feasibility).

Used to judge decoded state trajectories (experiments/reproduce_blog.py): Diffusion Elites keeps
them as drivable as the data, inpainting does not.
"""

from __future__ import annotations

import numpy as np

from planner.validation import check_count


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
    check_count("stride", stride, hint="steps per window")
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
