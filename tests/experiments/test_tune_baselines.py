"""tune_baselines.py picks, per task and baseline, the setting that scored best, and records it."""

import csv
import json

import numpy as np
import pytest

from envs import registry
from experiments import tune_baselines
from experiments.harness.cli import parse_args


@pytest.fixture()
def tiny_sweep(tmp_path, monkeypatch):
    """Two CEM settings on reacher, 2 seeds of 3 steps; the choice goes to a temporary file,
    with no shipped choices to start from."""
    monkeypatch.setattr(
        tune_baselines, "SETTINGS", {"cem": [{"execute": "best"}, {"execute": "mean"}]}
    )
    monkeypatch.setattr(tune_baselines, "SEEDS", {"reacher": 2})
    monkeypatch.setattr(tune_baselines, "MAX_STEPS", {"reacher": 3})
    monkeypatch.setattr(tune_baselines, "TUNING_FILE", tmp_path / "tuning.json")
    argv = ["--tasks", "reacher", "--out", str(tmp_path / "sweep")]
    argv += ["--tuning-file", str(tmp_path / "tuning.json")]
    args = parse_args(tune_baselines.TuneArgs, "", argv)
    return tune_baselines.main(args), tmp_path


def test_the_best_setting_by_mean_return_is_chosen_and_written(tiny_sweep):
    chosen, folder = tiny_sweep
    with open(folder / "sweep" / "episodes.csv") as file:
        records = list(csv.DictReader(file))
    assert {r["seed"] for r in records} == {"1000", "1001"}  # held-out seeds, not 0..19
    assert all(r["steps"] == "3" and r["budget"] == "64x3" for r in records)
    means = {
        label: np.mean([float(r["return"]) for r in records if r["planner"] == label])
        for label in ("cem[execute=best]", "cem[execute=mean]")
    }
    assert means["cem[execute=best]"] != means["cem[execute=mean]"]
    best = max(means, key=means.get).split("=")[1].rstrip("]")
    assert chosen == {"reacher": {"cem": {"execute": best}}}
    assert json.loads((folder / "tuning.json").read_text()) == chosen
    table = (folder / "sweep" / "tuning.md").read_text()
    assert f"| reacher | cem | {{'execute': '{best}'}} |" in table


def test_the_registry_hands_each_task_its_tuned_settings():
    for name, spec in registry.TASKS.items():
        assert spec.tuning == registry.TUNED.get(name, {})
