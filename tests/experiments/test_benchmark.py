"""benchmark.py control on a tiny run: the rows, the physics floor, the markdown table."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_control_writes_rows_and_a_markdown_table(tmp_path):
    out = tmp_path / "control.json"
    command = [
        sys.executable, str(REPO / "experiments" / "benchmark.py"), "control",
        "--tasks", "unicycle-goal", "reacher", "--steps", "3", "--rounds", "1",
        "--configs", "policy", "pool-1", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [(r["task"], r["config"]) for r in rows] == [
        ("unicycle-goal", "policy"),
        ("unicycle-goal", "pool-1"),
        ("reacher", "policy"),
        ("reacher", "pool-1"),
    ]
    for row in rows:
        assert row["torch_threads"] == 1 and row["steps"] == 3
        assert row["step_ms"] >= row["decode_ms"] + row["reward_ms"] > 0
        assert row["evaluations_per_step"] <= 64 * (4 if row["task"] == "unicycle-goal" else 3)
    assert rows[0]["physics_ms"] is None  # the unicycle has no MuJoCo floor
    assert rows[3]["pool_threads"] == 1 and rows[3]["physics_ms"] > 0
    assert rows[2]["realtime_hz"] == 50.0  # Reacher-v5 steps 0.02 s
    table = out.with_suffix(".md").read_text()
    assert {row["decoder"] for row in rows} == {"student"}  # the tasks' default decoder
    assert "| reacher | quiet | de | simulator | student | pool-1 (1 / 1) | 64x3 |" in table


def test_control_measures_the_world_models_planner_beside_the_simulators(tmp_path):
    out = tmp_path / "control.json"
    command = [
        sys.executable, str(REPO / "experiments" / "benchmark.py"), "control",
        "--tasks", "reacher", "--rewards", "simulator", "world-model", "--steps", "3",
        "--rounds", "1", "--configs", "policy", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [row["reward"] for row in rows] == ["simulator", "world-model"]
    assert [row["propagation"] for row in rows] == [None, "mean"]  # reacher's default, as run
    assert rows[0]["physics_ms"] > 0 and rows[1]["physics_ms"] is None  # no floor for a model
    assert rows[0]["evaluations_per_step"] == rows[1]["evaluations_per_step"]  # equal budgets
    # 3 steps of 3 calls: the model's rollouts timed each thread count and kept one
    kept, pool = rows[1]["model_threads"], rows[1]["pool_threads"]
    assert rows[0]["model_threads"] is None and kept in (1, pool)
    timings = rows[1]["model_ms_per_candidate"]
    assert sorted(int(count) for count in timings) == sorted({1, pool})
    if pool > 1:  # on one core there is nothing to time
        assert all(ms > 0 for ms in timings.values())
    assert (
        f"| reacher | quiet | de | world-model (mean) | student | policy (1 / {pool}, model kept "
        f"{kept}) |" in out.with_suffix(".md").read_text()
    )
