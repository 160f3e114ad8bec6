"""The scripts refuse bad input in one line (exit status 2), and priors record their task.

A few refusals run as a person runs a script, in a process of their own; the others run the
script in this process (conftest.py), which checks the same line and status in a fraction of
the time."""

import contextlib
import dataclasses
import io
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from envs.registry import get_task
from experiments.harness.cli import USER_ERRORS, UsageError, parse_args, run_main
from experiments.run_mpc import RunArgs
from planner.prior import DiffusionPrior

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO / "checkpoints"
RUN_MPC_COUNTS = [
    "--episodes",
    "--horizon",
    "--knots",
    "--population",
    "--iterations",
    "--search-steps",
    "--final-steps",
    "--max-steps",
    "--particles",
    "--threads",
]
"""run_mpc.py's flags that count something: None takes the task's default, below 1 is refused."""


def run_script(script: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``experiments/<script>`` with ``args`` as a person would, from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(REPO / "experiments" / script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def assert_refused(done: subprocess.CompletedProcess, script: str, *mentions: str) -> None:
    """Exit status 2, no traceback, and one stderr line naming the script and ``mentions``."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(script) and ": error: " in lines[0]
    for mention in mentions:
        assert mention in lines[0]


@pytest.fixture(scope="module")
def truncated_prior(tmp_path_factory) -> Path:
    """The shipped unicycle prior cut to half its bytes."""
    blob = (CHECKPOINTS / "unicycle-action.pt").read_bytes()
    path = tmp_path_factory.mktemp("damaged") / "truncated.pt"
    path.write_bytes(blob[: len(blob) // 2])
    return path


# Counts: validated, never replaced by the default


@pytest.mark.parametrize("flag", RUN_MPC_COUNTS)
@pytest.mark.parametrize("value", ["0", "-3"])
def test_parse_args_refuses_counts_below_one(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(RunArgs, "", [flag, value])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"{flag} must be >= 1, got {value}" in line


def test_every_count_of_run_mpc_declares_its_minimum():
    declared = {
        "--" + field.name.replace("_", "-")
        for field in dataclasses.fields(RunArgs)
        if field.metadata.get("minimum") == 1
    }
    assert declared == set(RUN_MPC_COUNTS)
    assert parse_args(RunArgs, "", ["--population", "1", "--episodes", "1"]).population == 1


# Bad input: one line on stderr, exit status 2, no traceback


@pytest.mark.parametrize(
    ("script", "args", "mentions"),
    [
        ("run_mpc.py", ["--population", "0"], ["--population", "got 0"]),
        ("run_mpc.py", ["--prior", "/nonexistent.pt"], ["/nonexistent.pt", "--prior"]),
        ("benchmark.py", ["rollout", "--tasks", "nowhere"], ["--tasks", "'nowhere'"]),
    ],
)
def test_bad_input_ends_the_process_with_one_line_and_exit_status_2(script, args, mentions):
    """End to end, in a process of its own, once for each way a script refuses its call: a
    refused flag (argparse), a user error in ``main`` (run_main), one in a benchmark
    (run_benchmark). The other refusals run in this process (below)."""
    assert_refused(run_script(script, *args), script, *mentions)


@pytest.mark.parametrize(
    ("script", "args", "mentions"),
    [
        ("run_mpc.py", ["--env", "nowhere"], ["--env", "'nowhere'", "unicycle-goal"]),
        ("run_mpc.py", ["--no-such-flag"], ["--no-such-flag"]),
        ("run_mpc.py", ["--device", "warp-drive"], ["--device warp-drive"]),
        (
            "run_mpc.py",
            ["--planner", "sac", "--env", "reacher", "--agent", "missing.zip"],
            ["missing.zip", "train_agent.py"],
        ),
        (
            "run_mpc.py",
            ["--env", "unicycle-goal", "--prior", "checkpoints/reacher-action.pt"],
            ["reacher-action.pt", "'reacher'", "'unicycle'", "--force-prior"],
        ),
        ("run_mpc.py", ["--planner", "cem", "--prior", "x.pt"], ["--prior", "--planner de"]),
        ("evaluate.py", ["--episodes", "0"], ["--episodes", "got 0"]),
        ("evaluate.py", ["--envs", "unicycle-goal,nowhere"], ["--envs", "nowhere"]),
        ("train_prior.py", ["--steps", "0"], ["--steps", "got 0"]),
        ("collect_data.py", ["--agent", "missing.zip"], ["missing.zip", "train_agent.py"]),
        ("train_agent.py", ["--timesteps", "0"], ["--timesteps", "got 0"]),
        ("reproduce_blog.py", ["--prior", "/nonexistent.pt"], ["/nonexistent.pt"]),
        ("benchmark.py", ["decode", "--repeats", "0"], ["--repeats", "got 0"]),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(script, args, mentions, refusal):
    line = refusal(script, *args)
    for mention in mentions:
        assert mention in line


def test_a_truncated_prior_is_one_line(truncated_prior, refusal):
    line = refusal("run_mpc.py", "--prior", str(truncated_prior))
    assert str(truncated_prior) in line and "truncated or corrupted" in line


def test_a_truncated_agent_is_one_line(tmp_path, refusal):
    agent = tmp_path / "reacher-sac.zip"
    agent.write_bytes((CHECKPOINTS / "agents" / "reacher-sac.zip").read_bytes()[:3000])
    line = refusal("run_mpc.py", "--env", "reacher", "--planner", "sac", "--agent", str(agent))
    assert str(agent) in line and "truncated or corrupted" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_cpu_only_machine_is_one_line(refusal):
    line = refusal("run_mpc.py", "--device", "cuda")
    assert "--device cuda" in line and "--device cpu" in line


def test_debug_shows_the_traceback(run_script_here):
    with pytest.raises(USER_ERRORS, match=r"/nonexistent\.pt"):
        run_script_here("run_mpc.py", "--prior", "/nonexistent.pt", "--debug")


def test_run_main_reports_usage_errors_in_one_line_and_lets_bugs_through(capsys):
    def refuse(args):
        raise UsageError("--population 3 is too small: pass --population 8")

    def crash(args):
        raise KeyError("a bug")

    with pytest.raises(SystemExit) as exit_info:
        run_main(refuse, RunArgs, "", [])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.endswith("error: --population 3 is too small: pass --population 8")
    with pytest.raises(UsageError):
        run_main(refuse, RunArgs, "", ["--debug"])
    with pytest.raises(KeyError, match="a bug"):
        run_main(crash, RunArgs, "", [])


# --help: one default per flag


SCRIPTS = sorted(
    path.name for path in (REPO / "experiments").glob("*.py") if path.stem != "__init__"
)


def script_help(script: str, *argv: str) -> str:
    """``experiments/<script> *argv --help`` run in this process, as ``python`` would run it."""
    path = REPO / "experiments" / script
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", [str(path), *argv, "--help"])
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout), pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(path), run_name="__main__")
    assert exit_info.value.code == 0
    return stdout.getvalue()


def flag_entries(text: str) -> list[str]:
    """Each flag's (and subcommand's) entry in a --help text, its lines joined by one space."""
    listed = re.split(r"\n(?:positional arguments|options):\n", text, maxsplit=1)[1]
    return [" ".join(entry.split()) for entry in re.split(r"\n(?=  \S)", "\n" + listed)]


def test_a_plain_default_is_shown_and_a_described_one_is_not_repeated():
    entries = {e.split()[0]: e for e in flag_entries(script_help("run_mpc.py")) if e.strip()}
    assert entries["--seed"].endswith("(default: 0)")
    assert entries["--episodes"].endswith("(default: the task's)")


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_flag_of_every_script_shows_one_default(script):
    text = script_help(script)
    texts = [text]
    subcommands = re.search(r"^  \{([\w,-]+)\}$", text, re.MULTILINE)  # benchmark.py's
    if subcommands:
        texts += [script_help(script, name) for name in subcommands.group(1).split(",")]
    for entry in (entry for each in texts for entry in flag_entries(each)):
        assert entry.count("default:") <= 1, entry
        assert "(default: None)" not in entry and "(default: False)" not in entry, entry
        assert "(default: )" not in entry, entry


# Priors record the task they were trained for


def test_shipped_priors_record_their_tasks():
    others = set(CHECKPOINTS.glob("*-world-model.pt")) | set(CHECKPOINTS.glob("*-student.pt"))
    for path in sorted(set(CHECKPOINTS.glob("*.pt")) - others):
        record = json.loads(path.with_suffix(".json").read_text())
        family = get_task(record["arguments"]["env"]).family
        assert record["task"] == family, path.name
        assert DiffusionPrior.load(path).task == family, path.name


def test_the_unicycle_tasks_share_one_family():
    assert get_task("unicycle-goal").family == get_task("unicycle-obstacles").family == "unicycle"
    assert get_task("reacher").family == "reacher"


def test_force_prior_plans_with_it(tmp_path, run_script_here):
    run_script_here(
        *("run_mpc.py", "--env", "unicycle-goal", "--prior", "checkpoints/reacher-action.pt"),
        *("--force-prior", "--episodes", "1", "--max-steps", "1", "--population", "4"),
        *("--iterations", "1", "--no-render", "--runs-dir", str(tmp_path / "runs")),
    )
    (folder,) = (tmp_path / "runs").iterdir()
    assert (folder / "results.json").is_file()


def test_train_agent_takes_sb3s_auto_device_and_refuses_unknown_ones():
    from experiments import train_agent

    assert parse_args(train_agent.AgentArgs, "", ["--device", "auto"]).device == "auto"
    with pytest.raises(SystemExit) as refused:
        parse_args(train_agent.AgentArgs, "", ["--device", "warp-drive"])
    assert refused.value.code == 2
