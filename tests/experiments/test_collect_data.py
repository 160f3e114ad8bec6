"""collect_data.py on tiny budgets (random, SAC and CEM sources) and train_prior.py on its files."""

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from envs.datasets import action_chunks
from envs.mujoco_tasks import MujocoObjective, make_task
from envs.registry import get_task, make_env
from experiments.harness.cli import UsageError, parse_args

REPO = Path(__file__).resolve().parents[2]
H, STEPS, EPISODES = 8, 20, 2
TRANSITION_KEYS = {
    "observations",
    "actions",
    "rewards",
    "next_observations",
    "terminated",
    "episode_index",
}
CHUNK_KEYS = {"chunk_actions", "chunk_observations", "chunk_start"}
SOURCES = {
    "random": [],
    "sac": ["--deterministic"],
    "cem": ["--population", "8", "--iterations", "1"],
}


@pytest.fixture(scope="module")
def scripts():
    """The collect_data and train_prior script modules."""
    return importlib.import_module("experiments.collect_data"), importlib.import_module(
        "experiments.train_prior"
    )


def collect(scripts, out: Path, source: str, *extra: str) -> dict:
    """Run collect_data.main on reacher (2 episodes of 20 steps) and load what it wrote."""
    collect_data, _ = scripts
    argv = ["--env", "reacher", "--source", source, "--episodes", str(EPISODES)]
    argv += ["--max-steps", str(STEPS), "--horizon", str(H), "--out", str(out), *extra]
    path = collect_data.main(parse_args(collect_data.CollectArgs, "", argv))
    with np.load(path) as archive:
        data = dict(archive)
    data["metadata"] = json.loads(str(data["metadata"]))
    return data


@pytest.fixture(scope="module")
def collected(scripts, tmp_path_factory):
    """source -> (npz path, its arrays with the metadata parsed)."""
    folder = tmp_path_factory.mktemp("data")
    return {
        source: (folder / f"{source}.npz", collect(scripts, folder / f"{source}.npz", source, *x))
        for source, x in SOURCES.items()
    }


@pytest.mark.parametrize("source", list(SOURCES))
def test_file_holds_the_documented_arrays(collected, source):
    _, data = collected[source]
    assert TRANSITION_KEYS | CHUNK_KEYS | {"metadata"} == set(data)
    m, k = EPISODES * STEPS, EPISODES * (STEPS - H + 1)  # reacher never terminates early
    assert data["observations"].shape == data["next_observations"].shape == (m, 10)
    assert data["actions"].shape == (m, 2)
    assert data["rewards"].shape == data["terminated"].shape == data["episode_index"].shape == (m,)
    assert data["chunk_actions"].shape == (k, H, 2)
    assert data["chunk_observations"].shape == (k, 10)
    assert np.abs(data["actions"]).max() <= 1.0 and np.abs(data["actions"]).max() > 0.1
    np.testing.assert_array_equal(data["episode_index"], np.repeat([0, 1], STEPS))
    # within an episode, each step's next observation is the following step's observation
    np.testing.assert_array_equal(
        data["next_observations"][: STEPS - 1], data["observations"][1:STEPS]
    )
    meta = data["metadata"]
    assert (meta["env"], meta["source"], meta["horizon"], meta["episodes"]) == (
        "reacher",
        source,
        H,
        2,
    )
    assert meta["sizes"] == {"transitions": m, "chunks": k, "obs_dim": 10, "action_dim": 2}
    sums = [data["rewards"][data["episode_index"] == e].sum() for e in range(EPISODES)]
    np.testing.assert_allclose(meta["returns"], sums, rtol=0, atol=1e-12)
    assert meta["mean_return"] == pytest.approx(np.mean(sums))


@pytest.mark.parametrize("source", list(SOURCES))
def test_chunks_are_windows_of_the_stored_actions_inside_one_episode(collected, source):
    _, data = collected[source]
    starts = data["chunk_start"]
    rows = starts[:, None] + np.arange(H)
    np.testing.assert_array_equal(data["chunk_actions"], data["actions"][rows])
    np.testing.assert_array_equal(data["chunk_observations"], data["observations"][starts])
    episode = data["episode_index"][rows]
    assert (episode == episode[:, :1]).all()


def test_stored_actions_replay_the_episode_exactly(collected):
    _, data = collected["sac"]
    env = make_env("reacher")
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    env.reset(seed=0)  # episode 0 of seed 0
    rewards = [env.step(low + (a + 1.0) / 2.0 * (high - low))[1] for a in data["actions"][:STEPS]]
    np.testing.assert_array_equal(rewards, data["rewards"][:STEPS])


@pytest.fixture(scope="module")
def reacher_agent():
    from stable_baselines3 import SAC

    return SAC.load(REPO / "checkpoints" / "agents" / "reacher-sac.zip", device="cpu")


