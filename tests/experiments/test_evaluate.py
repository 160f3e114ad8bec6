"""evaluate.py end to end on a tiny grid (subprocesses): its files agree, it resumes exactly,
its episodes do not depend on the worker count, and it refuses to mix grids; and
results_to_readme.py, which puts its results.md into the README."""

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.mujoco_rewards import parse_costs
from envs.registry import CHECKPOINTS
from experiments import evaluate as evaluate_module
from experiments.evaluate import SUITES, EvalArgs, plan_episodes
from experiments.evaluate import main as evaluate_main
from experiments.harness.cli import UsageError, run_main
from experiments.harness.grid import COLUMNS, TIMING_COLUMNS, EpisodeLog, episode_key, row_setup
from experiments.harness.statistics import mean_interval, paired_difference, proportion_interval
from experiments.results_to_readme import END, START, ReadmeArgs
from experiments.results_to_readme import main as insert_results

REPO = Path(__file__).resolve().parents[2]
TINY_GRID = (
    *("--envs", "unicycle-goal,reacher", "--planners", "de,cem", "--budgets", "8x1"),
    *("--warm-starts", "none,shift", "--episodes", "2", "--max-steps", "3"),
)
"""2 tasks x 3 rows (de[none], de[shift], cem) x 1 budget x 2 seeds, 3 steps an episode."""


