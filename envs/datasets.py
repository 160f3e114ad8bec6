"""Trajectory datasets for training diffusion priors.

- :func:`unicycle_arcs`: the seed blog's dataset of smooth unicycle arcs (positions and actions).
- :func:`smooth_random_actions`: a generic family of smooth, time-varying action sequences.
- :func:`unicycle_action_dataset`: the action-trajectory mix the unicycle MPC prior is trained on.

Every function takes ``seed`` (an int or an ``np.random.Generator``) and is deterministic in it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from envs.unicycle_world import UnicycleConfig, unicycle_step
from planner.validation import check_count

LevelSampler = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
"""``sampler(rng, (num, segments, A)) -> levels`` in [-1, 1] of that shape."""


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int or np.random.Generator, got {type(seed).__name__}.")
    return np.random.default_rng(seed)


def _check_range(name: str, value: tuple[float, float]) -> None:
    low, high = value
    if not low <= high:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {value!r}.")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}.")


class ArcDataset(NamedTuple):
    """Constant-speed, constant-curvature unicycle arcs from the origin (the seed's dataset)."""

    states: np.ndarray
    """(num, H, 2) positions ``(x, y)``; ``states[:, k]`` is where action ``k`` ends (the origin,
    where every arc starts, is left out)."""
    actions: np.ndarray
    """(num, H, 2) raw actions ``(v, omega)``, constant along each arc."""
    actions_normalized: np.ndarray
    """(num, H, 2) the actions normalised for the given UnicycleConfig, clipped to [-1, 1]."""
    in_bounds: np.ndarray
    """(num,) bool, the raw actions lie within the config's bounds, so the normalised actions
    reproduce ``states`` exactly (only a few high-curvature arcs fall outside)."""
    theta0: np.ndarray
    """(num,) initial headings."""
    speed: np.ndarray
    """(num,) speeds v."""
    curvature: np.ndarray
    """(num,) curvatures kappa (omega = v * kappa)."""


def unicycle_arcs(
    num: int,
    horizon: int = 64,
    dt: float = 0.01,
    seed: int | np.random.Generator = 0,
    v_range: tuple[float, float] = (0.5, 1.0),
    kappa_sigma: float = 1.0,
    theta0_range: tuple[float, float] = (-np.pi / 8, np.pi / 8),
    config: UnicycleConfig | None = None,
) -> ArcDataset:
    """Sample ``num`` unicycle arcs of ``horizon`` steps of ``dt`` from the origin.

    ``theta0 ~ U[theta0_range]``, ``v ~ U[v_range]``, ``kappa ~ N(0, kappa_sigma^2)``,
    ``omega = v kappa``, integrated exactly by :func:`envs.unicycle_world.unicycle_step` (the env's
    integrator). The defaults give arcs of length 0.32-0.64 whose endpoint bearings spread with a
    standard deviation of about 19 degrees, so the blog's goal (0.4, 0.2) lies among the
    endpoints. Normalised actions use the bounds of ``config`` (default
    :class:`UnicycleConfig`); its ``dt`` is not used here.
    """
    check_count("num", num, 1)
    check_count("horizon", horizon, 1)
    _check_positive(dt=dt, kappa_sigma=kappa_sigma)
    _check_range("v_range", v_range)
    _check_range("theta0_range", theta0_range)
    config = config or UnicycleConfig()
    rng = _rng(seed)
    theta0 = rng.uniform(*theta0_range, size=num)
    speed = rng.uniform(*v_range, size=num)
    curvature = rng.normal(0.0, kappa_sigma, size=num)
    yaw_rate = speed * curvature
    poses = np.column_stack([np.zeros((num, 2)), theta0])
    states = np.empty((num, horizon, 2))
    for step in range(horizon):
        poses = unicycle_step(poses, speed, yaw_rate, dt)
        states[:, step] = poses[:, :2]
    actions = np.repeat(np.stack([speed, yaw_rate], axis=1)[:, None], horizon, axis=1)
    normalized = config.normalize_actions(actions[..., 0], actions[..., 1])
    in_bounds = np.all(np.abs(normalized[:, 0]) <= 1.0, axis=1)
    return ArcDataset(
        states, actions, np.clip(normalized, -1.0, 1.0), in_bounds, theta0, speed, curvature
    )


def _uniform_levels(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=shape)


def _atoms_or_uniform(
    rng: np.random.Generator, shape: tuple[int, ...], atoms: dict[float, float]
) -> np.ndarray:
    """Entries equal to one of ``atoms`` (value -> probability), else ~ U[-1, 1]."""
    values = rng.uniform(-1.0, 1.0, size=shape)
    pick, threshold = rng.random(shape), 0.0
    for value, probability in atoms.items():
        values[(pick >= threshold) & (pick < threshold + probability)] = value
        threshold += probability
    return values


def smooth_random_actions(
    num: int,
    horizon: int,
    action_dim: int,
    seed: int | np.random.Generator = 0,
    segments: tuple[int, int] = (1, 4),
    ramp_steps: tuple[float, float] = (2.0, 8.0),
    level_sampler: LevelSampler | None = None,
) -> np.ndarray:
    """Smooth piecewise action sequences ``(num, H, A)`` in [-1, 1].

    Each sequence holds a number of segments ``~ U{segments}`` at constant levels (drawn by
    ``level_sampler``, default ``U[-1, 1]`` per dimension), switching at uniformly random times
    through a smoothstep ramp of ``~ U[ramp_steps]`` steps (one width per sequence). Because the
    ramps of one sequence are equally wide and ordered, each value is a convex combination of
    its levels, so the sequences stay within the levels' range. One segment gives constant
    actions (unicycle arcs); two give "turn, then go straight" and similar manoeuvres.
    """
    check_count("num", num, 0)
    check_count("horizon", horizon, 1)
    check_count("action_dim", action_dim, 1)
    check_count("segments[0]", segments[0], 1)
    _check_range("segments", segments)
    _check_range("ramp_steps", ramp_steps)
    _check_positive(**{"ramp_steps[0]": ramp_steps[0]})
    rng = _rng(seed)
    sampler = level_sampler or _uniform_levels
    max_segments = segments[1]
    levels = np.asarray(sampler(rng, (num, max_segments, action_dim)), dtype=np.float64)
    if levels.shape != (num, max_segments, action_dim) or np.any(np.abs(levels) > 1.0):
        raise ValueError(
            f"level_sampler must return values in [-1, 1] of shape "
            f"{(num, max_segments, action_dim)}, got shape {levels.shape}; clip its output."
        )
    count = rng.integers(segments[0], segments[1] + 1, size=num)
    switch_times = rng.uniform(0.0, horizon, size=(num, max_segments - 1))
    switch_times[np.arange(max_segments - 1)[None] >= count[:, None] - 1] = np.inf
    switch_times.sort(axis=1)
    width = rng.uniform(*ramp_steps, size=num)
    # progress[n, t, j] in [0, 1]: how far sequence n has moved from level j to level j + 1.
    phase = (np.arange(horizon)[None, :, None] - switch_times[:, None]) / width[:, None, None]
    progress = np.clip(phase + 0.5, 0.0, 1.0)
    progress = progress * progress * (3.0 - 2.0 * progress)
    actions = levels[:, None, 0] + np.einsum("ntj,nja->nta", progress, np.diff(levels, axis=1))
    return actions


def unicycle_action_dataset(
    num: int,
    horizon: int = 16,
    seed: int | np.random.Generator = 0,
    arc_fraction: float = 0.3,
    full_speed_probability: float = 0.5,
    stop_probability: float = 0.1,
    straight_probability: float = 0.25,
    full_turn_probability: float = 0.2,
) -> np.ndarray:
    """Normalised unicycle action trajectories ``(num, H, 2)`` for the MPC action prior.

    ``arc_fraction`` of the sequences are arcs (one constant action), the rest
    :func:`smooth_random_actions` with 2-4 segments (turn then straight, swerves, slow-downs).
    Segment levels cover what a goal-reaching, obstacle-avoiding vehicle does: the speed level
    is full speed (+1) with ``full_speed_probability``, -1 (standing still in the default
    config) with ``stop_probability``, else ``U[-1, 1]``; the yaw-rate level is exactly 0
    (straight) with ``straight_probability``, +1 or -1 (hardest turn, either sign equally) with
    ``full_turn_probability``, else ``U[-1, 1]``. A segment of speed -1 and yaw +-1 turns in
    place.
    """
    check_count("num", num, 0)
    check_count("horizon", horizon, 1)
    probabilities = (full_speed_probability, stop_probability)
    yaw_probabilities = (straight_probability, full_turn_probability)
    if not all(0.0 <= p <= 1.0 for p in (arc_fraction, *probabilities, *yaw_probabilities)):
        raise ValueError("arc_fraction and the level probabilities must lie in [0, 1].")
    if sum(probabilities) > 1.0 or sum(yaw_probabilities) > 1.0:
        raise ValueError(
            "full_speed_probability + stop_probability and straight_probability + "
            f"full_turn_probability must each be <= 1, got {probabilities}, {yaw_probabilities}."
        )
    rng = _rng(seed)

    def levels(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        speed = _atoms_or_uniform(
            rng, shape[:-1], {1.0: full_speed_probability, -1.0: stop_probability}
        )
        turns = {
            0.0: straight_probability,
            1.0: full_turn_probability / 2,
            -1.0: full_turn_probability / 2,
        }
        return np.stack([speed, _atoms_or_uniform(rng, shape[:-1], turns)], axis=-1)

    num_arcs = round(arc_fraction * num)
    arcs = smooth_random_actions(num_arcs, horizon, 2, rng, (1, 1), level_sampler=levels)
    varied = smooth_random_actions(num - num_arcs, horizon, 2, rng, (2, 4), level_sampler=levels)
    return rng.permutation(np.concatenate([arcs, varied]), axis=0)


def action_chunks(
    actions: np.ndarray, episode_index: np.ndarray, horizon: int, stride: int, pad_ends: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of H consecutive actions that stay inside one episode.

    Args:
        actions: (M, A) transitions' actions, episodes stored one after another.
        episode_index: (M,) episode of each row (contiguous runs).
        horizon: H. stride: steps between window starts within an episode.
        pad_ends: also start windows fewer than H steps before an episode's end, filled up by
            repeating its last action (else they are dropped, as are episodes shorter than H).

    Returns:
        chunks (K, H, A) and starts (K,), the row of each window's first action.
    """
    boundaries = np.flatnonzero(np.diff(episode_index)) + 1
    ends = np.append(boundaries, len(actions))
    begins = np.insert(boundaries, 0, 0)
    starts = np.concatenate(
        [
            np.arange(b, e if pad_ends else e - horizon + 1, stride, dtype=np.int64)
            for b, e in zip(begins, ends, strict=True)
        ]
    )
    # Each window's rows, clamped to its episode's last row (only reached when padding)
    last_row = ends[np.searchsorted(ends, starts, side="right")] - 1
    rows = np.minimum(starts[:, None] + np.arange(horizon), last_row[:, None])
    return actions[rows], starts
