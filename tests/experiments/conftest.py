"""Running a script in this process, as ``python experiments/<script> ARGS`` runs it.

A subprocess costs seconds of interpreter start and imports (torch, MuJoCo, Gymnasium) before
the script reads its first flag; what it adds over running the script's ``__main__`` block here
is only the exit status of a real process, which a few end-to-end tests (test_cli.py) check.
"""

import runpy
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def run_script_here():
    """``run(script, *args)``: run ``experiments/<script>``'s ``__main__`` block in this process
    with ``args`` as its command line, from the repository root; returns the script's globals.
    The command line and working folder are put back when it returns."""

    def run(script: str, *args: str) -> dict:
        path = str(REPO / "experiments" / script)
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.chdir(REPO)
            monkeypatch.setattr(sys, "argv", [path, *args])  # the script names itself from it
            return runpy.run_path(path, run_name="__main__")

    return run


@pytest.fixture()
def refusal(run_script_here, capsys):
    """``refused(script, *args)``: the one stderr line with which the script refuses ``args``,
    after checking that it ended with exit status 2 (a traceback would fail the test)."""

    def refused(script: str, *args: str) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            run_script_here(script, *args)
        stderr = capsys.readouterr().err
        assert exit_info.value.code == 2, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        assert lines[0].startswith(script) and ": error: " in lines[0], lines[0]
        return lines[0]

    return refused
