"""Pictures of planning episodes: a GIF of one episode and a PNG of all of them.

Unicycle tasks are drawn from their planning states (scene, population in grey, elites by rank,
executed plan in red). MuJoCo tasks use the env's own ``render()`` frames for the GIF, the
camera following the runners (:func:`mujoco_frame`); their PNG plots each episode's return, each
control step's plan (its predicted return against the reward then realised over the same steps)
and the path of the body the task moves (:data:`BODY_PATHS`), read from the recorded simulator
states.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import imageio.v2 as imageio
import mujoco
import numpy as np
from gymnasium.envs.mujoco import MujocoEnv
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from envs.mujoco_tasks import STATE_SPEC
from envs.unicycle import UnicycleEnv
from envs.unicycle_render import draw_scene, scene_limits


def _canvas(size: tuple[float, float], dpi: int = 80) -> Figure:
    figure = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def _pixels(figure: Figure) -> np.ndarray:
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


class EpisodeRecorder:
    """Collects one frame per control step of an episode and writes them as a GIF.

    Unicycle frames are drawn when the GIF is written, from the states and plans kept at each
    step, so that drawing (matplotlib, far slower than a control step) never runs between two
    control steps; MuJoCo frames are the env's own renders, taken at the step.

    Args:
        env: the env being controlled (its unwrapped env decides how frames are drawn).
        objective: the task's objective; for unicycle tasks it turns plans into poses.
    """

    def __init__(self, env: gym.Env, objective: Any) -> None:
        self.objective = objective
        self.unicycle = isinstance(env.unwrapped, UnicycleEnv)
        self.frames: list[np.ndarray] = []
        self.steps: list[tuple[Any, np.ndarray, Any]] = []
        self.path: list[np.ndarray] = []
        self.limits = None
        self.problem: str | None = None

    def add(self, env: gym.Env, state: np.ndarray, result: Any) -> None:
        """Record the frame of one control step: ``state`` and the planner's ``PlanResult``."""
        if self.problem is not None:
            return
        if self.unicycle:
            self.steps.append((env.unwrapped.config, np.array(state), result))
            return
        try:
            frame = mujoco_frame(env)
        except Exception as error:  # no OpenGL context on this machine: keep planning, no video
            self.problem = (
                f"no video: rendering failed ({type(error).__name__}: {error}). MuJoCo needs an "
                "OpenGL backend: set MUJOCO_GL=egl (GPU) or MUJOCO_GL=osmesa (CPU, needs libosmesa)"
            )
            return
        if frame is None:
            self.problem = "no video: the env returned no frame (render_mode is not rgb_array)"
            return
        self.frames.append(np.asarray(frame))

    def _unicycle_frame(self, config, state: np.ndarray, result: Any) -> np.ndarray:
        if self.limits is None:
            self.limits = scene_limits(state, config)
        self.path.append(np.asarray(state[:2]))
        rollout = self.objective.rollout_states
        candidates = elites = None
        if result.candidates is not None:
            candidates = rollout(state, result.candidates)
            elites = candidates[result.elite_indices]
        plan = rollout(state, result.plan[None])[0]
        figure = _canvas((4, 4))
        ax = figure.add_axes((0.02, 0.02, 0.96, 0.96))
        draw_scene(ax, state, config, np.asarray(self.path), candidates, elites, plan, self.limits)
        ax.set_xticks([])
        ax.set_yticks([])
        return _pixels(figure)

    def save_gif(self, path: Path, fps: int = 10) -> Path | None:
        """Write the frames as a looping GIF; returns the path, or None (and says why)."""
        self.frames += [self._unicycle_frame(*step) for step in self.steps]
        self.steps = []
        if self.problem is not None or not self.frames:
            print(self.problem or "no video: no frame was recorded")
            return None
        imageio.mimsave(path, self.frames, duration=1000 / fps, loop=0)
        return path


class BodyPath(NamedTuple):
    """What the path panel of a MuJoCo task draws: ``body``'s world position on ``axes`` (two
    letters: a path in that plane; one: that coordinate over control steps), and the body
    ``target`` it should reach, if any."""

    body: str
    axes: str
    target: str | None = None


BODY_PATHS = {
    "HalfCheetah-v5": BodyPath("torso", "xz"),  # planar walkers: the side view
    "Hopper-v5": BodyPath("torso", "xz"),
    "Walker2d-v5": BodyPath("torso", "xz"),
    "Swimmer-v5": BodyPath("torso", "xy"),  # it swims in the floor's plane: the top view
    "Reacher-v5": BodyPath("fingertip", "xy", target="target"),
    "InvertedPendulum-v5": BodyPath("cart", "x"),
    "InvertedDoublePendulum-v5": BodyPath("cart", "x"),
}
"""The path panel of each MuJoCo task, by Gymnasium id."""


def mujoco_frame(env: gym.Env) -> np.ndarray | None:
    """The env's ``render()``, for a planar runner with its camera moved to the body first.

    Gymnasium's v5 envs render with a free camera that stays where the episode began, so a
    cheetah or hopper that runs 20-100 m leaves the picture. For the tasks whose path panel is
    the side view (:data:`BODY_PATHS`, axes ``xz``) the camera's look-at point follows the body
    along x before each frame.
    """
    base = env.unwrapped
    path = BODY_PATHS.get(base.spec.id) if base.spec is not None else None
    if path is None or path.axes != "xz":
        return env.render()
    renderer = base.mujoco_renderer
    if renderer.viewer is None:
        env.render()  # makes the camera
    renderer.viewer.cam.lookat[0] = base.data.body(path.body).xpos[0]
    return env.render()


