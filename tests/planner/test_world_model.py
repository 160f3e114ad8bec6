"""The world model: training, batched rollouts, propagations (mean, TS-1, TS-inf particles), shape
checks, diverging members, checkpoints."""

import math
import threading

import numpy as np
import pytest
import torch

from planner import threads
from planner.checkpoint import CheckpointError, save_checkpoint
from planner.normalizer import Normalizer
from planner.planning import Budget
from planner.threads import use_planning_threads
from planner.world_model import (
    THREAD_TRIALS,
    GaussianEnsemble,
    WorldModel,
    WorldModelConfig,
    WorldModelObjective,
    all_finite,
    k_step_errors,
    k_step_errors_by_dimension,
    network_inputs,
)
from planner.world_model_training import WorldModelTraining, train_world_model
from policies.planners import build_planner

OBS, ACT = 3, 2
B = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]])
"""The toy system: next = obs + 0.1 * B @ action, reward = -|next|^2."""


def toy_transitions(m: int, seed: int = 0):
    """M independent transitions of the toy system, each from a random observation."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(m, OBS))
    act = rng.uniform(-1, 1, size=(m, ACT))
    nxt = obs + 0.1 * act @ B.T
    return obs, act, -np.square(nxt).sum(axis=1), nxt


def toy_episodes(lengths: tuple[int, ...], seed: int = 0):
    """Episodes of the toy system one after another, of the given lengths: within one, each row's
    next observation is the next row's observation."""
    rng = np.random.default_rng(seed)
    observations, actions, next_observations = [], [], []
    for length in lengths:
        x = rng.normal(size=OBS)
        for _ in range(length):
            action = rng.uniform(-1, 1, size=ACT)
            observations.append(x)
            actions.append(action)
            x = x + 0.1 * B @ action
            next_observations.append(x)
    nxt = np.array(next_observations)
    return np.array(observations), np.array(actions), -np.square(nxt).sum(axis=1), nxt


@pytest.fixture(scope="module")
def trained():
    config = WorldModelConfig(OBS, ACT, ensemble_size=3, hidden=32, depth=2)
    training = WorldModelTraining(epochs=30, batch_size=64, learning_rate=3e-3, patience=30)
    return train_world_model(*toy_transitions(768), config, training, task="toy", progress=False)


def test_training_lowers_the_validation_error(trained):
    model, history = trained
    assert history["best_val_mse"] < 0.2 * history["initial_val_mse"]
    assert len(history["val_mse"]) == 30 and model.task == "toy"


def test_training_is_seeded():
    config = WorldModelConfig(OBS, ACT, ensemble_size=2, hidden=8, depth=1)
    training = WorldModelTraining(epochs=2, rollout_steps=3, rollout_epochs=2)
    runs = [
        train_world_model(*toy_episodes((64, 64)), config, training, progress=False)[1]
        for _ in range(2)
    ]
    assert runs[0]["val_mse"] == runs[1]["val_mse"]
    assert runs[0]["rollout"]["val_loss"] == runs[1]["rollout"]["val_loss"]


def test_the_rollout_stage_lowers_the_held_out_rollout_loss():
    config = WorldModelConfig(OBS, ACT, ensemble_size=2, hidden=32, depth=2)
    training = WorldModelTraining(
        epochs=3, batch_size=32, rollout_steps=4, rollout_epochs=15, rollout_learning_rate=1e-3
    )
    model, history = train_world_model(*toy_episodes((40,) * 10), config, training, progress=False)
    rollout = history["rollout"]
    assert rollout["best_val_loss"] < 0.5 * rollout["initial_val_loss"]
    assert rollout["best_epoch"] > 0 and not model.network.training


def test_rollout_windows_stay_inside_one_episode_and_held_out_episodes_are_whole():
    config = WorldModelConfig(OBS, ACT, ensemble_size=2, hidden=8, depth=1)
    training = WorldModelTraining(epochs=1, rollout_steps=8, rollout_epochs=1)
    _, history = train_world_model(*toy_episodes((20, 20, 15)), config, training, progress=False)
    # 13 + 13 + 8 windows of 8 steps inside the episodes; a window across two would add more
    windows = history["rollout"]["windows"]
    assert sum(windows) == 34 and windows[1] in (13, 8)


def test_training_continues_from_a_start_model_and_leaves_it_as_it_was():
    config = WorldModelConfig(OBS, ACT, ensemble_size=2, hidden=16, depth=1)
    data = toy_episodes((30,) * 6)
    start, _ = train_world_model(*data, config, WorldModelTraining(epochs=2), progress=False)
    weights = {k: v.clone() for k, v in start.network.state_dict().items()}
    # no first stage: the start's weights, normalisers and validation error, untouched
    copied, history = train_world_model(
        *data, config, WorldModelTraining(epochs=0), progress=False, start=start
    )
    observation = torch.as_tensor(data[0][:5], dtype=torch.float32)
    action = torch.as_tensor(data[1][:5], dtype=torch.float32)
    assert torch.equal(copied.step(observation, action)[0], start.step(observation, action)[0])
    assert history["epoch"] == [] and history["best_epoch"] == 0
    assert not history["stopped_early"]
    # only the rollout stage: the copy moves, the start does not
    training = WorldModelTraining(
        epochs=0, rollout_steps=4, rollout_epochs=3, rollout_learning_rate=1e-3
    )
    tuned, history = train_world_model(*data, config, training, progress=False, start=start)
    rollout = history["rollout"]
    assert rollout["best_val_loss"] < rollout["initial_val_loss"]
    assert not torch.equal(tuned.step(observation, action)[0], start.step(observation, action)[0])
    assert all(torch.equal(v, weights[k]) for k, v in start.network.state_dict().items())
    assert tuned.input_normalizer.center.equal(start.input_normalizer.center)


