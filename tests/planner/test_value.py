"""The survival value: its labels, its training and its checkpoint."""

import numpy as np
import pytest
import torch

from planner.value import SurvivalValue, ValueConfig, survival_targets, train_value


def test_a_terminated_episode_labels_every_state_capped_at_k():
    targets, known = survival_targets(steps=5, terminated=True, horizon=3)
    np.testing.assert_array_equal(targets, [3, 3, 3, 2, 1, 0])
    assert known.all()


def test_a_cut_episode_labels_only_states_known_to_survive_k_more():
    targets, known = survival_targets(steps=5, terminated=False, horizon=3)
    np.testing.assert_array_equal(known, [True, True, True, False, False, False])
    np.testing.assert_array_equal(targets[known], [3, 3, 3])


def synthetic(seed: int = 0, size: int = 256):
    """Features (size, 3) and targets (size,) in [0, 10]: survival grows with the first one."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(size, 3)).astype(np.float32)
    return features, 10 / (1 + np.exp(-3 * features[:, 0]))


def test_training_reduces_the_loss_and_is_deterministic():
    features, targets = synthetic()
    config = ValueConfig(features=3, horizon=10, width=16)
    model, losses = train_value(features, targets, config, epochs=40, batch_size=64)
    again, losses_again = train_value(features, targets, config, epochs=40, batch_size=64)

    assert losses[-1] < 0.2 * losses[0], losses
    assert losses == losses_again
    np.testing.assert_array_equal(again.predict(features), model.predict(features))
    predictions = model.predict(features)
    assert predictions.shape == (256,) and ((predictions > 0) & (predictions < 10)).all()
    assert np.abs(predictions - targets).mean() < 1.0


def test_save_load_round_trip(tmp_path):
    features, targets = synthetic()
    model, _ = train_value(features, targets, ValueConfig(features=3, horizon=10), epochs=2)
    model.save(tmp_path / "value.pt", task="hopper")

    loaded = SurvivalValue.load(tmp_path / "value.pt", task="hopper")

    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    with pytest.raises(ValueError, match="reacher"):
        SurvivalValue.load(tmp_path / "value.pt", task="reacher")


def test_bad_shapes_raise():
    config = ValueConfig(features=3, horizon=10)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        SurvivalValue(config).predict(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"targets must be \(4,\)"):
        train_value(np.zeros((4, 3)), np.zeros(5), config, epochs=1)
    assert torch.is_tensor(SurvivalValue(config)(torch.zeros(2, 3)))
