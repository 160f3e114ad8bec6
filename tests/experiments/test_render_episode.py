"""experiments/render_episode.py: a recorded episode replayed state by state into a GIF.

Rendering needs OpenGL, which a test machine may lack, so the env's ``render()`` is replaced by
one that draws the camera's look-at x into the frame: what is checked is which states are put
back, in which order, and where the camera looks."""

import json
from types import SimpleNamespace

import imageio.v2 as imageio
import numpy as np
import pytest

from envs.mujoco_tasks import snapshot
from envs.registry import make_env
from experiments import render_episode
from experiments.harness.cli import UsageError, parse_args
from experiments.harness.drawing import mujoco_frame


def hopper_states(steps: int, seed: int = 0) -> np.ndarray:
    env = make_env("hopper")
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    states = [snapshot(env)]
    for _ in range(steps):
        env.step(rng.uniform(-1, 1, 3))
        states.append(snapshot(env))
    return np.array(states)


def fake_camera(env) -> None:
    """A camera that exists without OpenGL, and a render that shows where it looks (x)."""
    base = env.unwrapped
    base.mujoco_renderer.viewer = SimpleNamespace(cam=SimpleNamespace(lookat=np.zeros(3)))
    lookat = base.mujoco_renderer.viewer.cam.lookat
    env.render = lambda: np.full((4, 4, 3), lookat[0])


def torso_x(states: np.ndarray) -> np.ndarray:
    env = make_env("hopper")
    env.reset(seed=0)
    task = render_episode.MujocoTask(env)
    xs = []
    for state in states:
        task.restore(env, state)
        xs.append(env.unwrapped.data.body("torso").xpos[0])
    return np.array(xs)


def test_every_nth_state_and_the_last_are_rendered_with_the_camera_on_the_torso():
    states = hopper_states(10)
    env = make_env("hopper")
    env.reset(seed=0)
    fake_camera(env)
    frames = render_episode.render_states(env, states, every=4)
    expected = torso_x(states[[0, 4, 8, 10]])
    np.testing.assert_allclose([frame[0, 0, 0] for frame in frames], expected)
    assert expected[-1] != expected[0]  # the body moved, and the camera with it


def test_a_task_seen_from_above_keeps_its_camera():
    env = make_env("reacher")
    env.reset(seed=0)
    fake_camera(env)
    env.unwrapped.mujoco_renderer.viewer.cam.lookat[0] = 7.0
    assert mujoco_frame(env)[0, 0, 0] == 7.0


@pytest.fixture
def run_folder(tmp_path):
    states = hopper_states(6)
    episodes = [
        {"seed": 0, "return": 5.0, "steps": 6, "states": states.tolist()},
        {"seed": 1, "return": 9.0, "steps": 6, "states": states[:3].tolist()},
    ]
    (tmp_path / "results.json").write_text(json.dumps({"env": "hopper", "episodes": episodes}))
    return tmp_path


def render(argv):
    return render_episode.main(parse_args(render_episode.RenderArgs, "", argv))


@pytest.fixture
def no_opengl(monkeypatch):
    made = render_episode.make_env

    def make(*args, **kwargs):
        env = made(*args, **kwargs)
        fake_camera(env)
        count = iter(range(0, 256, 16))  # frames that differ (a GIF merges equal neighbours)
        env.render = lambda: np.full((4, 4, 3), next(count), np.uint8)
        return env

    monkeypatch.setattr(render_episode, "make_env", make)


def test_the_best_episode_is_written_by_default_and_an_existing_gif_is_kept(run_folder, no_opengl):
    out = render(["--run", str(run_folder)])
    assert out == run_folder / "episode-seed1.gif"  # the higher return
    assert len(imageio.mimread(out)) == 3
    assert len(imageio.mimread(render(["--run", str(run_folder), "--episode", "0",
                                       "--every", "2"]))) == 4  # fmt: skip
    with pytest.raises(UsageError, match="exists"):
        render(["--run", str(run_folder)])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"env": "unicycle-goal"}, "not a MuJoCo task"),
        ({"episodes": []}, "no episodes"),
        ({"episodes": [{"seed": 0, "return": 1.0, "steps": 3}]}, "kept no states"),
    ],
)
def test_runs_that_cannot_be_rendered_are_refused(run_folder, change, message):
    results = json.loads((run_folder / "results.json").read_text())
    (run_folder / "results.json").write_text(json.dumps({**results, **change}))
    with pytest.raises(UsageError, match=message):
        render(["--run", str(run_folder)])


def test_a_missing_run_or_episode_is_refused(run_folder, tmp_path):
    with pytest.raises(UsageError, match=r"no results\.json"):
        render(["--run", str(tmp_path / "nowhere")])
    with pytest.raises(UsageError, match="episodes 0-1"):
        render(["--run", str(run_folder), "--episode", "2"])