def evaluate(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "experiments" / "evaluate.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def read_episodes(folder: Path) -> list[dict]:
    """The records of ``folder/episodes.csv``, sorted by episode."""
    return sorted(EpisodeLog(folder / "episodes.csv").records, key=episode_key)


def without(records: list[dict], *columns: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in columns} for r in records]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny grid run once, uninterrupted, with one worker; its --out folder."""
    folder = tmp_path_factory.mktemp("evaluate") / "tiny"
    evaluate(*TINY_GRID, "--out", str(folder))
    return folder


def section(markdown: str, env: str) -> list[str]:
    """The lines of results.md under the heading of ``env``, up to the next heading."""
    text = markdown.split(f"\n## {env}\n", 1)[1]
    return text.split("\n## ", 1)[0].splitlines()


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def test_one_line_per_episode_and_results_md_agrees_with_it(tiny_run):
    records = read_episodes(tiny_run)
    assert len(records) == 2 * 3 * 2  # tasks x rows x seeds, each once
    assert {r["planner"] for r in records} == {"de[none]", "de[shift]", "cem"}
    assert {r["seed"] for r in records} == {0, 1}
    assert all(r["steps"] == 3 and r["workers"] == 1 for r in records)
    # exactly the budget, N*T = 8, every step: the plans kept from before come out of it
    assert all(r["reward_evals_per_step"] == r["max_reward_evals_per_step"] == 8 for r in records)
    markdown = (tiny_run / "results.md").read_text()
    assert "--envs unicycle-goal,reacher" in markdown  # the exact command
    assert "cores" in markdown and "torch" in markdown and "mujoco" in markdown
    for env, planner in [("unicycle-goal", "cem"), ("reacher", "de[shift]")]:
        mine = [r for r in records if (r["env"], r["planner"]) == (env, planner)]
        (line,) = [x for x in section(markdown, env) if x.startswith(f"| {planner} | 8x1 |")]
        for interval in (
            mean_interval(np.array([r["return"] for r in mine])),
            mean_interval(np.array([r["mean_abs_action_change"] for r in mine])),
        ):
            assert f"| {interval} |" in line, (interval, line)
        if env == "unicycle-goal":
            rate = proportion_interval(np.array([r["success"] for r in mine]))
            assert f"| {rate} |" in line  # Wilson, as statistics.py computes it
    # DE against CEM on reacher: paired over the seeds, in return (reacher has no success)
    de, cem = (
        np.array([r["return"] for r in records if r["env"] == "reacher" and r["planner"] == name])
        for name in ("de[none]", "cem")
    )
    paired = f"| de[none] | cem | 8x1 | {paired_difference(de, cem)} | 2 |"
    assert paired in section(markdown, "reacher")
    assert {"main_metric.png", "control_rate.png"} <= {p.name for p in tiny_run.iterdir()}


def test_warm_start_modes_are_rows_that_plan_differently(tiny_run):
    records = read_episodes(tiny_run)
    smoothness = {(r["env"], r["planner"], r["seed"]): r["mean_abs_action_change"] for r in records}
    # from the second step on, the warm start changes the plan
    for env in ("unicycle-goal", "reacher"):
        assert smoothness[env, "de[none]", 0] != smoothness[env, "de[shift]", 0]


def test_a_stopped_grid_resumes_to_the_uninterrupted_episodes(tiny_run, tmp_path):
    folder = copy_of(tiny_run, tmp_path)
    for name in ("results.md", "main_metric.png", "control_rate.png"):
        (folder / name).unlink()
    # stopped in the middle of writing the 6th episode: the header, 5 episodes and half a line
    log = folder / "episodes.csv"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:6]) + lines[6][: len(lines[6]) // 2])
    evaluate(*TINY_GRID, "--out", str(folder))
    resumed, uninterrupted = read_episodes(folder), read_episodes(tiny_run)
    assert without(resumed, *TIMING_COLUMNS) == without(uninterrupted, *TIMING_COLUMNS)
    # the 5 finished episodes were kept, not run again: even their clock readings are the same
    kept = list(csv.reader(lines[1:6]))
    again = list(csv.reader(log.read_text().splitlines()[1:6]))
    assert kept == again
    assert (folder / "results.md").exists()


def test_two_workers_run_the_same_episodes_as_one(tiny_run, tmp_path):
    evaluate(*TINY_GRID, "--workers", "2", "--out", str(tmp_path / "two"))
    two, one = read_episodes(tmp_path / "two"), read_episodes(tiny_run)
    assert {r["workers"] for r in two} == {2}
    assert without(two, *TIMING_COLUMNS, "workers") == without(one, *TIMING_COLUMNS, "workers")
    markdown = (tmp_path / "two" / "results.md").read_text()
    assert "not comparable" in markdown  # the control rates of parallel episodes


def test_another_grid_is_refused_in_a_grid_folder(tiny_run, tmp_path, refusal):
    folder = copy_of(tiny_run, tmp_path)
    before = (folder / "episodes.csv").read_text()
    line = refusal("evaluate.py", *TINY_GRID, "--episodes", "3", "--out", str(folder))
    assert "holds another grid" in line and "seeds" in line
    assert "--envs unicycle-goal,reacher" in line  # how to resume it instead
    assert (folder / "episodes.csv").read_text() == before


def test_a_complete_grid_says_so_rather_than_how_to_resume(tiny_run, tmp_path, capsys):
    folder = copy_of(tiny_run, tmp_path)
    before = (folder / "episodes.csv").read_text()
    run_main(evaluate_main, EvalArgs, "", [*TINY_GRID, "--out", str(folder)])
    first = capsys.readouterr().out.splitlines()[0]
    assert "complete" in first and "to resume" not in first, first
    assert (folder / "episodes.csv").read_text() == before


def test_a_run_that_fails_before_its_first_episode_leaves_nothing(tmp_path, capsys):
    missing = tmp_path / "missing-world-model.pt"  # refused only when the first episode starts
    grid = [
        *("--envs", "reacher", "--planners", "cem", "--budgets", "8x1", "--episodes", "1"),
        *("--rewards", "world-model", "--world-model", str(missing)),
    ]
    with pytest.raises(SystemExit) as exit_info:
        run_main(evaluate_main, EvalArgs, "", [*grid, "--out", str(tmp_path / "new" / "grid")])
    assert exit_info.value.code == 2 and str(missing) in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    given = tmp_path / "empty"  # a folder given empty stays, and empty
    given.mkdir()
    with pytest.raises(SystemExit):
        run_main(evaluate_main, EvalArgs, "", [*grid, "--out", str(given)])
    assert list(given.iterdir()) == []


def test_a_failed_run_keeps_the_episodes_recorded(tmp_path, monkeypatch):
    def fail(episodes, settings, log, *rest):
        if not log.records:  # the first run records one episode before it fails
            row, seed = episodes[0]
            log.append({name: 0 for name in COLUMNS} | row.columns() | {"seed": seed})
        raise RuntimeError("an episode failed")

    args = EvalArgs(envs="reacher", planners="cem", budgets="8x1", episodes=2, out=str(tmp_path))
    monkeypatch.setattr(evaluate_module, "run_grid", fail)
    for _ in range(2):  # the first run, then its resume
        with pytest.raises(RuntimeError, match="an episode failed"):
            evaluate_main(args)
        assert {p.name for p in tmp_path.iterdir()} == {"grid.json", "episodes.csv"}
        assert [r["seed"] for r in EpisodeLog(tmp_path / "episodes.csv").records] == [0]


def test_agents_are_rows_without_a_budget(tmp_path):
    grid = ("--envs", "reacher", "--planners", "de,sac", "--budgets", "8x1", "--episodes", "2")
    evaluate(*grid, "--max-steps", "3", "--out", str(tmp_path))
    agent = [r for r in read_episodes(tmp_path) if r["planner"] == "sac"]
    assert len(agent) == 2
    assert all(r["budget"] == "-" and r["population"] is None for r in agent)
    assert all(r["reward_evals_per_step"] == 0 for r in agent)  # it does not plan
    markdown = (tmp_path / "results.md").read_text()
    assert "| sac | - |" in markdown and "| de | sac | 8x1 |" in markdown


def test_a_suite_fixes_its_grid():
    with pytest.raises(ValueError, match="--suite quick fixes --envs, --episodes"):
        EvalArgs(suite="quick", envs="reacher", episodes=3)
    EvalArgs(suite="quick", max_steps=5, workers=2)  # settings still apply


def test_the_propagation_and_particles_reach_every_world_model_row():
    args = EvalArgs(
        envs="half-cheetah", planners="de,cem", budgets="8x1", rewards="simulator,world-model",
        propagation="tsinf", particles=10,
    )  # fmt: skip
    settings = args.settings()
    for row, _ in plan_episodes(args):
        setup = row_setup(row, settings)
        assert (setup.propagation, setup.particles) == ("tsinf", 10)
    with pytest.raises(ValueError, match="particles=3 needs a sampling propagation"):
        EvalArgs(rewards="world-model", particles=3)
    with pytest.raises(ValueError, match="--particles must be >= 1"):
        EvalArgs(propagation="ts1", particles=0)


def test_the_pessimism_reaches_world_model_rows_only():
    args = EvalArgs(
        envs="half-cheetah", planners="de,cem", budgets="8x1", rewards="simulator,world-model",
        propagation="tsinf", pessimism=1.5,
    )  # fmt: skip
    settings = args.settings()
    seen = {row_setup(row, settings).pessimism: row.reward for row, _ in plan_episodes(args)}
    assert seen == {0.0: "simulator", 1.5: "world-model"}
    with pytest.raises(ValueError, match="propagation 'mean' rolls one"):
        EvalArgs(rewards="world-model", pessimism=1.0)


def test_the_value_reaches_world_model_rows_as_it_reaches_simulator_rows():
    declared = (CHECKPOINTS / "agents" / "hopper-value-452k-sac.zip", 2.0)
    for value_agent, expected in ((None, declared), ("none", None)):
        args = EvalArgs(
            envs="hopper", planners="de,cem", budgets="8x1", rewards="simulator,world-model",
            value_agent=value_agent,
        )  # fmt: skip
        settings = args.settings()
        seen = {
            (row.planner, row.reward): row_setup(row, settings).value()
            for row, _ in plan_episodes(args)
        }
        assert len(seen) == 4 and all(value == expected for value in seen.values())


def test_the_costs_reach_every_row_and_rows_that_cannot_charge_them_are_refused_first():
    args = EvalArgs(envs="hopper", planners="de,cem", budgets="8x1", costs="upright=3")
    settings = args.settings()
    for row, _ in plan_episodes(args):
        assert row_setup(row, settings).costs == parse_costs("upright=3")
    assert EvalArgs(envs="hopper").settings().costs is None  # each task's declared ones
    with pytest.raises(ValueError, match="--costs tilt=1: unknown cost term"):
        EvalArgs(costs="tilt=1")
    for flags, mentions in [
        ({"envs": "unicycle-goal", "planners": "cem"}, "drop unicycle-goal from --envs"),
        ({"envs": "reacher", "planners": "cem", "rewards": "world-model"}, "planar legged"),
    ]:
        args = EvalArgs(budgets="8x1", costs="upright=3", **flags)
        rows = list(dict.fromkeys(row for row, _ in plan_episodes(args)))
        with pytest.raises(UsageError, match=mentions):
            evaluate_module.check_costs(rows, args.settings())
    # a world model is charged them too, on its predicted observations
    args = EvalArgs(envs="hopper", planners="cem", rewards="world-model", costs="upright=3")
    evaluate_module.check_costs(
        list(dict.fromkeys(r for r, _ in plan_episodes(args))), args.settings()
    )


def test_the_full_suite_has_enough_seeds_and_every_task():
    episodes = plan_episodes(EvalArgs(suite="full"))
    seeds: dict = {}
    for row, seed in episodes:
        seeds.setdefault(row, []).append(seed)
    envs = {row.env for row in seeds}
    assert envs == {"unicycle-goal", "unicycle-obstacles", "reacher", "half-cheetah", "hopper"}
    for row, of_row in seeds.items():
        assert of_row == list(range(len(of_row)))
        assert len(of_row) >= (10 if row.env.startswith("unicycle") else 5)
    agents = [row for row in seeds if row.planner == "sac"]
    assert sorted(row.env for row in agents) == ["half-cheetah", "hopper", "reacher"]
    assert {row.budget for row in agents} == {"-"}
    budgets = {row.env: {r.budget for r in seeds if r.env == row.env} - {"-"} for row in seeds}
    assert all(len(of_env) >= 2 for of_env in budgets.values())  # a sweep on every task
    quick = {row.env for row, _ in plan_episodes(EvalArgs(suite="quick"))}
    assert {"unicycle-goal", "unicycle-obstacles", "reacher"} <= quick
    assert set(SUITES) == {"quick", "full"}


def test_a_log_cut_inside_a_line_or_its_header_drops_only_the_cut_part(tmp_path):
    path = tmp_path / "episodes.csv"
    record = {name: 1 for name in COLUMNS} | {"env": "reacher", "planner": "de", "budget": "8x1"}
    log = EpisodeLog(path)
    for seed in range(3):
        log.append(record | {"seed": seed})
    text = path.read_text()
    path.write_text(text[:-5])
    assert [r["seed"] for r in EpisodeLog(path).records] == [0, 1]
    assert path.read_text() == text[: text.rfind("\n", 0, len(text) - 1) + 1]
    path.write_text("env,plan")  # stopped while writing the header
    assert EpisodeLog(path).records == []
    assert path.read_text().splitlines() == [",".join(COLUMNS)]


# results_to_readme.py: the README's results block comes from results.md


def readme_with_markers(tmp_path: Path) -> Path:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n\n## What it does\n\n{START}\nold numbers\n{END}\n\n## More\n")
    return readme


def test_the_readme_block_is_one_row_per_task_linking_the_full_report(tiny_run, tmp_path):
    readme = readme_with_markers(tmp_path)
    insert_results(ReadmeArgs(results=str(tiny_run), readme=str(readme), any_grid=True))
    text = readme.read_text()
    assert "old numbers" not in text
    assert text.startswith("# Project\n\n## What it does\n") and text.endswith("## More\n")
    block = text.split(START)[1].split(END)[0]
    rows = {line.split(" | ")[0][2:]: line for line in block.splitlines() if line.startswith("| ")}
    assert set(rows) == {"task", "---", "unicycle-goal", "reacher"}
    # DE's first row at the budget against CEM, with the intervals results.md gives them
    markdown = (tiny_run / "results.md").read_text()
    lines = section(markdown, "reacher")
    first = lines.index(next(line for line in lines if line.startswith("| planner")))
    table = [line.split(" | ") for line in lines[first : lines.index("", first)]]
    returns = {cells[0][2:]: cells[table[0].index("return")] for cells in table}
    cells = rows["reacher"].split(" | ")
    assert cells[2] == f"{returns['de[none]']} (8x1)" and cells[3] == f"cem: {returns['cem']}"
    assert cells[5] == "2 |"
    links = re.findall(r"\]\(([^)]+)\)", block)
    assert links and all((readme.parent / link).is_file() for link in links)
    insert_results(ReadmeArgs(results=str(tiny_run), readme=str(readme), any_grid=True))
    assert readme.read_text() == text  # a second run changes nothing


def test_the_readme_takes_only_a_finished_full_suite(tiny_run, tmp_path):
    readme = readme_with_markers(tmp_path)
    before = readme.read_text()
    with pytest.raises(UsageError, match="custom grid, not --suite full"):
        insert_results(ReadmeArgs(results=str(tiny_run), readme=str(readme)))
    folder = copy_of(tiny_run, tmp_path)
    log = folder / "episodes.csv"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:6]))
    with pytest.raises(UsageError, match="5 of its grid's 12 episodes"):
        insert_results(ReadmeArgs(results=str(folder), readme=str(readme), any_grid=True))
    readme.write_text("# Project without markers\n")
    with pytest.raises(UsageError, match="results:start"):
        insert_results(ReadmeArgs(results=str(tiny_run), readme=str(readme), any_grid=True))
    assert readme_with_markers(tmp_path).read_text() == before


MODEL = "world-model"


def test_a_setting_added_since_a_folder_was_written_reads_as_its_default():
    from experiments.harness.grid import GridSettings, Row, describe_grid, grid_difference

    def grid(settings):  # as evaluate.py compares them: through JSON
        rows = [(Row("reacher", "cem", 8, 1), 0), (Row("reacher", "cem", 8, 1, reward=MODEL), 0)]
        return json.loads(json.dumps(describe_grid(None, rows, settings)))

    older = grid(GridSettings(max_steps=3))
    written_before = ("horizon", "horizon_seconds", "knots", "interpolation", "propagation")
    for name in (*written_before, "particles"):  # written before GridSettings had them
        del older["settings"][name]
    for row in older["rows"]:
        del row["propagation"]  # nor did its rows record theirs: the mean, then
    assert grid_difference(older, grid(GridSettings(max_steps=3))) is None
    assert "tsinf" in grid_difference(older, grid(GridSettings(max_steps=3, propagation="tsinf")))
    assert "horizon" in grid_difference(older, grid(GridSettings(max_steps=3, horizon=32)))
    assert "knots" in grid_difference(older, grid(GridSettings(max_steps=3, knots=4)))


def test_a_world_model_row_resumes_only_with_the_propagation_it_was_run_with():
    from experiments.harness.grid import GridSettings, Row, describe_grid, grid_difference

    def grid(env, settings=GridSettings()):  # as evaluate.py compares them: through JSON
        rows = [(Row(env, "cem", 8, 1), 0), (Row(env, "cem", 8, 1, reward=MODEL), 0)]
        return json.loads(json.dumps(describe_grid(None, rows, settings)))

    hopper = grid("hopper")
    assert [row["propagation"] for row in hopper["rows"]] == [None, "tsinf"]  # resolved
    # written when every world model planned with the mean: those rows recorded none
    for env in ("hopper", "half-cheetah", "reacher"):
        older = grid(env, GridSettings(propagation="mean"))
        older["settings"]["propagation"] = "mean"
        for row in older["rows"]:
            del row["propagation"]
        difference = grid_difference(older, grid(env))
        if env != "reacher":  # their default is TS-inf now: the folder is another grid
            assert "propagation mean there, tsinf here" in difference
        else:
            assert difference is None  # reacher's default is still the mean
    told = grid("hopper", GridSettings(propagation="tsinf"))
    assert grid_difference(grid("hopper"), told) is None  # the same rows, told or by default


def test_a_folder_resumes_only_where_each_row_plans_with_the_value_it_was_run_with():
    from experiments.harness.grid import GridSettings, Row, describe_grid, grid_difference

    def grid(settings, env="hopper"):  # as evaluate.py compares them: through JSON
        rows = [(Row(env, "cem", 8, 1), 0), (Row(env, "sac"), 0)]
        return json.loads(json.dumps(describe_grid(None, rows, settings)))

    hopper = grid(GridSettings())
    declared = {"agent": "checkpoints/agents/hopper-value-452k-sac.zip", "weight": 2.0}
    assert [row["value"] for row in hopper["rows"]] == [declared, None]  # an agent plans none
    assert grid_difference(hopper, grid(GridSettings(value_weight=2.0))) is None
    agent = str(CHECKPOINTS / "agents" / "hopper-value-452k-sac.zip")  # the same file, named
    assert grid_difference(hopper, grid(GridSettings(value_agent=agent))) is None
    assert "value" in grid_difference(hopper, grid(GridSettings(value_weight=1.0)))
    assert "value" in grid_difference(hopper, grid(GridSettings(value_agent="none")))
    # written before tasks declared values: no row value, and the old default weight 1
    older = grid(GridSettings(value_weight=1.0))
    for row in older["rows"]:
        del row["value"]
    assert "value" in grid_difference(older, hopper)
    reacher_before = grid(GridSettings(value_weight=1.0), "reacher")
    for row in reacher_before["rows"]:
        del row["value"]
    assert grid_difference(reacher_before, grid(GridSettings(), "reacher")) is None


def test_a_folder_resumes_only_where_each_de_row_plans_with_the_prior_it_was_run_with():
    from experiments.harness.grid import GridSettings, Row, describe_grid, grid_difference

    def grid(settings, env="hopper", recorded=True):  # through JSON, as evaluate.py reads it
        rows = [(Row(env, "de", 8, 1), 0), (Row(env, "cem", 8, 1), 0)]
        record = json.loads(json.dumps(describe_grid(None, rows, settings)))
        for row in [] if recorded else record["rows"]:
            del row["prior"]  # as written before rows recorded their prior
        return record

    hopper, old = grid(GridSettings()), str(CHECKPOINTS / "hopper-action.pt")
    assert [row["prior"] for row in hopper["rows"]] == [
        "checkpoints/hopper-action-selftaught.pt",
        None,
    ]
    assert grid(GridSettings(prior=old))["rows"][0]["prior"] == "checkpoints/hopper-action.pt"
    elsewhere = grid(GridSettings())
    elsewhere["rows"][0]["prior"] = "runs/another.pt"
    assert "prior runs/another.pt there" in grid_difference(elsewhere, hopper)
    # before the records, hopper's default was hopper-action.pt: its DE row differs now
    assert "prior checkpoints/hopper-action.pt there" in grid_difference(
        grid(GridSettings(), recorded=False), hopper
    )
    assert (
        grid_difference(
            grid(GridSettings(prior=old), recorded=False), grid(GridSettings(prior=old))
        )
        is None
    )
    reacher = grid(GridSettings(), "reacher")
    assert grid_difference(grid(GridSettings(), "reacher", recorded=False), reacher) is None


def test_a_sampled_world_model_scores_an_episode_alike_whatever_ran_before_it():
    """A grid episode's world model is seeded with the episode's seed, not shared along a
    process: TS-1 draws the same members for an episode whichever episodes came before it."""
    from experiments.harness.grid import GridSettings, Row, episode_planning

    settings = GridSettings(max_steps=3, propagation="ts1", particles=2)
    row = Row("reacher", "cem", 8, 1, reward="world-model")
    planning = episode_planning(row, 1, settings)
    observation, _ = planning.env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (16, 16, 2))
    first = planning.objective(observation, actions)
    episode_planning(row, 0, settings).objective(observation, actions)
    again = episode_planning(row, 1, settings).objective(observation, actions)
    np.testing.assert_array_equal(first, again)
    other_seed = episode_planning(row, 2, settings).objective(observation, actions)
    assert not np.array_equal(first, other_seed)
