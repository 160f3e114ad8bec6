"""Pictures of planning episodes: a GIF of one episode and a PNG of all of them.

Unicycle tasks are drawn from their planning states (scene, population in grey, elites by rank,
executed plan in red); other tasks use the env's own ``render()`` frames and plot returns.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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
            frame = env.render()
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


def plot_episodes(env: gym.Env, episodes: list[dict], path: Path) -> Path:
    """PNG of all episodes: unicycle paths over their scenes, or cumulative reward curves."""
    if isinstance(env.unwrapped, UnicycleEnv):
        config = env.unwrapped.config
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
    else:
        figure = _canvas((6, 4), dpi=90)
        ax = figure.add_subplot(1, 1, 1)
        for episode in episodes:
            ax.plot(np.cumsum(episode["rewards"]), lw=1, label=f"seed {episode['seed']}")
        ax.set_xlabel("control step")
        ax.set_ylabel("cumulative reward")
        if len(episodes) <= 10:
            ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    return path
