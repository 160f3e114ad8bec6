"""improve_prior.py: filtered imitation keeps what it says, the training set is what the teacher
did and planned, and the loop runs end to end and resumes a stopped round repeating nothing."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.mujoco_rewards import CostTerm
from experiments.harness.imitation import imitation_set, keep_best
from planner.knots import KnotSchedule
from planner.prior import DiffusionPrior

REPO = Path(__file__).resolve().parents[2]
TINY = (
    *("--env", "reacher", "--episodes", "3", "--keep", "0.67", "--max-steps", "5"),
    *("--teacher-budget", "8x1", "--eval-budget", "8x1", "--eval-episodes", "2"),
    *("--train-steps", "20", "--random-samples", "64", "--horizon", "4"),
)


@pytest.mark.parametrize(
    ("count", "fraction", "kept"),
    [(10, 0.5, 5), (10, 0.25, 2), (8, 0.3, 2), (3, 0.1, 1), (4, 1.0, 4), (7, 0.5, 4)],
)
def test_keep_best_keeps_exactly_the_chosen_fraction(count, fraction, kept):
    returns = np.random.default_rng(count).normal(size=count)
    chosen = keep_best(returns, fraction)
    assert len(chosen) == kept == max(1, round(fraction * count))
    assert set(returns[chosen]) == set(np.sort(returns)[::-1][:kept])
    assert list(returns[chosen]) == sorted(returns[chosen], reverse=True)


def test_keep_best_ranks_nan_last_and_breaks_ties_by_order():
    assert list(keep_best([1.0, np.nan, 3.0, 3.0], 0.75)) == [2, 3, 0]
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        keep_best([1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match="non-empty"):
        keep_best([], 0.5)


def test_imitation_set_holds_every_executed_window_and_every_plan():
    rng = np.random.default_rng(0)
    horizon, action_dim = 4, 2
    episodes = [
        {"actions": rng.normal(size=(steps, action_dim)), "plans": rng.normal(size=(steps, 4, 2))}
        for steps in (6, 3)
    ]
    data = imitation_set(episodes, KnotSchedule(horizon))
    windows = 6 - horizon + 1  # the 3-step episode is shorter than H: plans only
    assert data.shape == (windows + 6 + 3, horizon, action_dim)
    np.testing.assert_allclose(data[1], episodes[0]["actions"][1:5], rtol=1e-6)
    np.testing.assert_allclose(data[windows:], np.concatenate([e["plans"] for e in episodes]))
    with pytest.raises(ValueError, match="knots"):
        imitation_set(episodes, KnotSchedule(5))


def test_imitation_set_fits_executed_windows_to_the_priors_knots():
    """Knots held 2 steps each over H = 4: a window becomes its two halves' means, and the
    teacher's plans (recorded as knots) are kept as they are."""
    actions = np.array([[0.2], [0.4], [-0.6], [-0.2], [1.0]])
    plans = np.zeros((5, 2, 1))
    data = imitation_set([{"actions": actions, "plans": plans}], KnotSchedule(4, 2, "hold"))
    assert data.shape == (2 + 5, 2, 1)
    np.testing.assert_allclose(data[:2, :, 0], [[0.3, -0.4], [-0.1, 0.4]], rtol=1e-6)
    np.testing.assert_array_equal(data[2:], plans)


def improve(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "experiments" / "improve_prior.py"), *TINY, *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*.*")}


