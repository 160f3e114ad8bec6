"""train_prior on sine waves: loss falls, samples match the data's statistics, inversion works."""

import dataclasses

import numpy as np
import pytest
import torch

from planner.denoiser import DenoiserConfig
from planner.training import TrainingConfig, train_prior

H = 16
TINY = DenoiserConfig(
    kind="mlp", horizon=H, channels=2, mlp_hidden=128, mlp_depth=2, time_embed_dim=32
)
FAST = TrainingConfig(
    steps=300, batch_size=128, learning_rate=2e-3, warmup_steps=20, ema_decay=0.99, log_every=50
)


def sines(n, seed=0):
    """(n, H, 2) circles: (A sin, A cos) of one period, random phase, amplitude A in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    amplitude = rng.uniform(0.5, 1.5, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1)) + np.linspace(0, 2 * np.pi, H, endpoint=False)
    return np.stack([amplitude * np.sin(phase), amplitude * np.cos(phase)], axis=-1).astype(
        np.float32
    )


@pytest.fixture(scope="module")
def trained():
    data = sines(2000)
    prior, history = train_prior(data, TINY, FAST, progress=False)
    return torch.from_numpy(data), prior, history


def check_statistics(prior, data, steps, tolerance):
    samples = prior.decode(
        torch.randn(2000, H, 2, generator=torch.Generator().manual_seed(1)), steps
    )
    mean_error = (samples.mean(0) - data.mean(0)).abs().max().item()
    std_error = (samples.std(0) - data.std(0)).abs().max().item()
    assert mean_error < tolerance and std_error < tolerance, (mean_error, std_error)


def test_loss_falls(trained):
    _, _, history = trained
    assert history["step"] == [50, 100, 150, 200, 250, 300]
    assert len(history["train_loss"]) == len(history["val_loss"]) == 6
    # measured: train 0.82 -> 0.35, val 0.73 -> 0.32
    assert history["train_loss"][-1] < 0.6 * history["train_loss"][0]
    assert history["val_loss"][-1] < 0.6 * history["val_loss"][0]


def test_samples_match_data_statistics(trained):
    data, prior, _ = trained
    # data per-step std is ~0.74; measured max errors at S=20: mean 0.06, std 0.07
    check_statistics(prior, data, steps=20, tolerance=0.15)


def test_inversion_then_decode_returns_the_trajectory(trained):
    _, prior, _ = trained
    held_out = torch.from_numpy(sines(64, seed=9))
    back = prior.decode(prior.encode(held_out, 100), 100)
    # measured mean |error| 0.046 (max 0.12); amplitudes are 0.5-1.5
    assert (back - held_out).abs().mean() < 0.1


def test_prior_carries_the_ema_weights_and_config(trained):
    _, prior, _ = trained
    assert prior.config == TINY and prior.schedule.train_steps == FAST.diffusion_steps
    assert not any(p.requires_grad for p in prior.model.parameters())


def test_training_is_seeded_and_leaves_global_rng_alone():
    data = sines(40)
    config = TrainingConfig(steps=3, batch_size=8, warmup_steps=1, log_every=1)
    state = torch.get_rng_state()
    runs = [train_prior(data, TINY, config, progress=False) for _ in range(2)]
    other, _ = train_prior(data, TINY, dataclasses.replace(config, seed=1), progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    weights = [dict(prior.model.state_dict()) for prior, _ in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert runs[0][1] == runs[1][1]
    assert not torch.equal(other.model.inp.weight, runs[0][0].model.inp.weight)


def test_conditioned_training_and_progress_bar(capsys):
    data = sines(40)
    cond = np.random.default_rng(0).normal(size=(40, 3))
    config = TrainingConfig(steps=2, batch_size=8, warmup_steps=0, log_every=1, val_fraction=0.0)
    prior, history = train_prior(
        data, DenoiserConfig(kind="mlp", horizon=H, channels=2, cond_dim=3), config, cond
    )
    assert "train prior" in capsys.readouterr().err
    assert np.isnan(history["val_loss"]).all() and prior.cond_normalizer is not None
    assert prior.decode(torch.zeros(2, H, 2), 2, cond=cond[0]).shape == (2, H, 2)


@pytest.mark.parametrize(
    ("data", "cond", "message"),
    [
        (np.zeros((10, H)), None, r"\(N, H, C\)"),
        (np.zeros((10, H + 1, 2)), None, r"\(N, 16, 2\)"),
        (np.full((10, H, 2), np.nan), None, "NaN or inf"),
        (np.zeros((2, H, 2)), None, "provide more data"),
        (np.zeros((10, H, 2)), np.zeros((10, 3)), "cond_dim=0"),
    ],
)
def test_input_validation(data, cond, message):
    with pytest.raises(ValueError, match=message):
        train_prior(data, TINY, FAST, cond=cond, progress=False)


def test_cond_validation():
    config = DenoiserConfig(kind="mlp", horizon=H, channels=2, cond_dim=3)
    with pytest.raises(ValueError, match=r"pass cond \(N, K\)"):
        train_prior(sines(10), config, FAST, progress=False)
    with pytest.raises(ValueError, match="9 rows but there are 10"):
        train_prior(sines(10), config, FAST, cond=np.zeros((9, 3)), progress=False)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 10, "warmup_steps": 10}, "warmup_steps"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"normalization": "zscore"}, "normalization"),
        ({"diffusion_steps": 1}, "train_steps"),
    ],
)
def test_config_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**fields)


@pytest.mark.slow
def test_default_unet_learns_sines():
    data = sines(2000)
    config = TrainingConfig(
        steps=250, batch_size=128, learning_rate=3e-3, warmup_steps=25, ema_decay=0.99
    )
    prior, history = train_prior(
        data, DenoiserConfig(horizon=H, channels=2), config, progress=False
    )
    # measured: val loss 0.44 at step 50, 0.28 at 100, 0.24 at 250 (an untrained model scores ~1;
    # 500 steps at lr 2e-3 reach 0.23); at S=20 max errors mean 0.04, std 0.07; round trip mean
    # |error| 0.02 at S=100
    assert history["val_loss"][-1] < 0.3
    check_statistics(prior, torch.from_numpy(data), steps=20, tolerance=0.12)
    held_out = torch.from_numpy(sines(64, seed=9))
    assert (prior.decode(prior.encode(held_out, 100), 100) - held_out).abs().mean() < 0.05
