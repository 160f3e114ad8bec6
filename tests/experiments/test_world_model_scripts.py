"""collect_data -> train_world_model -> run_mpc / evaluate with --reward world-model, end to end
on a tiny model (the scripts run in this process, conftest.py; tiny budgets)."""

import csv
import json

import numpy as np
import pytest
import torch

from planner.world_model import WorldModel


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, run_script_here):
    """A 2-member reacher world model trained for 2 epochs on 4 random episodes, then on its
    4-step rollouts."""
    folder = tmp_path_factory.mktemp("wm")
    data = folder / "reacher.npz"
    run_script_here(
        "collect_data.py",
        *("--env", "reacher", "--source", "random", "--episodes", "4", "--max-steps", "25"),
        *("--horizon", "16", "--out", str(data)),
    )
    checkpoint = folder / "reacher-world-model.pt"
    run_script_here(
        "train_world_model.py",
        *("--env", "reacher", "--data", str(data), "--checkpoint", str(checkpoint)),
        *("--ensemble", "2", "--hidden", "16", "--depth", "1", "--epochs", "2"),
        *("--rollout-steps", "4", "--test-episodes", "0.25", "--threads", "1"),
        *("--out", str(folder / "kstep.json")),
    )
    return folder, checkpoint


def test_training_writes_the_checkpoint_record_plot_and_k_step_json(tiny_model):
    folder, checkpoint = tiny_model
    kstep = json.loads((folder / "kstep.json").read_text())
    assert kstep["env"] == "reacher" and set(kstep["k_step_error"]) == {"1", "5", "10", "20"}
    assert all(v >= 0 for v in kstep["k_step_error"].values())
    record = json.loads(checkpoint.with_suffix(".json").read_text())
    assert (
        "train_world_model.py" in record["command"]
        and record["k_step_error"] == kstep["k_step_error"]
    )
    rollout = record["history"]["rollout"]  # the rollout stage ran on windows of the data
    assert record["training"]["rollout_steps"] == 4
    assert rollout["windows"][0] > 0 and len(rollout["val_loss"]) >= 1
    assert checkpoint.with_suffix(".kstep.png").stat().st_size > 0


def test_training_fine_tunes_a_trained_model_on_its_rollouts(
    tiny_model, tmp_path, run_script_here, capsys
):
    """--start-from with --epochs 0: the start model's record is kept and only the rollout
    stage runs, on the same held-out episodes (same k-step test split)."""
    folder, start = tiny_model
    checkpoint = tmp_path / "tuned.pt"
    run_script_here(
        *("train_world_model.py", "--env", "reacher", "--data", str(folder / "reacher.npz")),
        *("--checkpoint", str(checkpoint), "--start-from", str(start), "--epochs", "0"),
        *("--ensemble", "2", "--hidden", "16", "--depth", "1", "--rollout-steps", "4"),
        *("--rollout-learning-rate", "1e-5", "--test-episodes", "0.25", "--threads", "1"),
    )
    printed = capsys.readouterr().out  # the stage that ran, not an empty first stage
    assert "4-step rollouts: best epoch" in printed and "validation MSE" not in printed
    record = json.loads(checkpoint.with_suffix(".json").read_text())
    assert record["training"]["rollout_learning_rate"] == 1e-5
    before = json.loads(start.with_suffix(".json").read_text())
    assert record["start_from"]["path"] == str(start)
    assert len(record["start_from"]["sha256"]) == 64
    assert record["history"]["epoch"] == [] and record["history"]["rollout"]["windows"][0] > 0
    assert record["history"]["initial_val_mse"] == pytest.approx(before["history"]["best_val_mse"])
    assert record["data"] == before["data"]


def test_a_smaller_ensemble_keeps_the_start_models_first_members(
    tiny_model, tmp_path, run_script_here
):
    folder, start = tiny_model
    checkpoint = tmp_path / "one.pt"
    run_script_here(
        *("train_world_model.py", "--env", "reacher", "--data", str(folder / "reacher.npz")),
        *("--checkpoint", str(checkpoint), "--start-from", str(start), "--epochs", "0"),
        *("--ensemble", "1", "--hidden", "16", "--depth", "1", "--threads", "1"),
    )
    one, both = WorldModel.load(checkpoint), WorldModel.load(start).network.state_dict()
    assert one.config.ensemble_size == 1
    for name, value in one.network.state_dict().items():  # members lead EnsembleLinear's axes
        assert torch.equal(value, both[name][:1] if value.dim() == 3 else both[name])


