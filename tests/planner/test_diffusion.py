"""Noise schedule, DDIM timesteps, DDIM decode/inversion with analytic models, diffusers parity."""

import itertools
import math

import pytest
import torch

from planner.diffusion import (
    NoiseSchedule,
    ddim_decode,
    ddim_invert,
    ddim_timesteps,
    v_prediction_loss,
)

SCHEDULE = NoiseSchedule()


def exact_model(x0: torch.Tensor):
    """A denoiser that knows the data is the single trajectory x0: it returns the true v."""

    def model(x_t, t, cond):
        a = SCHEDULE.alphas_cumprod[t].view(-1, 1, 1).to(x_t.dtype)
        eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        return a.sqrt() * eps - (1 - a).sqrt() * x0

    return model


def gaussian_model(mean: float, std: float):
    """The optimal denoiser for data with i.i.d. N(mean, std^2) entries (posterior means).

    Its probability-flow ODE maps a latent z to mean + std * z, which DDIM approaches as S grows.
    """

    def model(x_t, t, cond):
        a = SCHEDULE.alphas_cumprod[t].view(-1, 1, 1).to(x_t.dtype)
        variance = a * std**2 + 1 - a
        residual = x_t - a.sqrt() * mean
        x0 = mean + a.sqrt() * std**2 * residual / variance
        eps = (1 - a).sqrt() * residual / variance
        return a.sqrt() * eps - (1 - a).sqrt() * x0

    return model


def smooth_output(x_t, t, cond=None):
    """A fixed deterministic stand-in for a network's output."""
    t = t.to(x_t.dtype).view(-1, 1, 1)
    return 0.8 * torch.tanh(x_t) * torch.cos(t / 300) + 0.1 * torch.sin(t / 100 + x_t)


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_schedule_is_the_cosine_schedule():
    abar = SCHEDULE.alphas_cumprod
    assert abar.shape == (1000,) and abar.dtype == torch.float32
    assert bool(torch.all(abar[1:] < abar[:-1]))
    # continuous cosine alpha_bar at the middle step, before the beta cap matters
    expected = math.cos((500 / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
    expected /= math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    assert abar[499].item() == pytest.approx(expected, rel=1e-4)
    assert abar[-1].item() < 1e-8  # last step is (almost) pure noise
    assert NoiseSchedule(50).alphas_cumprod.shape == (50,)
    with pytest.raises(ValueError, match="train_steps"):
        NoiseSchedule(1)


def test_trailing_timesteps_start_at_pure_noise():
    assert ddim_timesteps(1000, 1) == [999]
    assert ddim_timesteps(1000, 2) == [999, 499]
    assert ddim_timesteps(1000, 5) == [999, 799, 599, 399, 199]
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))
    for steps in (3, 7, 61, 333):
        timesteps = ddim_timesteps(1000, steps)
        assert len(timesteps) == steps and timesteps[0] == 999 and timesteps[-1] >= 0
        assert all(a > b for a, b in itertools.pairwise(timesteps))


@pytest.mark.parametrize("steps", [0, -1, 1001])
def test_timesteps_reject_out_of_range(steps):
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        ddim_timesteps(1000, steps)
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        ddim_decode(smooth_output, randn(2, 4, 1), SCHEDULE, steps)


def test_timesteps_reject_non_int():
    with pytest.raises(TypeError, match="int"):
        ddim_timesteps(1000, 2.0)


@pytest.mark.parametrize("steps", [1, 2, 10, 1000])
def test_decode_with_exact_model_returns_its_trajectory(steps):
    x0 = randn(1, 8, 2, seed=1, dtype=torch.float64)
    out = ddim_decode(exact_model(x0), randn(5, 8, 2, seed=2, dtype=torch.float64), SCHEDULE, steps)
    torch.testing.assert_close(out, x0.expand(5, -1, -1), atol=1e-9, rtol=0)