def test_agent_source_stores_the_agents_normalised_actions(collected, reacher_agent):
    _, data = collected["sac"]
    predicted, _ = reacher_agent.predict(data["observations"], deterministic=True)
    np.testing.assert_allclose(data["actions"], predicted, atol=1e-6)  # reacher bounds: [-1, 1]
    # the trained agent beats smooth random actions by far (measured -4.2 vs -16.6 per episode)
    assert data["metadata"]["mean_return"] > collected["random"][1]["metadata"]["mean_return"] + 5


def test_action_noise_is_gaussian_in_normalised_units(scripts, tmp_path, reacher_agent):
    noisy = collect(
        scripts, tmp_path / "noisy.npz", "sac", "--deterministic", "--action-noise", "0.3"
    )
    predicted, _ = reacher_agent.predict(noisy["observations"], deterministic=True)
    assert np.abs(noisy["actions"]).max() <= 1.0
    inside = np.abs(noisy["actions"]) < 1.0  # clipped entries do not show the whole noise
    noise = (noisy["actions"] - predicted)[inside]
    assert inside.sum() > 40 and 0.2 < noise.std() < 0.4


def test_same_seed_same_data_other_seed_other_data(scripts, collected, tmp_path):
    _, first = collected["random"]
    again = collect(scripts, tmp_path / "again.npz", "random")
    other = collect(scripts, tmp_path / "other.npz", "random", "--seed", "1")
    for key in TRANSITION_KEYS | CHUNK_KEYS:
        np.testing.assert_array_equal(again[key], first[key])
    assert not np.array_equal(other["actions"], first["actions"])


def test_action_chunks_stride_and_padding():
    actions = np.arange(7.0)[:, None]  # episodes of 5 and 2 steps
    episode = np.array([0, 0, 0, 0, 0, 1, 1])
    chunks, starts = action_chunks(actions, episode, 3, 1, False)
    np.testing.assert_array_equal(starts, [0, 1, 2])  # the 2-step episode is too short
    chunks, starts = action_chunks(actions, episode, 3, 2, False)
    np.testing.assert_array_equal(starts, [0, 2])
    chunks, starts = action_chunks(actions, episode, 3, 1, True)
    np.testing.assert_array_equal(starts, [0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(chunks[3, :, 0], [3, 4, 4])
    np.testing.assert_array_equal(chunks[5, :, 0], [5, 6, 6])
    np.testing.assert_array_equal(chunks[6, :, 0], [6, 6, 6])


def test_command_line_prints_a_summary(tmp_path, run_script_here, capsys):
    out = tmp_path / "cli.npz"
    run_script_here(
        *("collect_data.py", "--env", "reacher", "--source", "random", "--episodes", "1"),
        *("--max-steps", "20", "--out", str(out)),
    )
    assert "1 episodes, 20 transitions, 5 chunks of H=16" in capsys.readouterr().out
    assert out.exists() and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("condition", [False, True])
def test_train_prior_on_collected_chunks(scripts, collected, tmp_path, condition):
    from planner.prior import DiffusionPrior

    _, train_prior = scripts
    path, _ = collected["sac"]
    argv = ["--env", "reacher", "--data", str(path), "--denoiser", "mlp", "--steps", "20"]
    argv += ["--batch-size", "16", "--out", str(tmp_path / "prior.pt")]
    argv += ["--condition"] if condition else []
    out = train_prior.main(parse_args(train_prior.TrainArgs, "", argv))
    prior = DiffusionPrior.load(out, task="reacher")
    assert prior.task == "reacher"
    assert tuple(prior.latent_shape) == (H, 2)
    assert prior.cond_dim == (10 if condition else 0)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["dataset_shape"] == [EPISODES * (STEPS - H + 1), H, 2]
    assert record["task"] == "reacher"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kind", "state"], "--kind action"),
        (["--horizon", "16"], "H=8"),
        (["--env", "hopper"], "collected on reacher"),
    ],
)
def test_train_prior_refuses_data_it_cannot_use(scripts, collected, extra, message):
    _, train_prior = scripts
    path, _ = collected["random"]
    argv = ["--env", "reacher", "--data", str(path), "--steps", "1", *extra]
    with pytest.raises(UsageError, match=message):
        train_prior.make_dataset(parse_args(train_prior.TrainArgs, "", argv))


def test_a_world_model_planner_rolls_out_by_the_tasks_propagation_unless_told(scripts):
    collect_data, _ = scripts
    env = make_env("hopper")
    for extra, expected in [((), "tsinf"), (("--propagation", "mean"), "mean")]:
        argv = ["--env", "hopper", "--source", "cem", "--reward", "world-model", *extra]
        args = parse_args(collect_data.CollectArgs, "", argv)
        source, info = collect_data.make_source(
            args, get_task("hopper"), env, np.random.default_rng(0), 0
        )
        assert info["propagation"] == expected
        assert source.planner.objective.propagation == expected