def test_the_first_members_of_a_model_predict_as_those_members_did(trained):
    model, _ = trained
    fewer = model.first_members(2)
    observations = torch.as_tensor(toy_transitions(6, seed=3)[0], dtype=torch.float32)
    actions = torch.zeros(6, ACT)
    assert fewer.config.ensemble_size == 2 and fewer.task == model.task
    torch.testing.assert_close(
        fewer.step(observations, actions)[0], model.step(observations, actions)[0][:2]
    )
    for count in (0, 4):
        with pytest.raises(ValueError, match="count must be"):
            model.first_members(count)


def test_a_start_model_of_another_shape_and_zero_epochs_without_one_are_refused():
    config = WorldModelConfig(OBS, ACT, ensemble_size=2, hidden=16, depth=1)
    data = toy_episodes((30, 30))
    start, _ = train_world_model(*data, config, WorldModelTraining(epochs=1), progress=False)
    wider = WorldModelConfig(OBS, ACT, ensemble_size=2, hidden=32, depth=1)
    with pytest.raises(ValueError, match="start model's shape"):
        train_world_model(*data, wider, WorldModelTraining(epochs=1), progress=False, start=start)
    with pytest.raises(ValueError, match="epochs = 0 trains nothing"):
        train_world_model(*data, config, WorldModelTraining(epochs=0), progress=False)


@pytest.mark.parametrize("lengths", [(60,), (60, 7)])
def test_the_rollout_stage_refuses_data_without_two_episodes_of_k_steps(lengths):
    config = WorldModelConfig(OBS, ACT, ensemble_size=2, hidden=8, depth=1)
    training = WorldModelTraining(epochs=1, rollout_steps=8)
    with pytest.raises(ValueError, match="two episodes of >= 8 transitions"):
        train_world_model(*toy_episodes(lengths), config, training, progress=False)


@pytest.mark.parametrize(
    "options", [{"rollout_steps": 0}, {"rollout_patience": 0}, {"rollout_learning_rate": 0.0}]
)
def test_bad_rollout_settings_are_refused(options):
    with pytest.raises(ValueError, match="rollout_"):
        WorldModelTraining(**options)


def test_a_batched_rollout_equals_a_step_by_step_loop(trained):
    model, _ = trained
    rng = np.random.default_rng(1)
    observation, actions = rng.normal(size=OBS), rng.uniform(-1, 1, size=(6, 5, ACT))
    batched = WorldModelObjective(model)(observation, actions)
    for i in range(len(actions)):
        obs, total = torch.tensor(observation, dtype=torch.float32)[None], 0.0
        for t in range(actions.shape[1]):
            act = torch.tensor(actions[i, t], dtype=torch.float32)[None]
            next_all, reward_all = model.step(obs, act)
            obs, total = next_all.mean(dim=0), total + float(reward_all.mean())
        assert batched[i] == pytest.approx(total, rel=1e-5, abs=1e-5)


def test_no_reward_after_termination(trained):
    model, _ = trained
    actions = np.random.default_rng(2).uniform(-1, 1, size=(4, 6, ACT))
    free = WorldModelObjective(model)
    ends_at_once = WorldModelObjective(model, terminated_fn=lambda obs: np.ones(len(obs), bool))
    one_step = free(np.zeros(OBS), actions[:, :1])
    np.testing.assert_allclose(ends_at_once(np.zeros(OBS), actions), one_step, rtol=1e-6)


def test_termination_cost_is_charged_once_to_candidates_that_end(trained):
    model, _ = trained
    actions = np.random.default_rng(3).uniform(-1, 1, size=(4, 6, ACT))
    recorder = StepRecorder(len(actions))
    WorldModelObjective(model, recorder)(np.zeros(OBS), actions)
    second = recorder.steps[1][[0, 2]]  # where candidates 0 and 2 are after their second step

    def ends_rows_at_step_two(obs):
        return (obs[:, None] == second).all(axis=-1).any(axis=-1)

    ends = np.array([True, False, True, False])
    bare = WorldModelObjective(model, ends_rows_at_step_two)(np.zeros(OBS), actions)
    charged = WorldModelObjective(model, ends_rows_at_step_two, termination_cost=50.0)
    np.testing.assert_allclose(charged(np.zeros(OBS), actions), bare - 50.0 * ends, rtol=1e-6)
    free = WorldModelObjective(model)(np.zeros(OBS), actions)
    assert (bare[ends] != free[ends]).all() and (bare[~ends] == free[~ends]).all()


@pytest.mark.parametrize(
    ("observation", "actions", "message"),
    [
        (np.zeros(OBS + 1), np.zeros((2, 4, ACT)), "observation of shape"),
        (np.zeros((1, OBS)), np.zeros((2, 4, ACT)), "observation of shape"),
        (np.full(OBS, np.nan), np.zeros((2, 4, ACT)), "finite observation"),
        (np.zeros(OBS), np.zeros((2, 4, ACT + 1)), r"\(N, H, 2\)"),
        (np.zeros(OBS), np.zeros((4, ACT)), r"\(N, H, 2\)"),
        (np.zeros(OBS), np.full((2, 4, ACT), np.nan), "finite"),
    ],
)
def test_bad_shapes_are_refused_with_clear_messages(trained, observation, actions, message):
    with pytest.raises(ValueError, match=message):
        WorldModelObjective(trained[0])(observation, actions)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"propagation": "ts9"}, r"propagation must be one of \('mean', 'ts1', 'tsinf'\)"),
        ({"disagreement_penalty": -1.0}, "disagreement_penalty"),
        ({"propagation": "tsinf", "particles": 0}, "particles must be an int >= 1"),
        ({"propagation": "ts1", "particles": -2}, "particles must be an int >= 1"),
        ({"propagation": "ts1", "particles": True}, "particles must be an int >= 1"),
        ({"propagation": "tsinf", "particles": 2.5}, "particles must be an int >= 1"),
        ({"particles": 4}, "particles=4 needs a sampling propagation.*'ts1' or 'tsinf'"),
        ({"propagation": "tsinf", "disagreement_penalty": 1.0}, "every member's prediction"),
        ({"pessimism": 1.0}, r"propagation 'mean' rolls one.*'tsinf' or 'ts1'"),
        ({"propagation": "tsinf", "pessimism": -0.5}, "finite and >= 0"),
        ({"propagation": "ts1", "pessimism": math.nan}, "finite and >= 0"),
    ],
)
def test_bad_options_are_refused(trained, options, message):
    with pytest.raises(ValueError, match=message):
        WorldModelObjective(trained[0], **options)


