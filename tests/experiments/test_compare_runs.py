"""compare_runs.py on two tiny evaluate.py runs: rows paired on shared seeds against the base row,
labelled runs kept apart, an unlabelled clash refused."""

import csv

import pytest

from experiments import compare_runs
from experiments.harness.cli import run_main

COLUMNS = ["env", "planner", "budget", "reward", "seed", "return", "steps", "success"]
COLUMNS += ["mean_abs_action_change", "control_hz", "workers"]


def write_run(folder, rows):
    """An ``episodes.csv`` in ``folder`` of (env, planner, seed, return, success) rows."""
    folder.mkdir()
    with open(folder / "episodes.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for env, planner, seed, value, success in rows:
            writer.writerow(
                [env, planner, "16x3", "simulator", seed, value, 50, success, 0.1, 20, 1]
            )
    return folder


def compare(*argv):
    return run_main(compare_runs.main, compare_runs.CompareArgs, "", list(argv))


def test_rows_of_labelled_runs_are_paired_against_the_base_on_shared_seeds(tmp_path, capsys):
    first = write_run(
        tmp_path / "first",
        [
            ("reacher", "de", 0, -4.0, 0),
            ("reacher", "de", 1, -5.0, 0),
            ("unicycle-goal", "de", 0, 1.0, 1),
            ("unicycle-goal", "de", 1, 0.5, 1),
        ],
    )
    second = write_run(
        tmp_path / "second",
        [
            ("reacher", "de", 0, -6.0, 0),
            ("reacher", "de", 1, -8.0, 0),
            ("reacher", "de", 2, -9.0, 0),
        ],
    )
    text = compare("--runs", f"a={first},b={second}", "--base", "b:de")
    assert text.strip() in capsys.readouterr().out
    reacher = text.split("### reacher, 16x3")[1].split("###")[0]
    assert "| row | return | minus b:de | steps | minus b:de |" in reacher
    # a:de minus b:de on seeds 0 and 1: +2 and +3, mean 2.5
    assert "| a:de | -4.5 ± 6.35 | 2.5 ± 6.35 | 50 ± 0 | 0 ± 0 |" in reacher
    assert "| b:de | -7.67 ± 3.79 |  | 50 ± 0 |  |" in reacher
    goal = text.split("### unicycle-goal, 16x3")[1]
    assert "| row | success |" in goal and "| a:de | 1 [0.342, 1] |" in goal  # Wilson's


def test_the_same_row_of_two_unlabelled_runs_is_refused(tmp_path, capsys):
    first = write_run(tmp_path / "first", [("reacher", "de", 0, -4.0, 0)])
    second = write_run(tmp_path / "second", [("reacher", "de", 0, -6.0, 0)])
    with pytest.raises(SystemExit) as exit_info:
        compare("--runs", f"{first},{second}")
    assert exit_info.value.code == 2
    assert "label the runs (LABEL=FOLDER)" in capsys.readouterr().err