def csv_rows(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


@pytest.fixture(scope="module")
def one_round(tmp_path_factory) -> Path:
    """The --out folder of one round of TINY, run once for the module; tests that change it
    change a copy."""
    out = tmp_path_factory.mktemp("improve") / "run"
    improve("--rounds", "1", "--out", str(out))
    return out


@pytest.mark.slow
def test_loop_runs_end_to_end_and_resumes_a_stopped_round_repeating_nothing(one_round, tmp_path):
    out = Path(shutil.copytree(one_round, tmp_path / "run"))  # file times copied too
    first = stamps(out)
    assert first == stamps(one_round)
    assert (out / "round-01" / "prior.pt").is_file() and (out / "rounds.png").is_file()
    assert len(list((out / "round-01" / "teacher").glob("seed-*.npz"))) == 3

    # Round 2 runs to the end; then it is "stopped" part-way: its prior, its evaluation and
    # one of its teacher episodes are gone, as if the run had died while teaching
    done = improve("--rounds", "2", "--out", str(out))
    whole = json.loads((out / "rounds.json").read_text())["rounds"]
    assert [r["round"] for r in whole] == [0, 1, 2] and "round" in done.stdout
    second = stamps(out)
    assert {k: second[k] for k in first if not k.startswith("rounds.")} == {
        k: v for k, v in first.items() if not k.startswith("rounds.")
    }  # rounds 0 and 1 and CEM's evaluation were not touched
    lost = out / "round-02" / "teacher" / "seed-12001.npz"
    for path in (out / "round-02" / "prior.pt", out / "round-02" / "eval.csv", lost):
        path.unlink()

    improve("--rounds", "2", "--out", str(out))
    third = stamps(out)
    rerun = {k for k in third if third[k] != second.get(k)}
    assert {k for k in rerun if "teacher" in k} == {"round-02/teacher/seed-12001.npz"}
    assert not any(k.startswith(("round-00", "round-01", "cem-eval")) for k in rerun)
    resumed = json.loads((out / "rounds.json").read_text())["rounds"]
    assert resumed == whole  # the same results as the run that was not stopped
    assert len(csv_rows(out / "cem-eval.csv")) == 2
    assert len(csv_rows(out / "round-02" / "eval.csv")) == 2


@pytest.mark.slow
def test_a_run_starts_from_a_given_prior_with_or_without_its_record(one_round, tmp_path):
    """``--start PATH`` copies the prior and its record into round 0 and goes on teaching; a prior
    without a record starts a run too, its chunk count unknown. Both failed once round 0 had been
    evaluated: the run read a record that had not been copied."""
    given = one_round / "round-01" / "prior.pt"
    bare = tmp_path / "bare" / "prior.pt"
    bare.parent.mkdir()
    shutil.copyfile(given, bare)
    trained_on = json.loads(given.with_suffix(".json").read_text())["dataset_shape"][0]
    for start, chunks in ((given, trained_on), (bare, None)):
        out = tmp_path / f"from-{start.parent.name}"
        improve("--rounds", "1", "--start", str(start), "--out", str(out))
        assert (out / "round-00" / "prior.pt").read_bytes() == start.read_bytes()
        rounds = json.loads((out / "rounds.json").read_text())["rounds"]
        assert [r["round"] for r in rounds] == [0, 1]
        assert rounds[0]["dataset"] == chunks and rounds[1]["dataset"] > 0


def test_a_folder_of_other_settings_is_refused(tmp_path, refusal):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"env": "hopper"}))
    line = refusal("improve_prior.py", *TINY, "--out", str(out))
    assert "other settings" in line and "--out" in line


@pytest.mark.slow
def test_on_ray_the_rounds_equal_the_in_process_rounds(one_round, tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional extra: pip install -e '.[distributed]'")
    improve("--rounds", "1", "--out", str(tmp_path / "ray"), "--ray-address", "local")
    here, there = (
        json.loads((p / "rounds.json").read_text()) for p in (one_round, tmp_path / "ray")
    )
    for mine, theirs in zip(here["rounds"], there["rounds"], strict=True):
        assert mine["de_returns"] == theirs["de_returns"]
        assert mine["teacher"] == theirs["teacher"]
        assert mine["cem"] == theirs["cem"]


@pytest.mark.slow
def test_a_run_over_knots_trains_priors_over_knots_and_teaches_with_them(tmp_path):
    """H = 4 steps as 2 linear knots: round 0's prior and round 1's record the schedule, the
    teacher's plans are 2 knots, and the evaluation planned with it."""
    out = tmp_path / "run"
    improve("--rounds", "1", "--out", str(out), "--knots", "2", "--interpolation", "linear")
    for index in (0, 1):
        prior = DiffusionPrior.load(out / f"round-{index:02d}" / "prior.pt")
        assert prior.knot_schedule == KnotSchedule(4, 2, "linear") and prior.horizon == 2
    episode = np.load(next((out / "round-01" / "teacher").glob("seed-*.npz")))
    assert episode["plans"].shape[1:] == (2, 2)
    assert len(csv_rows(out / "round-01" / "eval.csv")) == 2


def test_a_speed_curriculum_replaces_the_forward_reward_round_by_round():
    from experiments.improve_prior import ImproveArgs

    args = ImproveArgs(env="half-cheetah", speed_targets="0,0.5", speed_weight=4.0)
    first, second, third = (args.teacher_costs(index) for index in (1, 2, 3))
    assert first == (CostTerm("flip", 100.0), CostTerm("speed", 4.0, 0.0), CostTerm("forward", 1.0))
    assert second[1] == third[1] == CostTerm("speed", 4.0, 0.5)  # the last target thereafter
    assert ImproveArgs(env="hopper", costs="none").teacher_costs(1) == ()
    assert ImproveArgs(env="hopper").teacher_costs(1) is None  # the task's own
    with pytest.raises(ValueError, match="numbers separated by commas"):
        ImproveArgs(env="hopper", speed_targets="slow,fast")
