"""experiments/train_agent.py: a new agent, and one trained further with ``--resume``."""

import json

import pytest

from experiments import train_agent
from experiments.harness.cli import REPO_ROOT, parse_args
from planner.checkpoint import CheckpointError


def run(argv):
    return train_agent.main(parse_args(train_agent.AgentArgs, "", argv))


def test_a_resumed_agent_goes_on_counting_and_names_what_it_resumed(tmp_path):
    first = run(
        [
            "--env",
            "reacher",
            "--timesteps",
            "150",
            "--eval-episodes",
            "1",
            "--out",
            str(tmp_path / "reacher-sac.zip"),
        ]
    )
    second = run(
        [
            "--env",
            "reacher",
            "--timesteps",
            "120",
            "--eval-episodes",
            "1",
            "--resume",
            str(first),
            "--seed",
            "1",
            "--out",
            str(tmp_path / "more-sac.zip"),
        ]
    )
    record = json.loads(second.with_suffix(".json").read_text())
    assert record["timesteps_trained"] == 270
    assert record["resumed_from"] == str(first)
    assert "resumed_from" not in json.loads(first.with_suffix(".json").read_text())


def test_an_agent_of_another_task_is_refused_before_training(tmp_path):
    hopper = REPO_ROOT / "checkpoints" / "agents" / "hopper-sac.zip"
    out = tmp_path / "half-cheetah-sac.zip"
    with pytest.raises(CheckpointError, match=r"observation_space.*pass an agent trained on"):
        run(["--env", "half-cheetah", "--resume", str(hopper), "--out", str(out)])
    assert not out.exists()
