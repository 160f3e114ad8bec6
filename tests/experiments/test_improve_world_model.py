"""improve_world_model.py: the data/model loop resumes a stopped round repeating nothing, refuses a
folder of a run with other flags, writes its round table and plot (the planner and CEM on the
simulator as lines), and plans walker2d with CEM instead of DE (tiny models, 8 x 1,
few-step episodes; the script runs in this process, its episode runner and trainer counted)."""

import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import SAC

from envs.registry import CHECKPOINTS, make_env
from envs.world_model_rules import ObservedHealth, ObservedLocomotionReward
from experiments import improve_world_model as script
from experiments.harness.cli import parse_args
from experiments.harness.collection import TRANSITION_FIELDS
from experiments.harness.imitation import load_episode
from planner.action_scaling import ActionScaling
from planner.world_model import WorldModel, WorldModelObjective, k_step_errors
from policies.setup import PlanningSetup

TINY = (
    *("--env", "reacher", "--episodes", "2", "--max-steps", "6", "--random-episodes", "1"),
    *("--validation-seeds", "1000-1001", "--population", "8", "--iterations", "1"),
    *("--ensemble", "2", "--hidden", "16", "--depth", "1", "--epochs", "2", "--threads", "1"),
)
WALKER = (
    *("--env", "walker2d", "--planner", "cem", "--episodes", "2", "--max-steps", "3"),
    *("--random-episodes", "0"),
    *("--validation-seeds", "1000-1001", "--population", "8", "--iterations", "1"),
    *("--ensemble", "2", "--hidden", "16", "--depth", "1", "--epochs", "2", "--threads", "1"),
)
BOUNDS = ("low", "high")
SUMMARIES = ("rounds.json", "rounds.png", "best.pt")
"""The run's summary files: rewritten by every run, as they gather every round."""


def improve(out: Path, rounds: int, flags: tuple[str, ...] = TINY) -> dict:
    """Run ``flags`` with ``--rounds rounds`` into ``out``; returns what ran (``episodes``:
    (planner, reward, seed) of each episode, ``trained``: the round of each model trained) and
    the printout."""
    calls = {"episodes": [], "random": [], "agent": [], "trained": []}
    run_episode, run_random, run_agent, train = (
        script.planner_episode,
        script.random_episode,
        script.agent_episode,
        script.train_world_model,
    )

    def counted_episode(job):
        calls["episodes"].append((job.setup.planner, job.setup.reward, job.seed))
        return run_episode(job)

    def counted_random(job):
        calls["random"].append(job.seed)
        return run_random(job)

    def counted_agent(job):
        calls["agent"].append((job.seed, job.noise))
        return run_agent(job)

    def counted_train(*args, **kwargs):
        calls["trained"].append(args[5].seed)  # the WorldModelTraining: seed 0 + round
        return train(*args, **kwargs)

    argv = [*flags, "--rounds", str(rounds), "--out", str(out)]
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.setattr(script, "planner_episode", counted_episode)
        patch.setattr(script, "random_episode", counted_random)
        patch.setattr(script, "agent_episode", counted_agent)
        patch.setattr(script, "train_world_model", counted_train)
        script.main(parse_args(script.ImproveArgs, "", argv))
    return {**calls, "stdout": stdout.getvalue()}