def body_positions(env: gym.Env, states: list, body: str) -> np.ndarray:
    """(T, 3) world position of ``body`` in each of ``states``, MuJoCo snapshots of ``env``
    (:func:`envs.mujoco_tasks.snapshot`), computed in a scratch ``MjData``."""
    model = env.unwrapped.model
    data = mujoco.MjData(model)
    positions = np.empty((len(states), 3))
    for index, state in enumerate(states):
        mujoco.mj_setState(model, data, np.asarray(state), STATE_SPEC)
        mujoco.mj_kinematics(model, data)
        positions[index] = data.body(body).xpos
    return positions


def realised_returns(rewards: list[float], horizon: int) -> np.ndarray:
    """(T - H + 1,) the reward realised over steps t .. t + H - 1, for each t at which all H
    steps were taken: what the plan chosen at step t predicted."""
    sums = np.concatenate([[0.0], np.cumsum(rewards)])
    return sums[horizon:] - sums[:-horizon] if len(rewards) >= horizon else np.empty(0)


def plot_episodes(
    env: gym.Env, episodes: list[dict], path: Path, horizon: int | None = None
) -> Path:
    """PNG of all episodes (:func:`episodes_figure`)."""
    figure = episodes_figure(env, episodes, horizon)
    figure.tight_layout()
    figure.savefig(path)
    return path


def episodes_figure(env: gym.Env, episodes: list[dict], horizon: int | None = None) -> Figure:
    """Unicycle tasks: each episode's path over its scene. Others: cumulative rewards, and on
    MuJoCo tasks each step's plan, predicted against realised over its ``horizon`` H steps,
    and the path of the task's body (:data:`BODY_PATHS`)."""
    if isinstance(env.unwrapped, UnicycleEnv):
        return _unicycle_figure(env.unwrapped.config, episodes)
    view = BODY_PATHS.get(env.unwrapped.spec.id) if isinstance(env.unwrapped, MujocoEnv) else None
    panels = 1 if view is None else 3
    figure = _canvas((5 * panels, 4), dpi=90)
    axes = [figure.add_subplot(1, panels, index + 1) for index in range(panels)]
    for index, episode in enumerate(episodes):
        axes[0].plot(np.cumsum(episode["rewards"]), color=_color(index), lw=1)
    axes[0].set(xlabel="control step", ylabel="cumulative reward", title="return")
    if len(episodes) <= 10:
        axes[0].legend([f"seed {e['seed']}" for e in episodes], fontsize=7)
    if view is not None:
        _plot_plans(axes[1], episodes, horizon)
        _plot_path(axes[2], env, episodes, view)
    return figure


def _unicycle_figure(config: Any, episodes: list[dict]) -> Figure:
    shown = episodes[:16]
    columns = min(4, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure = _canvas((3 * columns, 3 * rows), dpi=90)
    for index, episode in enumerate(shown):
        ax = figure.add_subplot(rows, columns, index + 1)
        states = np.asarray(episode["states"])
        draw_scene(ax, states[0], config, path=states[:, :2])
        outcome = (
            "success" if episode["success"] else "collision" if episode["collision"] else "fail"
        )
        ax.set_title(f"seed {episode['seed']}: {outcome}, {episode['steps']} steps", fontsize=8)
        ax.tick_params(labelsize=6)
    return figure


def _color(index: int) -> str:
    return f"C{index % 10}"


def _plot_plans(ax: Axes, episodes: list[dict], horizon: int | None) -> None:
    """Each step's plan: its predicted return (dashed) and the reward realised over its H steps
    (solid), where the episode lasted that long."""
    over = f", next {horizon} steps" if horizon is not None else ""
    ax.set(xlabel="control step", title=f"plan: predicted vs realised{over}")
    predicted = [np.array(e["predicted_rewards"], dtype=float) for e in episodes]  # None: NaN
    if horizon is None or all(np.isnan(p).all() for p in predicted):
        ax.text(0.5, 0.5, "no plans (an agent acts)", ha="center", transform=ax.transAxes)
        return
    for index, (episode, plans) in enumerate(zip(episodes, predicted, strict=True)):
        realised = realised_returns(episode["rewards"], horizon)
        ax.plot(realised, color=_color(index), lw=1)
        ax.plot(plans, color=_color(index), lw=1, ls="--")
    ax.set_ylabel(f"reward over {horizon} steps")
    styles = [Line2D([], [], color="k", lw=1, ls=style) for style in ("-", "--")]
    ax.legend(styles, ["realised", "predicted"], fontsize=7)


def _plot_path(ax: Axes, env: gym.Env, episodes: list[dict], view: BodyPath) -> None:
    """The path of ``view.body`` in each episode (a circle at its start), and its target."""
    coordinates = ["xyz".index(axis) for axis in view.axes]
    for index, episode in enumerate(episodes):
        points = body_positions(env, episode["states"], view.body)[:, coordinates]
        if len(coordinates) == 1:  # that coordinate over control steps
            points = np.column_stack([np.arange(len(points)), points])
        ax.plot(*points.T, color=_color(index), lw=1)
        ax.plot(*points[0], "o", color=_color(index), ms=4)
        if view.target is not None:
            target = body_positions(env, episode["states"][:1], view.target)[0, coordinates]
            ax.plot(*target, "*", color=_color(index), ms=10)
    if len(coordinates) == 2:
        ax.set(xlabel=f"{view.body} {view.axes[0]} (m)", ylabel=f"{view.body} {view.axes[1]} (m)")
    else:
        ax.set(xlabel="control step", ylabel=f"{view.body} {view.axes} (m)")
    if view.axes == "xy":
        ax.set_aspect("equal", adjustable="datalim")
    marks = "o: start" + (f", *: {view.target}" if view.target is not None else "")
    ax.set_title(f"{view.body} path ({marks})")