def test_gaussian_decode_and_inversion_converge_with_steps():
    mean, std = 0.5, 0.3
    model = gaussian_model(mean, std)
    z = randn(32, 8, 3, seed=0, dtype=torch.float64)
    x = mean + std * randn(32, 8, 3, seed=1, dtype=torch.float64)
    decode_errors, round_trip_errors = [], []
    for steps in (10, 100, 1000):
        decode_errors.append(
            (ddim_decode(model, z, SCHEDULE, steps) - (mean + std * z)).abs().max().item()
        )
        latents = ddim_invert(model, x, SCHEDULE, steps)
        round_trip_errors.append(
            (ddim_decode(model, latents, SCHEDULE, steps) - x).abs().max().item()
        )
    # measured (max abs): decode 0.20, 0.022, 0.0023; round trip 0.40, 0.053, 0.0060 (O(1/S))
    assert decode_errors[0] > decode_errors[1] > decode_errors[2]
    assert round_trip_errors[0] > round_trip_errors[1] > round_trip_errors[2]
    assert decode_errors[2] < 0.005 and round_trip_errors[2] < 0.012


def test_decode_is_deterministic_and_batch_independent():
    z = randn(6, 8, 2, seed=3)
    first = ddim_decode(smooth_output, z, SCHEDULE, 5)
    assert torch.equal(first, ddim_decode(smooth_output, z.clone(), SCHEDULE, 5))
    torch.testing.assert_close(
        ddim_decode(smooth_output, z[2:3], SCHEDULE, 5), first[2:3], atol=1e-6, rtol=0
    )


def test_clip_bounds_the_decoded_sample():
    z = 3 * randn(16, 8, 2, seed=4)
    free = ddim_decode(smooth_output, z, SCHEDULE, 4)
    clipped = ddim_decode(smooth_output, z, SCHEDULE, 4, clip=0.5)
    assert free.abs().max() > 0.5
    assert clipped.abs().max() <= 0.5 + 1e-6


def test_v_prediction_loss_is_zero_for_the_exact_model_and_seeded():
    x0 = randn(1, 8, 2, seed=5)
    batch = x0.expand(16, -1, -1)
    loss = v_prediction_loss(exact_model(x0), batch, SCHEDULE, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and loss.item() < 1e-6

    def zero(x_t, t, cond):
        return torch.zeros_like(x_t)

    losses = [
        v_prediction_loss(zero, batch, SCHEDULE, torch.Generator().manual_seed(1)) for _ in range(2)
    ]
    assert losses[0].item() > 0.1 and torch.equal(losses[0], losses[1])


def test_cond_reaches_the_model():
    seen = []

    def model(x_t, t, cond):
        seen.append(cond)
        return torch.zeros_like(x_t)

    cond = torch.ones(3, 4)
    ddim_decode(model, randn(3, 8, 2), SCHEDULE, 2, cond=cond)
    ddim_invert(model, randn(3, 8, 2), SCHEDULE, 2, cond=cond)
    assert len(seen) == 4 and all(c is cond for c in seen)


class TestDiffusersParity:
    diffusers = pytest.importorskip("diffusers")

    def scheduler(self, **overrides):
        options = dict(
            num_train_timesteps=1000,
            beta_schedule="squaredcos_cap_v2",
            prediction_type="v_prediction",
            timestep_spacing="trailing",
            set_alpha_to_one=True,
            clip_sample=False,
        )
        return self.diffusers.DDIMScheduler(**{**options, **overrides})

    def test_schedule_and_timesteps_match(self):
        scheduler = self.scheduler()
        assert torch.equal(scheduler.alphas_cumprod, SCHEDULE.alphas_cumprod)
        for steps in range(1, 1001):
            scheduler.set_timesteps(steps)
            # diffusers' float arange sometimes appends a spurious -1; we keep S timesteps
            assert scheduler.timesteps.tolist()[:steps] == ddim_timesteps(1000, steps), steps

    @pytest.mark.parametrize(
        ("steps", "clip"), [(1, None), (2, None), (5, None), (10, None), (50, None), (5, 1.0)]
    )
    def test_eta0_samples_match(self, steps, clip):
        scheduler = self.scheduler(clip_sample=clip is not None, clip_sample_range=clip or 1.0)
        scheduler.set_timesteps(steps)
        z = randn(8, 16, 2, seed=6)
        sample = z.clone()
        for t in scheduler.timesteps:
            output = smooth_output(sample, torch.full((8,), int(t)))
            sample = scheduler.step(output, t, sample, eta=0.0).prev_sample
        ours = ddim_decode(smooth_output, z, SCHEDULE, steps, clip=clip)
        torch.testing.assert_close(ours, sample, atol=1e-5, rtol=1e-5)