def with_nan_member(model: WorldModel) -> WorldModel:
    """A copy of ``model`` whose member 0 predicts NaN everywhere."""
    state = {k: v.clone() for k, v in model.network.state_dict().items()}
    state["head.weight"][0] = math.nan
    broken = WorldModel(model.config, model.input_normalizer, model.target_normalizer)
    broken.network.load_state_dict(state)
    return broken


def test_all_finite_is_false_for_any_nan_or_infinity_and_for_a_sum_that_overflows():
    assert all_finite(torch.ones(320, 18))
    for bad in ([math.nan], [math.inf], [-math.inf], [math.inf, -math.inf]):
        values = torch.ones(320, 18)
        values[7, 3 : 3 + len(bad)] = torch.tensor(bad)
        assert not all_finite(values)
    huge = torch.full((4,), 3e38)  # every entry finite, their float32 sum is not
    assert bool(torch.isfinite(huge).all()) and not all_finite(huge)  # the exact path decides


def test_the_mean_ignores_a_nan_member(trained):
    model, _ = trained
    broken = with_nan_member(model)
    actions = np.random.default_rng(3).uniform(-1, 1, size=(8, 4, ACT))
    rewards = WorldModelObjective(broken)(np.zeros(OBS), actions)
    assert np.isfinite(rewards).all()
    # the same as averaging members 1 and 2 only
    obs = torch.zeros(8, OBS)
    total = torch.zeros(8)
    for t in range(4):
        next_all, reward_all = model.step(obs, torch.tensor(actions[:, t], dtype=torch.float32))
        obs, total = next_all[1:].mean(dim=0), total + reward_all[1:].mean(dim=0)
    np.testing.assert_allclose(rewards, total.numpy(), rtol=1e-5, atol=1e-5)


def test_ts1_gives_minus_inf_to_candidates_through_a_nan_member_and_planning_goes_on(trained):
    broken = with_nan_member(trained[0])
    objective = WorldModelObjective(broken, propagation="ts1", seed=0, particles=1)
    actions = np.random.default_rng(4).uniform(-1, 1, size=(64, 2, ACT))
    rewards = objective(np.zeros(OBS), actions)
    assert not np.isnan(rewards).any()
    assert 0 < np.isneginf(rewards).sum() < 64 and objective.num_invalid > 0
    planner = build_planner("cem", objective, Budget(horizon=2, action_dim=ACT, population=32), 0)
    action = planner.plan(np.zeros(OBS)).action
    assert action.shape == (ACT,) and np.isfinite(action).all()


def test_ts1_is_seeded(trained):
    actions = np.random.default_rng(5).uniform(-1, 1, size=(16, 4, ACT))
    runs = [
        WorldModelObjective(trained[0], propagation="ts1", seed=3)(np.zeros(OBS), actions)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*runs)


# Particles: TS-1 and TS-inf


def member_stub(members: int = 5) -> WorldModel:
    """A world model whose member m, whatever it is given, moves observation dimension 0 by
    m + 1 and earns 10**m per step: a trajectory's observations tell which member made each step,
    a candidate's score counts its particles on each member in its decimal digits. Every member
    moves dimension 1 by 1: it counts the steps."""
    config = WorldModelConfig(OBS, ACT, ensemble_size=members, hidden=4, depth=1)
    network = GaussianEnsemble(config)
    with torch.no_grad():
        network.head.weight.zero_()
        network.head.bias.zero_()
        network.head.bias[:, 0, 0] = torch.arange(1.0, members + 1)
        network.head.bias[:, 0, 1] = 1.0
        network.head.bias[:, 0, OBS] = 10.0 ** torch.arange(members)

    def identity(channels: int) -> Normalizer:
        infinity = torch.full((channels,), math.inf)
        return Normalizer(torch.zeros(channels), torch.ones(channels), -infinity, infinity)

    return WorldModel(config, identity(OBS + ACT), identity(OBS + 1), network)


