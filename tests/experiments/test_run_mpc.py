"""The main job end to end on tiny budgets (subprocesses); evaluate.py: test_evaluate.py."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.registry import CHECKPOINTS
from experiments.harness.cli import parse_args
from experiments.run_mpc import RunArgs, run

REPO = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {
    "mean_return",
    "mean_steps",
    "control_hz",
    "plan_ms_p50",
    "plan_ms_p95",
    "reward_evals_per_step",
    "mean_abs_action_change",
}
GOAL_KEYS = {"success_rate", "collision_rate", "mean_steps_to_success"}
"""Only in the summaries of tasks with a goal (the unicycle ones)."""


def assert_summary_matches_episodes(results: dict, population: int, iterations: int) -> None:
    """The summary's figures are those of the episodes it summarises, recomputed here."""
    summary, episodes = results["summary"], results["episodes"]
    assert SUMMARY_KEYS <= set(summary)
    assert summary["episodes"] == len(episodes)
    assert (summary["population"], summary["iterations"]) == (population, iterations)
    for episode in episodes:
        assert episode["return"] == pytest.approx(sum(episode["rewards"]))
        assert len(episode["rewards"]) == len(episode["plan_ms"]) == episode["steps"]
        assert len(episode["predicted_rewards"]) == episode["steps"]
        assert len(episode["states"]) == episode["steps"] + 1  # the state after the last step
    if results["env"].startswith("unicycle"):
        assert GOAL_KEYS <= set(summary)
        assert summary["success_rate"] == np.mean([e["success"] for e in episodes])
        assert summary["collision_rate"] == np.mean([e["collision"] for e in episodes])
    else:  # no goal: success and collisions would always read 0
        assert not GOAL_KEYS & set(summary)
    assert summary["mean_return"] == pytest.approx(np.mean([e["return"] for e in episodes]))
    assert summary["mean_steps"] == pytest.approx(np.mean([e["steps"] for e in episodes]))
    evaluations = np.concatenate([e["reward_evaluations"] for e in episodes])
    assert summary["reward_evals_per_step"] == pytest.approx(evaluations.mean())
    plan_ms = np.concatenate([e["plan_ms"] for e in episodes])
    assert summary["plan_ms_p50"] == pytest.approx(np.median(plan_ms))
    steps, seconds = sum(e["steps"] for e in episodes), sum(e["seconds"] for e in episodes)
    assert summary["control_hz"] == pytest.approx(steps / seconds)


def printed_columns(stdout: str) -> list[str]:
    """The header of the summary table run_mpc.py prints."""
    lines = stdout.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("---")) - 1].split()


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "experiments" / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.parametrize("env", ["unicycle-goal", "unicycle-obstacles"])
def test_run_mpc_writes_the_documented_results(tmp_path, env):
    out = tmp_path / "results.json"
    done = run_script(
        "run_mpc.py",
        *("--env", env, "--episodes", "2", "--population", "8", "--iterations", "1"),
        *("--max-steps", "4", "--out", str(out), "--runs-dir", str(tmp_path / "runs")),
    )
    results = json.loads(out.read_text())
    assert_summary_matches_episodes(results, population=8, iterations=1)
    assert "success_rate" in printed_columns(done.stdout)
    # Exactly N*T per step: the final decode, the previous plan and the safe plan included.
    assert all(e["reward_evaluations"] == [8, 8, 8, 8] for e in results["episodes"])
    assert results["summary"]["reward_evals_per_step"] == 8
    assert results["summary"]["horizon"] == 32  # the shipped prior's H
    assert results["summary"]["plan"] == "H=32" and "plan" in printed_columns(done.stdout)
    assert [e["seed"] for e in results["episodes"]] == [0, 1]
    assert results["episodes"][0]["states"] != results["episodes"][1]["states"]
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
        *("--runs-dir", str(tmp_path / "runs"), "--horizon-seconds", "0.2", "--knots", "2"),
    )
    results = json.loads(out.read_text())
    assert results["summary"]["plan"] == "H=5,K=2,hold"  # dt = 0.04 s
    assert results["summary"]["episodes"] == 1
    assert results["episodes"][0]["steps"] == 5
    assert_summary_matches_episodes(results, population=8, iterations=1)
    columns = printed_columns(done.stdout)
    assert {"mean_return", "mean_steps"} <= set(columns) and len(columns) <= 8
    assert not {"success_rate", "collision_rate"} & set(columns)
    # CEM: exactly N*T per step, the previous plan included.
    assert results["episodes"][0]["reward_evaluations"] == [8, 8, 8, 8, 8]
    # Without an OpenGL backend the run still completes and says why there is no video.
    assert "episode.gif" in {p.name for p in next((tmp_path / "runs").iterdir()).iterdir()} or (
        "no video" in done.stdout
    )


def test_an_agent_run_shows_no_budget(tmp_path):
    """An SB3 agent plans nothing: its summary says so instead of a budget it never used."""
    from experiments.run_mpc import RunArgs, run

    args = RunArgs(
        env="reacher", planner="sac", episodes=1, max_steps=3, no_render=True,
        runs_dir=str(tmp_path),
    )  # fmt: skip
    summary = run(args)["summary"]
    assert summary["budget"] == summary["plan"] == "-" and summary["horizon"] is None


HOPPER_CRITIC = "checkpoints/agents/hopper-value-452k-sac.zip"
HOPPER_PRIOR = "checkpoints/hopper-action-selftaught.pt"
OLD_PRIOR = "checkpoints/hopper-action.pt"


@pytest.mark.parametrize(
    ("flags", "prior", "value"),
    [
        ((), HOPPER_PRIOR, {"agent": HOPPER_CRITIC, "weight": 2.0}),
        (("--value-weight", "0.5"), HOPPER_PRIOR, {"agent": HOPPER_CRITIC, "weight": 0.5}),
        (
            ("--value-agent", "none", "--prior", str(CHECKPOINTS / "hopper-action.pt")),
            OLD_PRIOR,
            None,
        ),
        (("--planner", "cem"), None, {"agent": HOPPER_CRITIC, "weight": 2.0}),
    ],
)
def test_a_hopper_run_records_the_prior_and_value_it_planned_with(tmp_path, flags, prior, value):
    argv = ["--env", "hopper", "--episodes", "1", "--population", "4", "--iterations", "1"]
    argv += ["--max-steps", "2", "--no-render", "--runs-dir", str(tmp_path), *flags]
    results = run(parse_args(RunArgs, "", argv))
    assert (results["prior"], results["value"]) == (prior, value)