def files(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file's modification time and content hash, by path in ``folder``."""
    return {
        str(p.relative_to(folder)): (
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def work(folder: Path) -> dict[str, tuple[int, str]]:
    """:func:`files` but the summaries."""
    return {k: v for k, v in files(folder).items() if k not in SUMMARIES}


@pytest.fixture(scope="module")
def one_round(tmp_path_factory) -> tuple[Path, dict]:
    """A run of round 0 and round 1, made once for the module; tests that change it change a
    copy."""
    out = tmp_path_factory.mktemp("improve-world-model") / "run"
    return out, improve(out, rounds=1)


def test_a_run_does_each_piece_of_work_once(one_round):
    _, ran = one_round
    validation = [1000, 1001]
    expected = [("de", "simulator", s) for s in (*validation, 20000, 20001)]
    expected += [("cem", "simulator", s) for s in validation]  # the baseline's line
    expected += [("de", "world-model", s) for s in (*validation, 21000, 21001, *validation)]
    assert sorted(ran["episodes"]) == sorted(expected)
    assert ran["random"] == [30000]  # round 0's random episode
    assert ran["agent"] == []  # none unless asked
    assert ran["trained"] == [0, 1]


def test_resuming_after_a_stopped_round_repeats_nothing(one_round, tmp_path):
    out = Path(shutil.copytree(one_round[0], tmp_path / "run"))  # file times copied too
    before = work(out)

    grown = improve(out, rounds=2)  # --rounds grows: round 2 only
    model = ("de", "world-model")
    assert sorted(grown["episodes"]) == [(*model, s) for s in (1000, 1001, 22000, 22001)]
    assert grown["trained"] == [2] and grown["random"] == []
    after = work(out)
    assert {k: after[k] for k in before} == before  # rounds 0 and 1 untouched
    whole = json.loads((out / "rounds.json").read_text())["rounds"]

    # Stopped while round 2 collected its data: one data episode, the model, its validation
    # and k-step errors are not there yet
    round_2 = out / "round-02"
    for path in (round_2 / "data" / "seed-22001.npz", round_2 / "kstep.json"):
        path.unlink()
    for path in (*round_2.glob("world-model.*"), *(round_2 / "validation").iterdir()):
        path.unlink()
    resumed = improve(out, rounds=2)
    assert sorted(resumed["episodes"]) == [(*model, s) for s in (1000, 1001, 22001)]
    assert resumed["trained"] == [2]
    assert {k: v for k, v in work(out).items() if not k.startswith("round-02")} == {
        k: v for k, v in after.items() if not k.startswith("round-02")
    }
    assert json.loads((out / "rounds.json").read_text())["rounds"] == whole  # as if not stopped

    again = improve(out, rounds=2)  # finished: nothing runs
    assert again["episodes"] == [] and again["trained"] == []


def test_the_round_table_and_rounds_json_hold_each_rounds_figures(one_round):
    out, ran = one_round
    summary = json.loads((out / "rounds.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [0, 1]
    assert summary["validation_seeds"] == [1000, 1001]
    assert set(summary["simulator"]) == {"mean", "low", "high", "text"}
    for record in summary["rounds"]:
        assert set(record["k_step_error"]) == {"1", "5", "10", "16"}
        assert record["k_step_error"]["1"] >= 0  # 6-step episodes: k = 10, 16 have no start
        assert set(record["validation"]) == {"mean", "low", "high", "text"}
        assert len(record["validation_returns"]) == 2 and len(record["data_returns"]) == 2
    # 2 episodes of 6 steps and a random one, then 2 more
    assert [r["trained_on"] for r in summary["rounds"]] == [18, 30]
    best = summary["best_round"]
    assert summary["rounds"][best]["validation"]["mean"] == max(
        r["validation"]["mean"] for r in summary["rounds"]
    )
    assert (out / "best.pt").read_bytes() == (
        out / f"round-0{best}" / "world-model.pt"
    ).read_bytes()
    assert (out / "rounds.png").stat().st_size > 0
    means = [{"round": r, "validation": {"mean": m}} for r, m in enumerate([1.0, 3.0, -2.0])]
    assert script.best_round(means) == 1
    header, _, *rows = ran["stdout"].splitlines()
    columns = ("round", "data from", "data return", "trained on", "k=16 error", "validation return")
    assert all(column in header for column in columns), header
    assert [row.split()[0] for row in rows[:2]] == ["0", "1"]
    assert rows[1].split()[4] == "30"  # trained on
    assert rows[1].endswith(summary["rounds"][1]["validation"]["text"])
    assert summary["planner"] == "de"
    for name, key in [("DE", "simulator"), ("CEM", "cem")]:
        line = f"{name} on the simulator, same validation seeds: {summary[key]['text']}"
        assert line in ran["stdout"]


def returns(folder: Path) -> list[float]:
    """The returns of the episodes saved in ``folder``, in seed order."""
    paths = sorted(folder.glob("seed-*.npz"))
    return [load_episode(p, TRANSITION_FIELDS)["return"] for p in paths]


def legend(figure) -> list[str]:
    return sorted(text.get_text() for text in figure.axes[0].get_legend().get_texts())


def test_the_plot_draws_the_rounds_beside_de_and_cem_on_the_simulator(one_round):
    out, _ = one_round
    summary = json.loads((out / "rounds.json").read_text())
    for key, folder in [("simulator", "simulator-validation"), ("cem", "cem-validation")]:
        assert summary[key]["mean"] == pytest.approx(np.mean(returns(out / folder)))
    assert summary["cem"] != summary["simulator"]  # two planners, two runs
    levels = {"de": summary["simulator"], "cem": summary["cem"]}
    figure = script.rounds_figure(summary["rounds"], levels, "de", "reacher")
    assert legend(figure) == ["CEM, simulator", "DE, simulator", "DE, world model"]
    ax = figure.axes[0]
    lines = [line.get_ydata()[0] for line in ax.lines if line.get_label().endswith("simulator")]
    assert lines == [summary["simulator"]["mean"], summary["cem"]["mean"]]
    assert len(ax.patches) == 2  # a band each


def test_the_plots_x_axis_names_millions_on_its_ticks_without_an_offset_over_the_label():
    """A million transitions once drew the axis' "1e6" offset over its label."""
    interval = {"mean": 1.0, "low": 0.5, "high": 1.5}
    rounds = [
        {"round": i, "trained_on": n, "validation": interval} for i, n in enumerate([3e5, 1.4e6])
    ]
    figure = script.rounds_figure(rounds, {"de": interval}, "de", "half-cheetah")
    figure.canvas.draw()
    axis = figure.axes[0].xaxis
    assert axis.get_offset_text().get_text() == ""
    assert any(tick.get_text().endswith("M") for tick in axis.get_ticklabels())


def test_a_folder_written_before_the_planner_flag_resumes_as_de(tmp_path, refusal):
    out = tmp_path / "run"
    script.Run(parse_args(script.ImproveArgs, "", [*TINY, "--out", str(out)]))
    config = json.loads((out / "config.json").read_text())
    assert config.pop("planner") == "de" and config.pop("random_episodes") == 1
    config["random_episodes"] = 0  # the flag came later than --planner
    (out / "config.json").write_text(json.dumps(config))  # as written before --planner
    older = [*TINY[:6], "--random-episodes", "0", *TINY[8:]]
    script.Run(parse_args(script.ImproveArgs, "", [*older, "--out", str(out)]))  # resumes
    line = refusal("improve_world_model.py", *older, "--out", str(out), "--planner", "cem")
    assert "other settings (planner)" in line


def test_a_folder_written_before_random_episodes_resumes_without_them(tmp_path, refusal):
    out = tmp_path / "run"
    script.Run(parse_args(script.ImproveArgs, "", [*TINY, "--out", str(out)]))
    config = json.loads((out / "config.json").read_text())
    del config["random_episodes"]
    (out / "config.json").write_text(json.dumps(config))  # as written before the flag
    older = [*TINY[:6], "--random-episodes", "0", *TINY[8:]]
    script.Run(parse_args(script.ImproveArgs, "", [*older, "--out", str(out)]))  # resumes
    line = refusal("improve_world_model.py", *TINY, "--out", str(out))  # asks for 1: refused
    assert "other settings (random_episodes)" in line


def test_round_0_learns_from_an_agents_episodes_on_its_mean_action_and_with_noise(tmp_path):
    out = tmp_path / "run"
    flags = (*TINY, "--agent-episodes", "2", "--agent-noise", "0.3")
    ran = improve(out, rounds=0, flags=flags)
    assert ran["agent"] == [(40000, 0.0), (40001, 0.0), (50000, 0.3), (50001, 0.3)]
    agent = SAC.load(CHECKPOINTS / "agents" / "reacher-sac.zip", device="cpu")  # its default
    scaling = ActionScaling(*(getattr(make_env("reacher").action_space, b) for b in BOUNDS))
    for seed, noisy in [(40000, False), (50000, True)]:
        episode = load_episode(out / "round-00" / "agent" / f"seed-{seed}.npz", TRANSITION_FIELDS)
        mean, _ = agent.predict(episode["observations"], deterministic=True)
        expected = scaling.to_normalised(mean).astype(np.float32)
        assert np.allclose(episode["actions"], expected, atol=1e-6) != noisy
        assert np.all(np.abs(episode["actions"]) <= 1)
    summary = json.loads((out / "rounds.json").read_text())["rounds"][0]
    assert summary["agent_episodes"] == 4
    assert summary["agent"] == str(CHECKPOINTS / "agents" / "reacher-sac.zip")
    assert summary["trained_on"] == 18 + 4 * 6  # DE's, the random one and the agent's
    assert "simulator+random+agent" in ran["stdout"]
    again = improve(out, rounds=0, flags=flags)  # finished: nothing runs again
    assert again["agent"] == [] and again["trained"] == []


def test_a_folder_written_before_agent_episodes_resumes_without_them(tmp_path, refusal):
    out = tmp_path / "run"
    script.Run(parse_args(script.ImproveArgs, "", [*TINY, "--out", str(out)]))
    config = json.loads((out / "config.json").read_text())
    for flag in ("agent_episodes", "agent", "agent_noise"):
        del config[flag]
    (out / "config.json").write_text(json.dumps(config))  # as written before the flags
    script.Run(parse_args(script.ImproveArgs, "", [*TINY, "--out", str(out)]))  # resumes
    line = refusal("improve_world_model.py", *TINY, "--out", str(out), "--agent-episodes", "1")
    assert "other settings (agent_episodes)" in line


def test_walker2d_learns_and_plans_with_cem(tmp_path):
    out = tmp_path / "walker"
    ran = improve(out, rounds=0, flags=WALKER)
    validation = [1000, 1001]
    expected = [("cem", "simulator", s) for s in (*validation, 20000, 20001)]
    expected += [("cem", "world-model", s) for s in validation]
    assert sorted(ran["episodes"]) == sorted(expected)  # CEM on the simulator once
    assert ran["trained"] == [0]
    summary = json.loads((out / "rounds.json").read_text())
    assert summary["planner"] == "cem" and summary["cem"] == summary["simulator"]
    assert not (out / "cem-validation").exists()
    assert ran["stdout"].count("on the simulator, same validation seeds") == 1
    assert f"CEM on the simulator, same validation seeds: {summary['cem']['text']}" in ran["stdout"]
    levels = {"cem": summary["simulator"]}
    figure = script.rounds_figure(summary["rounds"], levels, "cem", "walker2d")
    assert legend(figure) == ["CEM, simulator", "CEM, world model"]

    # its model plans walker2d with the task's termination and its reward computed from obs[8]
    env = make_env("walker2d")
    setup = PlanningSetup(
        *("walker2d", "cem", 8, 1),
        reward="world-model",
        world_model=str(out / "best.pt"),
        world_model_reward="computed",
    )
    objective = setup.resolve(env).objective
    assert isinstance(objective, WorldModelObjective) and objective.model.task == "walker2d"
    assert isinstance(objective.terminated_fn, ObservedHealth)
    assert isinstance(objective.reward_fn, ObservedLocomotionReward)
    assert objective.reward_fn.velocity_index == 8
    action, _ = setup.policy(env).predict(env.reset(seed=0)[0])
    assert env.action_space.contains(action)


def test_the_k_step_error_is_the_models_on_its_own_planners_validation_episodes(one_round):
    out, _ = one_round
    rounds = json.loads((out / "rounds.json").read_text())["rounds"]
    load = lambda folder: script.transitions(  # noqa: E731
        [load_episode(p, TRANSITION_FIELDS) for p in sorted(folder.glob("seed-*.npz"))]
    )
    scale = np.maximum(load(out / "round-00" / "data")["observations"].std(axis=0), 1e-6)
    for index, record in enumerate(rounds):
        model = WorldModel.load(out / f"round-0{index}" / "world-model.pt")
        for key, folder in [
            ("k_step_error", out / f"round-0{index}" / "validation"),
            ("k_step_error_simulator_states", out / "simulator-validation"),
        ]:
            data = load(folder)
            fields = ("observations", "actions", "next_observations", "episode_index")
            errors = k_step_errors(model, *(data[f] for f in fields), ks=(1, 5), obs_scale=scale)
            assert [record[key][str(k)] for k in (1, 5)] == pytest.approx(list(errors.values()))


def test_a_folder_of_a_run_with_other_flags_is_refused(tmp_path, refusal):
    out = tmp_path / "run"
    script.Run(parse_args(script.ImproveArgs, "", [*TINY, "--out", str(out)]))  # claims it
    line = refusal("improve_world_model.py", *TINY, "--out", str(out), "--episodes", "3")
    assert "other settings (episodes)" in line and "--out" in line
    # the flags a resumed run may change are accepted
    script.Run(parse_args(script.ImproveArgs, "", [*TINY, "--out", str(out), "--rounds", "5"]))
    (tmp_path / "other" / "file.txt").parent.mkdir()
    (tmp_path / "other" / "file.txt").write_text("not a run")
    line = refusal("improve_world_model.py", *TINY, "--out", str(tmp_path / "other"))
    assert "no config.json of a run" in line


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--env", "nowhere"], ["--env", "'nowhere'"]),
        (["--episodes", "0"], ["--episodes", "got 0"]),
        (["--epochs", "0"], ["--epochs must be >= 1", "anew"]),
        (["--rollout-learning-rate", "0"], ["rollout_learning_rate must be > 0"]),
        (["--validation-seeds", "5-12"], ["test seeds"]),
        (["--validation-seeds", "1000-x"], ["FIRST-LAST"]),
        (["--env", "inverted-double-pendulum"], ["inverted-double-pendulum", "observation"]),
        (["--env", "unicycle-goal"], ["a world model plans on", "walker2d"]),
        (["--env", "swimmer"], ["swimmer ships no prior", "--prior PATH", "--planner cem"]),
        (["--planner", "cem", "--prior", "x.pt"], ["--prior", "--planner de"]),
        (["--planner", "mppi"], ["--planner", "'mppi'"]),
        (["--prior", "/nonexistent.pt"], ["/nonexistent.pt", "--prior"]),
        (["--agent-episodes", "1", "--agent", "/none.zip"], ["/none.zip", "--agent PATH"]),
        (["--agent-episodes", "-1"], ["--agent-episodes"]),
    ],
)
def test_bad_input_is_one_line(args, mentions, refusal, tmp_path):
    line = refusal("improve_world_model.py", "--out", str(tmp_path / "run"), *args)
    for mention in mentions:
        assert mention in line
    assert not (tmp_path / "run").exists()  # refused before any work