class StepRecorder:
    """A terminated_fn that never ends a row and keeps the observations of its last call: a
    rollout's H steps of ``rows`` rows, stacked step after step."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.calls: list[np.ndarray] = []

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        self.calls.append(observations.copy())
        return np.zeros(len(observations), bool)

    @property
    def steps(self) -> np.ndarray:
        """(H, rows, O): the observation after each step."""
        return self.calls[-1].reshape(-1, self.rows, OBS)

    def members(self) -> np.ndarray:
        """(rows, H): the member that made each row's each step (from dimension 0's moves)."""
        positions = np.concatenate([np.zeros((1, self.rows)), self.steps[:, :, 0]])
        return np.diff(positions, axis=0).T.round().astype(int) - 1


def particle_counts(scores: np.ndarray, particles: int, horizon: int) -> np.ndarray:
    """(N, E): how many of each candidate's particles each member of :func:`member_stub` carried
    over the whole horizon, read from the digits of its score."""
    digits = np.rint(scores * particles / horizon).astype(np.int64)
    return np.stack([(digits // 10**m) % 10 for m in range(5)], axis=1)


def test_tsinf_keeps_one_member_per_particle_for_the_whole_horizon():
    n, horizon, particles = 3, 6, 10
    recorder = StepRecorder(particles * n)
    objective = WorldModelObjective(member_stub(), recorder, "tsinf", seed=1, particles=particles)
    scores = objective(np.zeros(OBS), np.zeros((n, horizon, ACT)))
    members = recorder.members()  # (particles * N, H): row p' * N + i belongs to candidate i
    assert members.shape == (particles * n, horizon)
    assert (members == members[:, :1]).all()  # one member at every step
    for i in range(n):
        used = np.bincount(members[i::n, 0], minlength=5)
        assert used.tolist() == [2] * 5  # P = 2E: every member twice
    np.testing.assert_array_equal(particle_counts(scores, particles, horizon), 2)


@pytest.mark.parametrize("particles", [1, 3, 5, 7, 12])
def test_tsinf_shares_particles_equally_and_draws_the_remainder_seeded(particles):
    horizon, members = 4, 5
    objective = WorldModelObjective(member_stub(), propagation="tsinf", particles=particles)
    actions = np.zeros((4, horizon, ACT))
    calls = [
        particle_counts(objective(np.zeros(OBS), actions), particles, horizon) for _ in range(40)
    ]
    low, high = particles // members, -(-particles // members)
    for counts in calls:
        assert (counts.sum(axis=1) == particles).all()
        assert np.isin(counts, [low, high]).all()
        assert (counts == counts[0]).all()  # a call's candidates share their members
    # across calls every member carries a share of the remainder (p mod E would leave some out)
    assert (np.stack(calls)[:, 0].sum(axis=0) > low * len(calls)).all() or low == high
    again = WorldModelObjective(member_stub(), propagation="tsinf", particles=particles)
    for counts in calls:
        np.testing.assert_array_equal(
            particle_counts(again(np.zeros(OBS), actions), particles, horizon), counts
        )


@pytest.mark.parametrize("particles", [5, 7])
def test_pessimism_scores_the_particles_mean_less_k_standard_deviations(particles):
    # member m earns 10**m per step: a candidate's particle returns are H 10**m, each member
    # carrying as many of them as the digits of its mean score say
    horizon, k = 3, 1.5
    actions = np.zeros((4, horizon, ACT))
    plain, pessimistic = (
        WorldModelObjective(
            member_stub(), propagation="tsinf", particles=particles, seed=3, pessimism=pessimism
        )(np.zeros(OBS), actions)
        for pessimism in (0.0, k)
    )
    counts = particle_counts(plain, particles, horizon)
    returns = horizon * 10.0 ** np.arange(5)
    for i in range(len(actions)):
        particle_returns = np.repeat(returns, counts[i])
        assert plain[i] == pytest.approx(particle_returns.mean(), rel=1e-12)
        expected = particle_returns.mean() - k * particle_returns.std()
        assert pessimistic[i] == pytest.approx(expected, rel=1e-12)
    assert (pessimistic < plain).all()


def test_tsinf_with_a_multiple_of_the_members_scores_as_one_particle_per_member(trained):
    # members predict their mean, so particles on one member are copies: P = kE is P = E
    model, _ = trained
    actions = np.random.default_rng(7).uniform(-1, 1, size=(8, 5, ACT))
    once, thrice = (
        WorldModelObjective(model, propagation="tsinf", particles=k * model.ensemble_size)(
            np.zeros(OBS), actions
        )
        for k in (1, 3)
    )
    np.testing.assert_allclose(thrice, once, rtol=1e-12)
    assert WorldModelObjective(model, propagation="tsinf").particles == model.ensemble_size


def test_tsinf_charges_the_termination_cost_per_particle():
    horizon, cost = 4, 0.5

    def ends(observations):  # member m ends at step ceil(8 / (m + 1))
        return observations[:, 0] >= 8

    objective = WorldModelObjective(member_stub(), ends, "tsinf", termination_cost=cost)
    score = objective(np.zeros(OBS), np.zeros((1, horizon, ACT)))
    steps = [4, 4, 3, 2, 2]  # member 0 never reaches 8 within the horizon; member 1 at step 4
    returns = [k * 10.0**m - cost * (m > 0) for m, k in enumerate(steps)]
    np.testing.assert_allclose(score, [np.mean(returns)])


class LastObservations:
    """A terminal value ``0.5 obs[0] + 100 obs[1]`` that keeps the observations it was given."""

    def __init__(self) -> None:
        self.given: list[np.ndarray] = []

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        self.given.append(observations.copy())
        return 0.5 * observations[:, 0] + 100.0 * observations[:, 1]


def test_tsinf_adds_the_terminal_value_of_each_surviving_particles_last_prediction():
    horizon, cost = 4, 0.5

    def ends(observations):  # member m ends at step ceil(8 / (m + 1)): member 0 survives
        return observations[:, 0] >= 8

    value = LastObservations()
    valued, bare = (
        WorldModelObjective(
            member_stub(), ends, "tsinf", termination_cost=cost, terminal_value=terminal
        )(np.zeros(OBS), np.zeros((2, horizon, ACT)))
        for terminal in (value, None)
    )
    # only member 0's particles are valued, at their last prediction: dimension 0 moved by 1 per
    # step, dimension 1 counts the H steps
    (given,) = value.given
    np.testing.assert_array_equal(given, [[horizon, horizon, 0.0]] * 2)
    np.testing.assert_allclose(valued - bare, (0.5 * horizon + 100.0 * horizon) / 5)


@pytest.mark.parametrize(
    ("terminal_value", "message"),
    [
        (lambda obs: np.zeros(len(obs) + 1), r"one value per observation, shape \(4,\)"),
        (lambda obs: np.full(len(obs), np.nan), "NaN or inf for 4 of 4"),
    ],
)
def test_a_bad_terminal_value_is_refused(trained, terminal_value, message):
    model, _ = trained
    objective = WorldModelObjective(model, terminal_value=terminal_value)
    with pytest.raises(ValueError, match=message):
        objective(np.zeros(OBS), np.zeros((4, 3, ACT)))


def test_ts1_draws_a_member_anew_for_every_particle_and_step():
    n, horizon, particles = 4, 6, 8
    recorder = StepRecorder(particles * n)
    objective = WorldModelObjective(member_stub(), recorder, "ts1", seed=2, particles=particles)
    objective(np.zeros(OBS), np.zeros((n, horizon, ACT)))
    members = recorder.members()  # (particles * N, H)
    assert members.shape == (particles * n, horizon)
    assert (members != members[:, :1]).any(axis=1).mean() > 0.9  # members change along a row
    first = members[0::n]  # candidate 0's particles: each step, not all on one member
    assert (first != first[:1]).any(axis=0).all()
    assert np.bincount(members.ravel(), minlength=5).min() > 0.1 * members.size


def test_ts1_with_one_particle_draws_as_before_particles(trained):
    model, _ = trained
    actions = np.random.default_rng(8).uniform(-1, 1, size=(16, 5, ACT))
    objective = WorldModelObjective(model, propagation="ts1", seed=4, particles=1)
    # ts1 as it was: one member per candidate and step, drawn in this order from the seed
    generator = torch.Generator().manual_seed(4)
    rows = torch.arange(16)
    for _ in range(2):
        obs, total = torch.zeros(16, OBS), torch.zeros(16, dtype=torch.float64)
        for t in range(actions.shape[1]):
            next_all, reward_all = model.step(obs, torch.tensor(actions[:, t], dtype=torch.float32))
            pick = torch.randint(model.ensemble_size, (16,), generator=generator)
            obs, total = next_all[pick, rows], total + reward_all[pick, rows].double()
        np.testing.assert_array_equal(objective(np.zeros(OBS), actions), total.numpy())


@pytest.mark.parametrize(("propagation", "particles"), [("ts1", 4), ("tsinf", 2)])
def test_same_seed_same_scores_bit_for_bit(trained, propagation, particles):
    actions = np.random.default_rng(9).uniform(-1, 1, size=(16, 4, ACT))

    def scores(seed: int) -> list[np.ndarray]:
        objective = WorldModelObjective(trained[0], None, propagation, seed, particles=particles)
        return [objective(np.zeros(OBS), actions) for _ in range(6)]

    first, again, other = scores(3), scores(3), scores(4)
    for a, b in zip(first, again, strict=True):
        assert a.tobytes() == b.tobytes()
    assert any(a.tobytes() != c.tobytes() for a, c in zip(first, other, strict=True))


@pytest.mark.parametrize(("propagation", "particles"), [("mean", 1), ("ts1", 6), ("tsinf", 7)])
def test_a_candidate_counts_once_in_the_budget_whatever_its_particles(
    trained, propagation, particles
):
    objective = WorldModelObjective(trained[0], propagation=propagation, particles=particles)
    objective(np.zeros(OBS), np.zeros((5, 3, ACT)))
    assert objective.num_evaluated == 5
    budget = Budget(horizon=3, action_dim=ACT, population=8, iterations=2)
    result = build_planner("cem", objective, budget, 0).plan(np.zeros(OBS))
    assert result.reward_evaluations == objective.num_evaluated - 5 <= 16


def test_tsinf_gives_minus_inf_to_candidates_with_a_particle_on_a_nan_member(trained):
    objective = WorldModelObjective(with_nan_member(trained[0]), propagation="tsinf")
    rewards = objective(np.zeros(OBS), np.zeros((6, 2, ACT)))
    assert np.isneginf(rewards).all() and objective.num_invalid == 6


def test_a_member_predicts_its_own_rows_as_it_predicts_shared_ones(trained):
    model, _ = trained
    obs, act = torch.randn(4, OBS), torch.rand(4, ACT) * 2 - 1
    shared = model.step(obs, act)
    own = model.step(obs.expand(model.ensemble_size, -1, -1), act.expand(3, -1, -1))
    for a, b in zip(shared, own, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # member e alone on rows of its own: its rows of the shared call
    rows = torch.randn(model.ensemble_size, 4, OBS)
    next_own, reward_own = model.step(rows, act.expand(3, -1, -1))
    for member in range(model.ensemble_size):
        next_all, reward_all = model.step(rows[member], act)
        torch.testing.assert_close(next_own[member], next_all[member])
        torch.testing.assert_close(reward_own[member], reward_all[member])


def test_disagreement_penalty_lowers_rewards(trained):
    actions = np.random.default_rng(6).uniform(-1, 1, size=(8, 4, ACT))
    plain = WorldModelObjective(trained[0])(np.zeros(OBS), actions)
    penalised = WorldModelObjective(trained[0], disagreement_penalty=1.0)(np.zeros(OBS), actions)
    assert (penalised < plain).all()


def test_save_load_round_trip_and_another_task_is_refused(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "toy-world-model.pt"
    model.save(path)
    loaded = WorldModel.load(path, task="toy")
    obs, act = torch.randn(5, OBS), torch.rand(5, ACT)
    for a, b in zip(model.step(obs, act), loaded.step(obs, act), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="trained for task 'toy', not 'hopper'"):
        WorldModel.load(path, task="hopper")


def test_k_step_error_grows_with_k_and_is_small_for_a_trained_model(trained):
    model, _ = trained
    observations, actions, _, next_observations = toy_episodes((20, 20), seed=9)
    errors = k_step_errors(model, observations, actions, next_observations, np.repeat([0, 1], 20))
    assert set(errors) == {1, 5, 10, 20}
    assert errors[1] < 0.2 and errors[1] <= errors[20]


def test_the_k_step_error_by_dimension_is_each_dims_rms_and_averages_to_the_k_step_error(
    trained,
):
    model, _ = trained
    observations, actions, _, next_observations = toy_episodes((20, 20), seed=9)
    episodes, scale = np.repeat([0, 1], 20), np.array([1.0, 2.0, 0.5])
    data = (model, observations, actions, next_observations, episodes)
    by_dim = k_step_errors_by_dimension(*data, ks=(1, 30), obs_scale=scale)
    one_step, _ = model.step(*(torch.as_tensor(x, dtype=torch.float32) for x in data[1:3]))
    expected = np.sqrt((((one_step.mean(0).numpy() - next_observations) / scale) ** 2).mean(0))
    np.testing.assert_allclose(by_dim[1], expected, rtol=1e-4)
    assert np.isnan(by_dim[30]).all() and by_dim[30].shape == (OBS,)  # no episode of 30 steps
    errors = k_step_errors(*data, ks=(1, 5), obs_scale=scale)
    assert errors[1] == pytest.approx(np.sqrt(np.mean(by_dim[1] ** 2)))


def test_a_planning_step_folds_the_normalisers_into_the_network_and_predicts_the_same(trained):
    model, _ = trained
    rng = np.random.default_rng(9)
    shared = torch.tensor(rng.normal(size=(6, OBS)), dtype=torch.float32)
    own = torch.tensor(rng.normal(size=(3, 6, OBS)), dtype=torch.float32)
    for obs in (shared, own):
        action = torch.tensor(rng.uniform(-1, 1, size=(*obs.shape[:-1], ACT)), dtype=torch.float32)
        inputs = model.input_normalizer.normalize(torch.cat([obs, action], dim=-1))
        with torch.no_grad():
            mean, _ = model.network(inputs.expand(3, 6, OBS + ACT))
        target = model.target_normalizer
        expected_next = obs + target.denormalize(mean)[..., :-1]
        expected_reward = mean[..., -1] * target.scale[-1] + target.center[-1]
        next_obs, reward = model.predictor()(obs, action)
        assert not next_obs.requires_grad
        torch.testing.assert_close(next_obs, expected_next, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(reward, expected_reward, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("propagation", "particles"), [("mean", 1), ("ts1", 4), ("tsinf", 5)])
def test_chunks_on_threads_score_as_one_thread_bit_for_bit(
    trained, monkeypatch, propagation, particles
):
    model = trained[0]
    seen = []
    predictor = model.predictor

    def recorded():
        predict = predictor()
        outputs = predict.outputs

        def recorded_outputs(obs, action):
            seen.append((threading.current_thread().name, obs.shape[:-1].numel()))
            return outputs(obs, action)

        object.__setattr__(predict, "outputs", recorded_outputs)  # a frozen dataclass
        return predict

    monkeypatch.setattr(model, "predictor", recorded)
    actions = np.random.default_rng(10).uniform(-1, 1, size=(40, 3, ACT))
    scores = {}
    for count in (1, 3):
        seen.clear()
        objective = WorldModelObjective(
            model, lambda obs: obs[:, 0] > 0.5, propagation, seed=6, particles=particles,
            termination_cost=2.0, threads=count,
        )  # fmt: skip
        scores[count] = objective(np.zeros(OBS), actions)
        # 40 candidates: 2 chunks of at least MIN_CHUNK = 16, whatever the 3 threads, each on a
        # rollout thread; one thread: one chunk on the caller's
        slots = objective._slots
        chunk_rows = [slots * 40] if count == 1 else [slots * 20, slots * 20]
        assert sorted({rows for _, rows in seen}) == sorted(set(chunk_rows))
        assert len(seen) == 3 * len(chunk_rows)
        names = {name for name, _ in seen}
        assert all(name.startswith("world-model-rollout") for name in names) == (count > 1)
    np.testing.assert_array_equal(scores[3], scores[1])


def test_rollouts_choose_between_one_thread_and_the_policys_rollout_threads(trained, monkeypatch):
    monkeypatch.setattr(threads, "_current", None)
    before = torch.get_num_threads()
    try:
        use_planning_threads(3)
        assert WorldModelObjective(trained[0]).threads.options == (1, 3)
        assert torch.get_num_threads() == 1
        given = WorldModelObjective(trained[0], threads=2).threads
        assert (given.options, given.chosen) == ((2,), 2)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("chunks_faster", [True, False])
def test_rollouts_keep_the_thread_count_that_ran_faster(trained, monkeypatch, chunks_faster):
    """Timed on a fake clock: each predicted step costs 1 on a rollout thread and 3 on the
    caller's (or the reverse); the objective keeps the faster and scores the same throughout."""
    monkeypatch.setattr(threads, "_current", None)
    model, elapsed, names = trained[0], [0.0], []
    predictor = model.predictor
    costs = (1.0, 3.0) if chunks_faster else (3.0, 1.0)

    def timed():
        predict = predictor()
        outputs = predict.outputs

        def timed_outputs(obs, action):
            name = threading.current_thread().name
            names.append(name)
            elapsed[0] += costs[0] if name.startswith("world-model-rollout") else costs[1]
            return outputs(obs, action)

        object.__setattr__(predict, "outputs", timed_outputs)  # a frozen dataclass
        return predict

    monkeypatch.setattr(model, "predictor", timed)
    before = torch.get_num_threads()
    try:
        use_planning_threads(2)
        objective = WorldModelObjective(model)
    finally:
        torch.set_num_threads(before)
    objective.threads.clock = lambda: elapsed[0]
    actions = np.random.default_rng(11).uniform(-1, 1, size=(40, 3, ACT))
    for _ in range(2 * THREAD_TRIALS + 2):  # one chunk whatever the count: not timed
        objective(np.zeros(OBS), actions[:20])
    assert objective.threads.chosen is None
    first = objective(np.zeros(OBS), actions)
    for _ in range(2 * THREAD_TRIALS + 1):  # the first call of each count is not counted
        assert objective.threads.chosen is None
        np.testing.assert_array_equal(objective(np.zeros(OBS), actions), first)
    assert objective.threads.chosen == (2 if chunks_faster else 1)
    names.clear()
    np.testing.assert_array_equal(objective(np.zeros(OBS), actions), first)
    on_rollout_threads = {name.startswith("world-model-rollout") for name in names}
    assert on_rollout_threads == {chunks_faster}


