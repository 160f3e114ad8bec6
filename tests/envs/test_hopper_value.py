"""Hopper's survival value features and terminal value."""

import numpy as np

from envs.hopper_value import FEATURES, episode_dataset, hopper_terminal_value, state_features
from envs.mujoco_tasks import make_task
from planner.value import ValueConfig, train_value


def test_features_of_a_state_are_hopper_observations():
    task = make_task("hopper")
    env = task.env.unwrapped
    env.reset(seed=0)
    states, observations = [], []
    for _ in range(20):
        observation, *_ = env.step(np.full(task.action_dim, 0.5))
        states.append(task.snapshot())
        observations.append(observation)
    np.testing.assert_allclose(state_features(np.array(states)), observations, atol=1e-12)


def test_episode_dataset_drops_censored_states():
    states = np.zeros((11, 20))
    features, targets = episode_dataset([(states, 10, True), (states, 10, False)], horizon=4)
    assert features.shape == (11 + 7, FEATURES)
    np.testing.assert_array_equal(targets[-7:], 4)


def test_terminal_value_is_alive_bonus_times_weight_times_steps():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(32, FEATURES))
    model, _ = train_value(features, rng.uniform(0, 10, 32), ValueConfig(FEATURES, 10), epochs=1)
    qpos, qvel = rng.normal(size=(32, 6)), rng.normal(size=(32, 6))
    value = hopper_terminal_value(model, alive_bonus=2.0, weight=1.5)(qpos, qvel)
    np.testing.assert_allclose(value, 3 * model.predict(np.hstack([qpos[:, 1:], qvel])), rtol=1e-12)