def test_bad_start_models_are_refused(tiny_model, tmp_path, refusal):
    folder, start = tiny_model
    data = ("--data", str(folder / "reacher.npz"), "--checkpoint", str(tmp_path / "m.pt"))
    line = refusal("train_world_model.py", "--env", "reacher", *data, "--epochs", "0")
    assert "--epochs 0 trains nothing: give --start-from" in line
    shape = ("--start-from", str(start), "--ensemble", "2", "--depth", "1")
    line = refusal("train_world_model.py", "--env", "reacher", *data, *shape)  # hidden 200
    assert "has --ensemble 2 --hidden 16 --depth 1" in line
    more = ("--start-from", str(start), "--ensemble", "3", "--hidden", "16", "--depth", "1")
    line = refusal("train_world_model.py", "--env", "reacher", *data, *more)
    assert "--ensemble at most the same" in line
    other = WorldModel.load(start)
    other.task = "hopper"
    other.save(tmp_path / "hopper.pt")
    hopper = ("--start-from", str(tmp_path / "hopper.pt"), "--hidden", "16")
    line = refusal("train_world_model.py", "--env", "reacher", *data, *shape[2:], *hopper)
    assert "trained for task 'hopper', not 'reacher'" in line


@pytest.mark.parametrize(("env", "periodic"), [("walker2d", ()), ("half-cheetah", (1,))])
def test_training_takes_every_task_a_world_model_plans_on(
    env, periodic, tmp_path, run_script_here, refusal
):
    """Half-cheetah's model reads its root pitch, which winds, on the circle; walker2d's (ended
    within +-1 rad by its healthy range) raw."""
    data = tmp_path / f"{env}.npz"
    run_script_here(
        "collect_data.py",
        *("--env", env, "--source", "random", "--episodes", "2", "--max-steps", "5"),
        *("--horizon", "4", "--out", str(data)),
    )
    checkpoint = tmp_path / f"{env}-world-model.pt"
    run_script_here(
        *("train_world_model.py", "--env", env, "--data", str(data)),
        *("--checkpoint", str(checkpoint), "--ensemble", "2", "--hidden", "8", "--depth", "1"),
        *("--epochs", "1", "--test-episodes", "0.5", "--threads", "1"),
    )
    assert json.loads(checkpoint.with_suffix(".json").read_text())["env"] == env
    assert WorldModel.load(checkpoint, task=env).config.periodic == periodic
    line = refusal(
        *("train_world_model.py", "--env", "inverted-double-pendulum", "--data", str(data))
    )
    assert "pole tip's height" in line and "a world model plans on" in line


def test_run_mpc_plans_with_the_world_model(tiny_model, tmp_path, run_script_here):
    _, checkpoint = tiny_model
    out = tmp_path / "results.json"
    run_script_here(
        "run_mpc.py",
        *("--env", "reacher", "--reward", "world-model", "--world-model", str(checkpoint)),
        *("--episodes", "1", "--population", "8", "--iterations", "1", "--max-steps", "3"),
        *("--threads", "1", "--no-render", "--out", str(out), "--runs-dir", str(tmp_path)),
    )
    results = json.loads(out.read_text())
    assert results["summary"]["episodes"] == 1 and results["episodes"][0]["steps"] == 3
    config = json.loads(next(tmp_path.glob("reacher__de__*/config.json")).read_text())
    assert config["reward"] == "world-model"


def test_a_world_model_of_another_task_is_refused(tiny_model, tmp_path, refusal):
    _, checkpoint = tiny_model
    line = refusal(
        *("run_mpc.py", "--env", "hopper", "--reward", "world-model"),
        *("--world-model", str(checkpoint), "--no-render", "--episodes", "1"),
        *("--max-steps", "1", "--runs-dir", str(tmp_path)),
    )
    assert "trained for task 'reacher', not 'hopper'" in line


def test_evaluate_compares_simulator_and_world_model_rewards(tiny_model, tmp_path, run_script_here):
    _, checkpoint = tiny_model
    out = tmp_path / "grid"
    run_script_here(
        "evaluate.py",
        *("--envs", "reacher", "--planners", "de", "--budgets", "8x1", "--episodes", "1"),
        *("--max-steps", "2", "--rewards", "simulator,world-model"),
        *("--world-model", str(checkpoint), "--out", str(out)),
        *("--propagation", "tsinf", "--particles", "3"),
    )
    with open(out / "episodes.csv") as file:
        records = list(csv.DictReader(file))
    assert [record["reward"] for record in records] == ["simulator", "world-model"]
    # a candidate is one evaluation whatever its particles
    assert all(record["reward_evals_per_step"] == "8.0" for record in records)
    settings = json.loads((out / "grid.json").read_text())["settings"]
    assert (settings["propagation"], settings["particles"]) == ("tsinf", 3)
    assert "world-model" in (out / "results.md").read_text()


def test_collect_data_with_the_world_model_planner(tiny_model, tmp_path, run_script_here):
    _, checkpoint = tiny_model
    out = tmp_path / "aggregate.npz"
    run_script_here(
        "collect_data.py",
        *("--env", "reacher", "--source", "de", "--reward", "world-model"),
        *("--world-model", str(checkpoint), "--population", "8", "--iterations", "1"),
        *("--episodes", "1", "--max-steps", "4", "--horizon", "2", "--out", str(out)),
    )
    with np.load(out) as archive:
        meta = json.loads(str(archive["metadata"]))
        assert archive["actions"].shape == (4, 2)
    assert (meta["source"], meta["reward"]) == ("de", "world-model")