def test_changes_are_clamped_to_the_data_range_but_rewards_are_not(trained):
    model, _ = trained
    state = {k: v.clone() for k, v in model.network.state_dict().items()}
    state["head.weight"].zero_()
    state["head.bias"].fill_(10.0)  # every mean 10 stds above the data's centre
    far = WorldModel(model.config, model.input_normalizer, model.target_normalizer)
    far.network.load_state_dict(state)
    next_all, reward_all = far.step(torch.zeros(2, OBS), torch.zeros(2, ACT))
    normalizer = model.target_normalizer
    torch.testing.assert_close(next_all, normalizer.high[:-1].expand_as(next_all))
    expected = 10 * normalizer.scale[-1] + normalizer.center[-1]
    assert expected > normalizer.high[-1]
    torch.testing.assert_close(reward_all, expected.expand_as(reward_all))


# A reward computed from observations


@pytest.mark.parametrize(("propagation", "particles"), [("mean", 1), ("ts1", 4), ("tsinf", 5)])
def test_a_reward_fn_replaces_the_reward_head_in_every_propagation(propagation, particles):
    calls = []

    def moved_and_pushed(obs, action, next_obs):  # dimension 0's move, plus 100 x action 0
        calls.append((obs.shape, action.shape, next_obs.shape, obs.dtype))
        return next_obs[:, 0] - obs[:, 0] + 100 * action[:, 0]

    n, horizon = 3, 4
    actions = np.zeros((n, horizon, ACT))
    actions[:, :, 0] = [[-0.5], [0.0], [2.0]]  # the last is clipped to 1
    rows = particles * n  # every slot holds a particle here
    recorder = StepRecorder(rows)
    objective = WorldModelObjective(
        member_stub(), recorder, propagation, particles=particles, reward_fn=moved_and_pushed
    )
    scores = objective(np.zeros(OBS), actions)
    steps = horizon * rows  # one call reads the whole rollout
    assert calls == [((steps, OBS), (steps, ACT), (steps, OBS), np.float64)]
    # a particle earns where dimension 0 ended, whichever members moved it, and none of the
    # head's 10**m rewards
    final = recorder.steps[-1][:, 0].reshape(particles, n)
    pushed = 100 * horizon * np.array([-0.5, 0.0, 1.0])
    np.testing.assert_allclose(scores, final.mean(axis=0) + pushed, rtol=1e-6)


