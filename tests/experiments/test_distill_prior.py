"""distill_prior.py on a tiny teacher: writes the student, its record and plot, refuses to
overwrite them without --overwrite and refuses a student as a teacher (run in this process,
conftest.py; a few optimizer steps)."""

import hashlib
import importlib
import json

import numpy as np
import pytest
import torch

from experiments.harness.cli import parse_args
from planner.denoiser import DenoiserConfig
from planner.distilled import DistilledPrior
from planner.normalizer import Normalizer
from planner.prior import DiffusionPrior


@pytest.fixture()
def teacher(tmp_path):
    """An untrained MLP prior for task "reacher", saved as a file."""
    torch.manual_seed(0)
    config = DenoiserConfig(kind="mlp", horizon=4, channels=2, mlp_hidden=16, mlp_depth=1)
    data = np.random.default_rng(0).uniform(-1, 1, size=(32, 4, 2))
    return DiffusionPrior(config, Normalizer.fit(data), task="reacher").save(tmp_path / "t.pt")


def test_the_script_writes_student_record_and_plot_and_refuses_to_overwrite(
    tmp_path, teacher, run_script_here, refusal, capsys
):
    out = tmp_path / "students" / "t-student.pt"
    flags = ("--prior", str(teacher), "--train-steps", "3", "--out", str(out))
    run_script_here("distill_prior.py", *flags, "--steps", "3", "--seed", "7")
    assert "student RMSE" in capsys.readouterr().out

    student = DistilledPrior.load(out, task="reacher")
    sha256 = hashlib.sha256(teacher.read_bytes()).hexdigest()
    assert student.teacher_steps == 3
    assert student.record["teacher"] == {"file": "t.pt", "sha256": sha256}
    record = json.loads(out.with_suffix(".json").read_text())
    assert "distill_prior.py" in record["command"] and record["seed"] == 7
    assert record["teacher"]["sha256"] == sha256 and record["task"] == "reacher"
    assert record["distillation"]["steps"] == 3 and record["history"]["step"] == [3]
    assert record["validation"] == student.record["validation"]
    assert out.with_suffix(".loss.png").stat().st_size > 0

    written = out.read_bytes()
    assert "--overwrite to replace it" in refusal("distill_prior.py", *flags)
    assert out.read_bytes() == written
    run_script_here("distill_prior.py", *flags, "--overwrite", "--seed", "8")
    assert out.read_bytes() != written

    as_teacher = refusal("distill_prior.py", "--prior", str(out), "--out", str(tmp_path / "a.pt"))
    assert "holds a student, not a prior" in as_teacher


def test_a_missing_prior_is_refused_in_one_line(capsys):
    script = importlib.import_module("experiments.distill_prior")
    with pytest.raises(SystemExit) as exit_info:
        parse_args(script.DistillArgs, "", ["--train-steps", "1"])
    assert exit_info.value.code == 2
    assert "--prior PATH is required" in capsys.readouterr().err
