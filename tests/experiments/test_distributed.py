"""Episodes as Ray tasks: the records of in-process runs, none lost or doubled if a worker dies."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments.harness.cli import UsageError, parse_args
from experiments.harness.distributed import check_ray_address, map_unordered
from experiments.harness.grid import TIMING_COLUMNS, EpisodeLog, GridSettings, Row, run_grid

REPO = Path(__file__).resolve().parents[2]
EPISODES = [
    (Row("unicycle-goal", planner, 8, 1), seed) for planner in ("de", "cem") for seed in (0, 1)
]
SETTINGS = GridSettings(max_steps=4)


def without(records, *columns):
    return [{k: v for k, v in r.items() if k not in columns} for r in records]


def test_the_default_path_never_imports_ray(tmp_path):
    code = (
        "import sys\n"
        "from experiments.harness.grid import EpisodeLog, GridSettings, Row, run_grid\n"
        "import experiments.evaluate, experiments.collect_data, planner.parallel, planner.islands\n"
        f"run_grid([(Row('unicycle-goal', 'cem', 8, 1), 0)], GridSettings(max_steps=2), "
        f"EpisodeLog({str(tmp_path / 'e.csv')!r}))\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("address", ["local", "auto", "10.0.0.5:6379", "head.cluster:6379"])
def test_ray_addresses_accepted(address):
    check_ray_address(address)


@pytest.mark.parametrize("address", ["", "6379", "head node:1", "ray://"])
def test_ray_addresses_refused_with_the_forms_that_work(address):
    with pytest.raises(ValueError, match=r"use local .* auto .* HOST:PORT"):
        check_ray_address(address)


def test_the_flag_is_checked_on_the_command_line():
    from experiments.evaluate import EvalArgs

    with pytest.raises(SystemExit):
        parse_args(EvalArgs, "", ["--ray-address", "nowhere"])
    assert parse_args(EvalArgs, "", ["--ray-address", "auto"]).ray_address == "auto"


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(UsageError, match=r"needs Ray: pip install -e '\.\[distributed\]'"):
        list(map_unordered(abs, [1], ray_address="local"))


# Below: on the module's private Ray cluster (skipped, saying why, where Ray is not installed)


def test_grid_on_ray_equals_the_grid_in_process(ray_cluster, tmp_path):
    local = run_grid(EPISODES, SETTINGS, EpisodeLog(tmp_path / "local.csv"))
    log = EpisodeLog(tmp_path / "ray.csv")
    distributed = run_grid(EPISODES, SETTINGS, log, ray_address="local")
    assert {r["workers"] for r in distributed} == {2}  # the cluster's CPUs: rates not comparable
    ignored = (*TIMING_COLUMNS, "workers")
    assert without(distributed, *ignored) == without(local, *ignored)
    assert len(EpisodeLog(tmp_path / "ray.csv").records) == len(EPISODES)  # each logged once


def die_once(job):
    """Job (marker folder, item): the worker running item 2 dies the first time."""
    folder, item = job
    marker = Path(folder) / f"{item}.started"
    if item == 2 and not marker.exists():
        marker.touch()
        os._exit(1)
    return item, os.getpid()


def test_a_killed_worker_loses_no_job_and_doubles_none(ray_cluster, tmp_path):
    jobs = [(str(tmp_path), item) for item in range(5)]
    results = list(map_unordered(die_once, jobs, ray_address="local"))
    assert sorted(item for item, _ in results) == list(range(5))  # item 2 rerun, once
    assert (tmp_path / "2.started").exists()


def sleeps(seconds):
    time.sleep(seconds)
    return seconds


def test_a_stopped_iteration_keeps_what_finished_and_cancels_the_rest(ray_cluster):
    started = time.perf_counter()
    finished = map_unordered(sleeps, [0.0, 60.0, 60.0], ray_address="local")
    assert next(finished) == 0.0
    finished.close()  # what a driver's KeyboardInterrupt does to the loop over it
    assert time.perf_counter() - started < 30
    assert list(map_unordered(sleeps, [0.0, 0.0], ray_address="local")) == [0.0, 0.0]


def fails(job):
    raise KeyError(f"no such thing as {job}")


def test_a_job_error_is_not_retried_and_keeps_its_type(ray_cluster):
    with pytest.raises(KeyError, match="no such thing as 7"):
        list(map_unordered(fails, [7], ray_address="local"))


def test_collect_data_on_ray_equals_in_process(ray_cluster, tmp_path):
    from experiments import collect_data

    common = ["--env", "reacher", "--source", "random", "--episodes", "3", "--max-steps", "6"]
    common += ["--horizon", "4", "--action-noise", "0.1"]
    files = []
    for name, extra in (("local", []), ("ray", ["--ray-address", "local"])):
        argv = [*common, *extra, "--out", str(tmp_path / f"{name}.npz")]
        files.append(collect_data.main(parse_args(collect_data.CollectArgs, "", argv)))
    local, distributed = (dict(np.load(path)) for path in files)
    for key in local:
        if key != "metadata":
            np.testing.assert_array_equal(local[key], distributed[key], err_msg=key)