def test_a_non_finite_computed_reward_scores_minus_inf():
    def nan_for_the_first(obs, action, next_obs):
        return np.where(np.arange(len(obs)) % 2 == 0, np.nan, 1.0)

    scores = WorldModelObjective(member_stub(), reward_fn=nan_for_the_first)(
        np.zeros(OBS), np.zeros((2, 3, ACT))
    )
    assert scores[0] == -math.inf and scores[1] == pytest.approx(3.0)


# Planning-only costs on predicted observations


@pytest.mark.parametrize(("propagation", "particles"), [("mean", 1), ("ts1", 4), ("tsinf", 5)])
def test_costs_are_subtracted_from_every_steps_reward_up_to_the_terminal_one(
    propagation, particles
):
    def pushed(obs, action, next_obs):  # 100 x action 0, per step
        return 100 * action[:, 0]

    n, horizon = 3, 4
    actions = np.zeros((n, horizon, ACT))
    actions[:, :, 0] = [[-0.5], [0.0], [1.0]]
    options = {"particles": particles, "seed": 5}
    bare = WorldModelObjective(member_stub(), None, propagation, **options)
    charged = WorldModelObjective(member_stub(), None, propagation, cost_fn=pushed, **options)
    costs = 100 * horizon * np.array([-0.5, 0.0, 1.0])
    observation = np.zeros(OBS)
    np.testing.assert_allclose(charged(observation, actions), bare(observation, actions) - costs)

    def ends_after_two(obs):  # every row ends after its second step: two steps' costs only
        return obs[:, 1] >= 2

    ending, ending_bare = (
        WorldModelObjective(member_stub(), ends_after_two, propagation, cost_fn=cost, **options)
        for cost in (pushed, None)
    )
    np.testing.assert_allclose(
        ending(observation, actions), ending_bare(observation, actions) - costs / 2
    )


