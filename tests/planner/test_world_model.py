"""The world model: training, batched rollouts, shape checks, diverging members, checkpoints."""

import math

import numpy as np
import pytest
import torch

from planner.checkpoint import CheckpointError
from planner.planning import Budget
from planner.world_model import (
    WorldModel,
    WorldModelConfig,
    WorldModelObjective,
    k_step_errors,
)
from planner.world_model_training import WorldModelTraining, train_world_model
from policies.planners import build_planner

OBS, ACT = 3, 2


def toy_transitions(m: int, seed: int = 0):
    """ACT linear system: next = obs + 0.1 * B @ action, reward = -|next|^2."""
    rng = np.random.default_rng(seed)
    b = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]])
    obs = rng.normal(size=(m, OBS))
    act = rng.uniform(-1, 1, size=(m, ACT))
    nxt = obs + 0.1 * act @ b.T
    return obs, act, -np.square(nxt).sum(axis=1), nxt


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
    runs = [
        train_world_model(
            *toy_transitions(128), config, WorldModelTraining(epochs=2), progress=False
        )[1]["val_mse"]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


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
    ends = np.array([True, False, True, False])
    calls = iter(range(100))

    def ends_rows_at_step_two(obs):  # rows 0 and 2 end after their second step
        return ends if next(calls) == 1 else np.zeros(len(obs), bool)

    bare = WorldModelObjective(model, ends_rows_at_step_two)(np.zeros(OBS), actions)
    calls = iter(range(100))
    charged = WorldModelObjective(model, ends_rows_at_step_two, termination_cost=50.0)
    np.testing.assert_allclose(charged(np.zeros(OBS), actions), bare - 50.0 * ends, rtol=1e-6)


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


def test_bad_options_are_refused(trained):
    with pytest.raises(ValueError, match="propagation"):
        WorldModelObjective(trained[0], propagation="ts9")
    with pytest.raises(ValueError, match="disagreement_penalty"):
        WorldModelObjective(trained[0], disagreement_penalty=-1.0)


def with_nan_member(model: WorldModel) -> WorldModel:
    """ACT copy of ``model`` whose member 0 predicts NaN everywhere."""
    state = {k: v.clone() for k, v in model.network.state_dict().items()}
    state["head.weight"][0] = math.nan
    broken = WorldModel(model.config, model.input_normalizer, model.target_normalizer)
    broken.network.load_state_dict(state)
    return broken


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
    objective = WorldModelObjective(broken, propagation="ts1", seed=0)
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
    obs, act, _, _ = toy_transitions(40, seed=9)
    # two recorded episodes of 20 steps of the toy system
    b = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]])
    observations, next_observations = [], []
    for episode in range(2):
        x = obs[20 * episode]
        for t in range(20):
            observations.append(x)
            x = x + 0.1 * act[20 * episode + t] @ b.T
            next_observations.append(x)
    errors = k_step_errors(
        model, np.array(observations), act, np.array(next_observations), np.repeat([0, 1], 20)
    )
    assert set(errors) == {1, 5, 10, 20}
    assert errors[1] < 0.2 and errors[1] <= errors[20]


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