def test_a_planner_over_a_conditioned_prior_collects(scripts, tmp_path):
    # walker2d's prior is conditioned on the observation, which the planner must be handed
    collect_data, _ = scripts
    argv = ["--env", "walker2d", "--source", "de", "--episodes", "1", "--max-steps", "2"]
    path = collect_data.main(
        parse_args(collect_data.CollectArgs, "", [*argv, "--out", str(tmp_path / "w.npz")])
    )
    with np.load(path) as archive:
        assert archive["actions"].shape == (2, 6)


def load_candidates(path: Path) -> dict:
    """The arrays of ``--candidates``' file beside ``path``, the metadata parsed."""
    with np.load(path.with_suffix(".candidates.npz")) as archive:
        data = dict(archive)
    data["metadata"] = json.loads(str(data["metadata"]))
    return data


def test_candidates_are_replayed_from_the_state_they_were_scored_at(scripts, collected, tmp_path):
    out = tmp_path / "cem.npz"
    episode = collect(scripts, out, "cem", *SOURCES["cem"], "--candidates", "3")
    candidates = load_candidates(out)
    episodes, steps = candidates["candidate_episode"], candidates["candidate_step"]
    # every step of both episodes scored a population of 8, of which 3 were kept (CEM also
    # scores smaller ones: a population smaller than 3 is kept whole)
    for index in range(EPISODES):
        counts = np.bincount(steps[episodes == index], minlength=STEPS)
        assert len(counts) == STEPS and counts.min() >= 3, counts
    starts = np.flatnonzero(np.diff(candidates["episode_index"], prepend=-1))
    assert len(starts) == len(episodes) == candidates["metadata"]["sizes"]["candidates"]
    # reacher's fingertip, read at the restored state, is up to a substep's motion off what the
    # env observed at the end of its last step (see MujocoTask.observations' tests)
    scored_at = episode["observations"][episodes * STEPS + steps]
    np.testing.assert_allclose(candidates["observations"][starts], scored_at, rtol=0, atol=1e-5)
    # each is an episode of the planner's H steps whose observations chain, a row an env step
    horizon = episode["metadata"]["planner_budget"]["horizon"]
    assert set(np.bincount(candidates["episode_index"])) == {horizon}
    inside = np.flatnonzero(np.diff(candidates["episode_index"]) == 0)
    np.testing.assert_array_equal(
        candidates["next_observations"][inside], candidates["observations"][inside + 1]
    )
    # recording them leaves the planner's episode as it was
    _, plain = collected["cem"]
    for key in TRANSITION_KEYS | CHUNK_KEYS:
        np.testing.assert_array_equal(episode[key], plain[key])


def test_a_replayed_candidate_earns_what_the_objective_scored(scripts):
    from experiments.harness.collection import CandidateRecorder

    task = make_task("half-cheetah")
    objective = MujocoObjective(task, threads=1)
    env = make_env("half-cheetah")
    env.reset(seed=3)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(6, 10, task.action_dim))
    state = task.snapshot(env)
    recorder = CandidateRecorder(objective, make_env("half-cheetah"), 6, np.random.default_rng(1))
    assert not recorder.plans_from_observation
    scores = recorder(state, actions)
    np.testing.assert_array_equal(scores, objective(state, actions))
    returns = sorted(replay["rewards"].sum() for replay in recorder.episodes)
    np.testing.assert_allclose(returns, np.sort(scores), rtol=1e-9, atol=1e-9)
    assert recorder.steps == [0] * 6


def test_candidates_need_a_planner_on_a_world_model_task(refusal):
    line = refusal("collect_data.py", "--env", "reacher", "--source", "random", "--candidates", "2")
    assert "--candidates" in line and "planner source" in line
    line = refusal(
        "collect_data.py", "--env", "unicycle-goal", "--source", "de", "--candidates", "1"
    )
    assert "--candidates" in line and "a world model plans on" in line


def test_a_world_models_candidates_are_replayed_from_the_envs_state(scripts, tmp_path):
    collect_data, _ = scripts
    out = tmp_path / "hopper.npz"
    argv = ["--env", "hopper", "--source", "cem", "--reward", "world-model", "--episodes", "1"]
    argv += ["--max-steps", "3", "--population", "8", "--iterations", "1", "--candidates", "2"]
    collect_data.main(parse_args(collect_data.CollectArgs, "", [*argv, "--out", str(out)]))
    with np.load(out) as archive:
        observations = archive["observations"]
    candidates = load_candidates(out)
    starts = np.flatnonzero(np.diff(candidates["episode_index"], prepend=-1))
    assert set(candidates["candidate_step"]) == {0, 1, 2}
    np.testing.assert_array_equal(
        candidates["observations"][starts], observations[candidates["candidate_step"]]
    )


def test_a_recorder_of_a_world_model_needs_the_env_it_acts_in():
    from experiments.harness.collection import CandidateRecorder

    class FromObservation:
        plans_from_observation = True

    with pytest.raises(ValueError, match="acting"):
        CandidateRecorder(FromObservation(), make_env("hopper"), 2, np.random.default_rng(0))