def test_a_non_finite_cost_scores_minus_inf():
    def nan_for_the_first(obs, action, next_obs):
        return np.where(np.arange(len(obs)) % 2 == 0, np.nan, 0.5)

    observation, actions = np.zeros(OBS), np.zeros((2, 3, ACT))
    scores = WorldModelObjective(member_stub(), cost_fn=nan_for_the_first)(observation, actions)
    bare = WorldModelObjective(member_stub())(observation, actions)
    assert scores[0] == -math.inf and scores[1] == pytest.approx(bare[1] - 3 * 0.5)


def pendulum_transitions(m: int, seed: int = 0):
    """M transitions of a toy system whose observation 1 is an angle that winds: the angle's
    change is ``0.1 * cos(angle) * action 0``, observation 0 moves by ``0.1 * action 1``; the
    data's angles lie in [-1, 1] rad, as half-cheetah's pitch before its first flip."""
    rng = np.random.default_rng(seed)
    obs = np.stack([rng.normal(size=m), rng.uniform(-1, 1, size=m), rng.normal(size=m)], axis=1)
    act = rng.uniform(-1, 1, size=(m, ACT))
    nxt = obs.copy()
    nxt[:, 0] += 0.1 * act[:, 1]
    nxt[:, 1] += 0.1 * np.cos(obs[:, 1]) * act[:, 0]
    return obs, act, nxt[:, 0], nxt


