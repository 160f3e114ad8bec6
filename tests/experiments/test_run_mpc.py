"""The main job and the comparison script, end to end on tiny budgets (subprocesses)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {
    "success_rate",
    "mean_return",
    "collision_rate",
    "control_hz",
    "plan_ms_p50",
    "plan_ms_p95",
    "reward_evals_per_step",
    "mean_steps_to_success",
    "mean_abs_action_change",
}


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "experiments" / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.parametrize("env", ["unicycle-goal", "unicycle-obstacles"])
def test_run_mpc_writes_the_documented_results(tmp_path, env):
    out = tmp_path / "results.json"
    run_script(
        "run_mpc.py",
        *("--env", env, "--episodes", "2", "--population", "8", "--iterations", "1"),
        *("--max-steps", "4", "--out", str(out), "--runs-dir", str(tmp_path / "runs")),
    )
    results = json.loads(out.read_text())
    assert SUMMARY_KEYS <= set(results["summary"])
    # N*T candidates + the final decode (+ the previous plan, from the second step on).
    assert all(e["reward_evaluations"] == [9, 10, 10, 10] for e in results["episodes"])
    assert len(results["episodes"]) == 2
    assert all(e["steps"] == 4 for e in results["episodes"])
    (folder,) = (tmp_path / "runs").iterdir()
    assert {"config.json", "results.json", "trajectories.png", "episode.gif"} <= {
        p.name for p in folder.iterdir()
    }


def test_run_mpc_on_a_mujoco_task_without_a_renderer(tmp_path):
    out = tmp_path / "results.json"
    done = run_script(
        "run_mpc.py",
        *("--env", "inverted-pendulum", "--planner", "cem", "--episodes", "1"),
        *("--population", "8", "--iterations", "1", "--max-steps", "5", "--out", str(out)),
        *("--runs-dir", str(tmp_path / "runs")),
    )
    results = json.loads(out.read_text())
    assert results["summary"]["episodes"] == 1
    assert results["episodes"][0]["steps"] == 5
    assert SUMMARY_KEYS <= set(results["summary"])
    # Without an OpenGL backend the run still completes and says why there is no video.
    assert "episode.gif" in {p.name for p in next((tmp_path / "runs").iterdir()).iterdir()} or (
        "no video" in done.stdout
    )


def test_unknown_env_is_refused_with_the_known_names():
    command = [sys.executable, str(REPO / "experiments" / "run_mpc.py"), "--env", "moon-lander"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode != 0
    assert "unicycle-goal" in done.stderr


def test_evaluate_prints_one_row_per_planner_and_budget(tmp_path):
    out = tmp_path / "rows.json"
    run_script(
        "evaluate.py",
        *("--envs", "unicycle-goal", "--planners", "de,cem,random", "--budgets", "8x1,16x1"),
        *("--warm-starts", "none,shift", "--episodes", "1", "--max-steps", "3"),
        *("--out", str(out), "--runs-dir", str(tmp_path / "runs")),
    )
    rows = json.loads(out.read_text())
    labels = {(r["planner"], r["population"]) for r in rows}
    assert labels == {(p, n) for p in ("de[none]", "de[shift]", "cem", "random") for n in (8, 16)}
