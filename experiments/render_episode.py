"""Render an episode that a run recorded, as a GIF, without planning it again.

    python experiments/render_episode.py --run runs/hopper__de__s0__20261204-120000
    MUJOCO_GL=egl python experiments/render_episode.py --run RUN --episode 3 --every 4 --size 240

``run_mpc.py`` keeps each MuJoCo episode's simulator state at every control step in its run
folder's ``results.json``, also under ``--no-render``. This script puts the env back into each
(every ``--every``-th) state and takes the env's own render, so a long episode planned without
video can be watched afterwards; replaying a state is exact, so the GIF shows what happened.

Writes ``<run>/episode-seed<S>.gif`` (default: the episode with the highest return); an
existing file is refused unless ``--overwrite`` is given. MuJoCo renders with OpenGL: on a
machine without a display set ``MUJOCO_GL=egl`` (or ``osmesa``). Unicycle runs draw their
episode GIF while planning (``run_mpc.py`` without ``--no-render``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
from tqdm import tqdm

from envs.mujoco_rewards import SUPPORTED_ENV_IDS
from envs.mujoco_tasks import MujocoTask
from envs.registry import get_task, make_env
from experiments.harness.cli import ScriptArgs, UsageError, arg, run_main
from experiments.harness.drawing import mujoco_frame
from experiments.harness.outputs import check_output, overwrite_arg


@dataclass
class RenderArgs(ScriptArgs):
    """Arguments of render_episode.py."""

    run: str = arg("", "a run_mpc.py run folder, or its results.json")
    episode: int | None = arg(
        None, "index of the episode in results.json (default: the highest return)", minimum=0
    )
    every: int = arg(1, "render every N-th control step", minimum=1)
    size: int = arg(320, "frame width and height in pixels", minimum=16)
    fps: float = arg(25.0, "frames per second of the GIF")
    out: str | None = arg(None, "GIF path (default: <run>/episode-seed<S>.gif)")
    overwrite: bool = overwrite_arg()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.run:
            raise ValueError("pass the run folder: render_episode.py --run RUN")
        if not self.fps > 0:
            raise ValueError(f"--fps must be > 0, got {self.fps}")


def read_run(path: Path) -> dict[str, Any]:
    """The results of a run folder (or of its ``results.json``)."""
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise UsageError(f"no results.json at {file}: pass a run folder that run_mpc.py wrote")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{file} is not readable JSON (truncated?): {exc}") from None


def pick_episode(results: dict[str, Any], index: int | None) -> dict[str, Any]:
    """Episode ``index`` of the results, or the one with the highest return."""
    episodes = results.get("episodes") or []
    if not episodes:
        raise UsageError("the run recorded no episodes")
    if index is None:
        return max(episodes, key=lambda episode: episode["return"])
    if index >= len(episodes):
        raise UsageError(f"--episode {index}: the run has episodes 0-{len(episodes) - 1}")
    return episodes[index]


def render_states(env: Any, states: np.ndarray, every: int) -> list[np.ndarray]:
    """The env's render of every ``every``-th state (and the last), each put back exactly."""
    task = MujocoTask(env)
    picked = list(range(0, len(states), every))
    if picked[-1] != len(states) - 1:
        picked.append(len(states) - 1)  # the episode's end, where it stood or fell
    frames = []
    for row in tqdm(picked, desc="rendering", unit="frame", mininterval=2.0):
        task.restore(env, states[row])
        frames.append(np.asarray(mujoco_frame(env)))
    return frames


def main(args: RenderArgs) -> Path:
    """Render the episode and write the GIF; return its path."""
    run = Path(args.run)
    results = read_run(run)
    spec = get_task(results["env"])
    if spec.env_id not in SUPPORTED_ENV_IDS:
        raise UsageError(
            f"{spec.name} is not a MuJoCo task: run_mpc.py draws its episode GIF while planning"
        )
    episode = pick_episode(results, args.episode)
    states = np.asarray(episode.get("states") or [], dtype=np.float64)
    if states.ndim != 2 or len(states) == 0:
        raise UsageError("the episode kept no states: rerun it with run_mpc.py on today's code")
    folder = run if run.is_dir() else run.parent
    out = Path(args.out) if args.out else folder / f"episode-seed{episode['seed']}.gif"
    check_output(out, args.overwrite, ())
    env = make_env(spec.name, render_mode="rgb_array", width=args.size, height=args.size)
    env.reset(seed=episode["seed"])
    try:
        frames = render_states(env, states, args.every)
    except Exception as exc:  # MuJoCo reports a missing OpenGL backend with many types
        raise UsageError(
            f"rendering failed ({type(exc).__name__}: {exc}): MuJoCo needs an OpenGL backend; "
            "set MUJOCO_GL=egl (or osmesa) and run again"
        ) from None
    finally:
        env.close()
    imageio.mimsave(out, frames, duration=1000 / args.fps, loop=0)
    print(
        f"wrote {out}: {spec.name} seed {episode['seed']}, return {episode['return']:.1f}, "
        f"{episode['steps']} steps, {len(frames)} frames"
    )
    return out


if __name__ == "__main__":
    run_main(main, RenderArgs, __doc__)