@pytest.fixture(scope="module")
def trained_on_the_circle():
    config = WorldModelConfig(OBS, ACT, ensemble_size=3, hidden=32, depth=2, periodic=(1,))
    training = WorldModelTraining(epochs=30, batch_size=64, learning_rate=3e-3, patience=30)
    data = pendulum_transitions(768)
    return train_world_model(*data, config, training, task="toy", progress=False)


def test_a_periodic_dim_enters_as_its_sine_and_cosine():
    obs = torch.tensor([[0.5, 0.3, -2.0]], dtype=torch.float64)
    act = torch.tensor([[0.1, -0.2]], dtype=torch.float64)
    inputs = network_inputs(obs, act, (1,))
    expected = [0.5, math.sin(0.3), -2.0, 0.1, -0.2, math.cos(0.3)]
    torch.testing.assert_close(inputs, torch.tensor([expected], dtype=torch.float64))
    assert obs[0, 1] == 0.3  # the caller's observation is not changed
    torch.testing.assert_close(network_inputs(obs, act, ()), torch.cat([obs, act], dim=-1))


def test_a_model_predicts_the_same_change_after_a_full_turn_of_a_periodic_dim(
    trained_on_the_circle,
):
    """Half-cheetah's planner flipped its cheetah (pitch 0.4 -> 6.6 rad) and then stood still: its
    model read the raw pitch, far outside the data. Read on the circle, a full turn is the
    state it was."""
    model, _ = trained_on_the_circle
    obs, act, _, nxt = (torch.tensor(x, dtype=torch.float32) for x in pendulum_transitions(64, 5))
    turned = obs.clone()
    turned[:, 1] += 2 * math.pi
    for flips in (turned, obs - torch.tensor([0.0, 4 * math.pi, 0.0])):
        next_flipped, reward_flipped = model.step(flips, act)
        next_obs, reward = model.step(obs, act)
        torch.testing.assert_close(next_flipped - flips, next_obs - obs, atol=1e-4, rtol=0)
        torch.testing.assert_close(reward_flipped, reward, atol=1e-4, rtol=0)
    error = (model.step(turned, act)[0].mean(0) - turned - (nxt - obs)).abs().max()
    assert error < 0.05  # and the change is the system's


def test_a_planning_step_reads_periodic_dims_as_training_did(trained_on_the_circle, tmp_path):
    model, _ = trained_on_the_circle
    obs, act, _, _ = (torch.tensor(x, dtype=torch.float32) for x in pendulum_transitions(6, 9))
    inputs = model.input_normalizer.normalize(network_inputs(obs, act, (1,)))
    with torch.no_grad():
        mean, _ = model.network(inputs.expand(3, 6, OBS + ACT + 1))
    next_obs, _ = model.step(obs, act)
    torch.testing.assert_close(next_obs, obs + model.target_normalizer.denormalize(mean)[..., :-1])
    path = tmp_path / "toy-world-model.pt"
    model.save(path)
    loaded = WorldModel.load(path, task="toy")
    assert loaded.config.periodic == (1,)
    torch.testing.assert_close(loaded.step(obs, act)[0], next_obs, rtol=0, atol=0)


def test_a_checkpoint_from_before_periodic_dims_reads_the_raw_observation(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "toy-world-model.pt"
    model.save(path)
    payload = torch.load(path, weights_only=True)
    del payload["config"]["periodic"]
    contents = ("config", "state_dict", "input_normalizer", "target_normalizer")
    save_checkpoint(path, "world_model", {key: payload[key] for key in contents}, task="toy")
    loaded = WorldModel.load(path, task="toy")
    assert loaded.config.periodic == ()
    obs, act = torch.randn(5, OBS), torch.rand(5, ACT)
    torch.testing.assert_close(loaded.step(obs, act)[0], model.step(obs, act)[0], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("periodic", "message"),
    [((3,), r"in \[0, 3\)"), ((-1,), r"in \[0, 3\)"), ((2, 1), "increasing"), ((1, 1), "distinct")],
)
def test_bad_periodic_dims_are_refused(periodic, message):
    with pytest.raises(ValueError, match=message):
        WorldModelConfig(OBS, ACT, periodic=periodic)
    assert WorldModelConfig(OBS, ACT, periodic=[0, 2]).periodic == (0, 2)  # a checkpoint's list
