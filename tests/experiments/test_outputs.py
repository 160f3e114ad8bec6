"""No script replaces a file that exists unless told to (``--overwrite``), and none writes over a
shipped file by default (experiments/harness/outputs.py).

In-process and cheap: each script's first piece of work is replaced by :func:`stop`, so a call
that gets past its output checks ends in :class:`Reached`, and one refused ends before it."""

import importlib
import json
from pathlib import Path
from typing import NamedTuple

import pytest

from envs import registry
from experiments.harness import outputs
from experiments.harness.cli import REPO_ROOT, UsageError, parse_args, run_main

RECORDS = (".json", ".loss.png")


class Reached(Exception):
    """The script got past its output checks to its first piece of work."""


def stop(*args, **kwargs):
    raise Reached


class Script(NamedTuple):
    """How to call one script: its arguments class, its arguments besides the output, its first
    piece of work, the flag naming its output, the files it writes beside it, and the folder
    its default output lands in."""

    args: str
    argv: list[str]
    work: str
    flag: str
    beside: tuple[str, ...]
    default_folder: Path


SCRIPTS = {
    "train_prior": Script("TrainArgs", [], "make_dataset", "--out", RECORDS, outputs.RUNS),
    "distill_prior": Script(
        "DistillArgs",
        ["--prior", "hopper.pt"],
        "DiffusionPrior.load",
        "--out",
        RECORDS,
        outputs.RUNS,
    ),
    "train_world_model": Script(
        "TrainArgs",
        ["--data", "reacher.npz"],
        "read_transitions",
        "--checkpoint",
        (".json", ".kstep.png"),
        outputs.RUNS,
    ),
    "train_agent": Script("AgentArgs", [], "make_env", "--out", (".json",), outputs.RUNS),
    "collect_data": Script(
        "CollectArgs", ["--source", "random"], "map_unordered", "--out", (), REPO_ROOT / "data"
    ),
}


def arguments(name: str, *argv: str):
    """The arguments of script ``name`` from its usual ones and ``argv``, and the script."""
    script, spec = importlib.import_module(f"experiments.{name}"), SCRIPTS[name]
    return parse_args(getattr(script, spec.args), "", [*spec.argv, *argv]), script


def call(monkeypatch, name: str, *argv: str):
    """Run script ``name`` in-process as from the command line, its work stopped."""
    script, spec = importlib.import_module(f"experiments.{name}"), SCRIPTS[name]
    monkeypatch.setattr(f"experiments.{name}.{spec.work}", stop)
    return run_main(script.main, getattr(script, spec.args), "", [*spec.argv, *argv])


@pytest.mark.parametrize("name", SCRIPTS)
def test_an_existing_output_or_record_is_refused_before_any_work(
    name, tmp_path, monkeypatch, capsys
):
    flag = SCRIPTS[name].flag
    out = tmp_path / "mine.pt"
    for existing in (out, *(out.with_suffix(suffix) for suffix in SCRIPTS[name].beside)):
        existing.write_text("an earlier run's")
        with pytest.raises(SystemExit) as exit_info:  # not Reached: refused before the work
            call(monkeypatch, name, flag, str(out))
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert f"{existing} exists" in error and f"pass {flag} NEW" in error
        assert "--overwrite" in error and existing.read_text() == "an earlier run's"
        existing.unlink()
    with pytest.raises(Reached):  # nothing there: the call goes ahead
        call(monkeypatch, name, flag, str(out))


@pytest.mark.parametrize("name", SCRIPTS)
def test_overwrite_lets_the_call_replace_an_existing_output(name, tmp_path, monkeypatch):
    out = tmp_path / "mine.pt"
    out.write_text("an earlier run's")
    with pytest.raises(Reached):
        call(monkeypatch, name, SCRIPTS[name].flag, str(out), "--overwrite")


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_default_output_is_never_a_shipped_file(name):
    args, script = arguments(name)
    out, folder = script.output_path(args), SCRIPTS[name].default_folder
    assert not out.is_relative_to(REPO_ROOT / "checkpoints")
    if folder == outputs.RUNS:  # in a new run folder, named after the script
        assert out.parent.parent == folder and out.parent.name.startswith(f"{name}__")
        assert not out.parent.exists()
    else:  # data/: ignored by git, never shipped
        assert out.parent == folder


def test_train_prior_by_default_leaves_the_shipped_unicycle_prior_alone():
    args, script = arguments("train_prior", "--env", "unicycle-goal", "--kind", "action")
    out = script.output_path(args)
    assert out.name == "unicycle-action.pt"  # the shipped name, so shipping it is a copy
    assert out != registry.get_task("unicycle-goal").prior_path


def tune(monkeypatch, *argv: str):
    monkeypatch.setattr("experiments.tune_baselines.run_grid", stop)
    script = importlib.import_module("experiments.tune_baselines")
    return run_main(script.main, script.TuneArgs, "", ["--tasks", "reacher", *argv])


def test_tune_baselines_writes_the_shipped_choices_only_when_named_with_overwrite(
    tmp_path, monkeypatch, capsys
):
    script = importlib.import_module("experiments.tune_baselines")
    folder, tuning_file = script.output_paths(parse_args(script.TuneArgs, "", []))
    assert folder.parent == outputs.RUNS and tuning_file == folder / "baseline_tuning.json"

    shipped = tmp_path / "baseline_tuning.json"
    shipped.write_text("{}")
    with pytest.raises(SystemExit):
        tune(monkeypatch, "--out", str(tmp_path / "a"), "--tuning-file", str(shipped))
    assert "pass --tuning-file NEW" in capsys.readouterr().err
    with pytest.raises(Reached):
        tune(
            monkeypatch, "--out", str(tmp_path / "b"), "--tuning-file", str(shipped), "--overwrite"
        )


def test_a_run_folder_resumes_with_its_settings_and_refuses_others(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "sweep"
    with pytest.raises(Reached):
        tune(monkeypatch, "--out", str(folder))
    assert json.loads((folder / "config.json").read_text()) == {"tasks": ["reacher"]}
    with pytest.raises(Reached):  # the same settings: it resumes
        tune(monkeypatch, "--out", str(folder))
    with pytest.raises(SystemExit):
        tune(monkeypatch, "--out", str(folder), "--tasks", "hopper")
    assert "other settings (tasks)" in capsys.readouterr().err

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.md").write_text("another run's")
    with pytest.raises(UsageError, match=r"holds files but no config\.json"):
        outputs.claim_run_folder(tmp_path / "other", {"tasks": ["reacher"]})


def test_improve_prior_resumes_its_run_folder_and_refuses_other_settings(tmp_path):
    script = importlib.import_module("experiments.improve_prior")

    def run(*argv: str):
        argv = ["--env", "reacher", "--out", str(tmp_path / "run"), *argv]
        return script.Run(parse_args(script.ImproveArgs, "", argv))

    run()
    run("--rounds", "5", "--workers", "2")  # flags a resumed run may change
    with pytest.raises(UsageError, match=r"other settings \(keep\)"):
        run("--keep", "0.3")


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    from dataclasses import dataclass

    from experiments.harness import cli

    @dataclass
    class Args:
        seed: int

    monkeypatch.setattr(cli.time, "strftime", lambda _: "20261203-160628")
    folders = [cli.run_folder(tmp_path, ["half-cheetah", "de"], Args(seed)) for seed in range(3)]
    names = [f.name for f in folders]
    stem = "half-cheetah__de__20261203-160628"
    assert names == [stem, f"{stem}-2", f"{stem}-3"]
    assert [json.loads((f / "config.json").read_text())["seed"] for f in folders] == [0, 1, 2]
