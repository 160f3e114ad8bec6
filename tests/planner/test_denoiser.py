"""Denoiser networks: shapes for both kinds, what reaches the output (input, timestep,
conditioning, one row at a time), odd horizons, config checks, size."""

import io

import pytest
import torch

from planner.denoiser import DenoiserConfig, build_denoiser


def make(**fields):
    torch.manual_seed(0)
    return build_denoiser(DenoiserConfig(**fields)).eval()


def perturb_output_layer(model):
    """Untrained models output exactly 0 (zero-init head) whatever they are given, so nothing
    about their inputs can be seen at the output; seeded random head weights let it show."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.out[-1].parameters():
            parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
    return model


@pytest.mark.parametrize("kind", ["unet", "mlp"])
@pytest.mark.parametrize("horizon", [1, 7, 16, 25])
def test_any_horizon_maps_every_step_of_the_input_and_the_timestep_to_the_output(kind, horizon):
    """Odd horizons are padded and cropped back (UNet): every step of x_t must still reach the
    output, every output step must answer a change of x_t, and each row its own timestep."""
    model = perturb_output_layer(make(kind=kind, horizon=horizon, channels=3))
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(4, horizon, 3, generator=generator).requires_grad_()
    t = torch.tensor([0, 10, 500, 999])
    v = model(x, t, None)
    assert v.shape == (4, horizon, 3) and bool(torch.isfinite(v).all())
    weights = torch.randn(v.shape, generator=generator)
    (reach,) = torch.autograd.grad((weights * v).sum(), x)
    assert bool((reach.abs().amax(dim=2) > 0).all()), "a step of x_t never reaches the output"
    with torch.no_grad():
        moved = model(x + torch.randn(x.shape, generator=generator), t)
        later = model(x, (t + 250) % 1000)
    assert bool(((moved - v).abs().amax(dim=2) > 1e-4).all()), "an output step ignores x_t"
    assert bool(((later - v).abs().amax(dim=(1, 2)) > 1e-4).all()), "a row ignores t"


@pytest.mark.parametrize("kind", ["unet", "mlp"])
def test_untrained_output_is_zero(kind):
    model = make(kind=kind)
    assert torch.equal(model(torch.randn(2, 16, 2), torch.tensor([1, 2])), torch.zeros(2, 16, 2))


@pytest.mark.parametrize("kind", ["unet", "mlp"])
def test_conditioning_changes_the_output(kind):
    model = perturb_output_layer(make(kind=kind, horizon=12, channels=2, cond_dim=5))
    x, t = torch.randn(3, 12, 2), torch.tensor([100, 100, 100])
    with torch.no_grad():
        a = model(x, t, torch.zeros(3, 5))
        b = model(x, t, torch.ones(3, 5))
        c = model(x, t + 400, torch.zeros(3, 5))
    assert a.shape == (3, 12, 2)
    assert (a - b).abs().max() > 1e-3  # cond reaches the output
    assert (a - c).abs().max() > 1e-3  # so does the timestep


@pytest.mark.parametrize("kind", ["unet", "mlp"])
def test_rows_are_independent(kind):
    model = perturb_output_layer(make(kind=kind, horizon=9))
    x, t = torch.randn(5, 9, 2), torch.arange(5) * 200
    with torch.no_grad():
        torch.testing.assert_close(model(x[3:4], t[3:4]), model(x, t)[3:4], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("cond", "message"),
    [(None, r"cond must be \(2, 4\)"), (torch.zeros(2, 3), r"cond must be \(2, 4\)")],
)
def test_conditioned_model_checks_cond(cond, message):
    with pytest.raises(ValueError, match=message):
        make(cond_dim=4)(torch.zeros(2, 16, 2), torch.zeros(2, dtype=torch.long), cond)


def test_unconditioned_model_rejects_cond():
    with pytest.raises(ValueError, match="unconditioned"):
        make()(torch.zeros(2, 16, 2), torch.zeros(2, dtype=torch.long), torch.zeros(2, 3))


@pytest.mark.parametrize("kind", ["unet", "mlp"])
def test_input_shape_errors_say_what_is_expected(kind):
    model = make(kind=kind)
    with pytest.raises(ValueError, match=r"\(B, H=16, C=2\)"):
        model(torch.zeros(2, 15, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"t must be \(2,\)"):
        model(torch.zeros(2, 16, 2), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "transformer"}, "kind"),
        ({"horizon": 0}, "horizon"),
        ({"channels": 2.0}, "channels"),
        ({"cond_dim": -1}, "cond_dim"),
        ({"channel_mults": ()}, "channel_mults"),
        ({"kernel_size": 4}, "odd"),
        ({"base_channels": 12}, "norm_groups"),
        ({"attention_heads": 3}, "attention_heads"),
        ({"time_embed_dim": 33}, "even"),
    ],
)
def test_config_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        DenoiserConfig(**fields)


def test_config_normalises_mults_to_a_tuple():
    assert DenoiserConfig(channel_mults=[1, 2]) == DenoiserConfig(channel_mults=(1, 2))


def test_default_sizes_stay_small():
    # measured: UNet 317,490 parameters (1.3 MB of weights), MLP 324,256
    for kind in ("unet", "mlp"):
        model = make(kind=kind)
        count = sum(p.numel() for p in model.parameters())
        assert 100_000 < count < 600_000, (kind, count)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        assert buffer.tell() < 3_000_000
