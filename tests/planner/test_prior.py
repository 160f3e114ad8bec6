"""DiffusionPrior: decode/encode contract, normaliser, conditioning, checkpoints."""

import numpy as np
import pytest
import torch

from planner.checkpoint import CheckpointError, TaskMismatchError
from planner.denoiser import DenoiserConfig, build_denoiser
from planner.diffusion import NoiseSchedule
from planner.knots import KnotSchedule
from planner.normalizer import Normalizer
from planner.prior import DiffusionPrior

H, C = 12, 2


def actions(n=256, seed=0):
    """Action-like data in [-1, 1]."""
    return np.tanh(np.random.default_rng(seed).normal(size=(n, H, C))).astype(np.float32)


def make_prior(kind="unet", cond_dim=0, train_steps=1000):
    """A prior with random (not zero) output weights, so decodes depend on the latent."""
    config = DenoiserConfig(kind=kind, horizon=H, channels=C, cond_dim=cond_dim)
    torch.manual_seed(0)
    model = build_denoiser(config)
    with torch.no_grad():
        for parameter in model.out[-1].parameters():
            parameter.normal_(0, 0.2, generator=torch.Generator().manual_seed(1))
    cond_normalizer = (
        Normalizer.fit(np.arange(2 * cond_dim).reshape(2, cond_dim)) if cond_dim else None
    )
    normalizer = Normalizer.fit(actions())
    return DiffusionPrior(
        config, normalizer, NoiseSchedule(train_steps), model, cond_normalizer=cond_normalizer
    )


def latents(n=8, seed=0, scale=1.0):
    return scale * torch.randn(n, H, C, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def prior():
    return make_prior()


def test_properties(prior):
    assert (prior.horizon, prior.channels, prior.latent_shape, prior.cond_dim) == (H, C, (H, C), 0)
    assert prior.device == torch.device("cpu") and prior.config.kind == "unet"
    assert not prior.model.training


@pytest.mark.parametrize("kind", ["unet", "mlp"])
def test_decode_is_deterministic_clamped_and_batch_independent(kind):
    prior = make_prior(kind)
    z = latents(16, scale=3.0)
    out = prior.decode(z, steps=4)
    assert out.shape == (16, H, C) and out.dtype == torch.float32
    assert torch.equal(out, prior.decode(z.clone(), steps=4))
    # clamped to the data bounds (inside [-1, 1] for tanh data), and the clamp is active
    low, high = prior.normalizer.low, prior.normalizer.high
    assert bool(torch.all(out >= low)) and bool(torch.all(out <= high))
    assert bool(torch.any(out == high))
    # one latent alone decodes like its row in the batch (float rounding only: 1e-5)
    for row in (0, 7, 15):
        torch.testing.assert_close(
            prior.decode(z[row : row + 1], steps=4)[0], out[row], atol=1e-5, rtol=0
        )


def test_decode_depends_on_latent_and_steps(prior):
    a, b = prior.decode(latents(4, seed=1), 2), prior.decode(latents(4, seed=2), 2)
    assert (a - b).abs().max() > 0.05
    assert (prior.decode(latents(4, seed=1), 5) - a).abs().max() > 1e-3


def test_decode_accepts_numpy(prior):
    z = latents(3)
    out = prior.decode(z.numpy().astype(np.float64), steps=2)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, prior.decode(z, steps=2))


@pytest.mark.parametrize(
    ("shape", "message"),
    [((H, C), r"add a batch axis"), ((4, H + 1, C), r"\(N, H=12, C=2\)"), ((0, H, C), "N >= 1")],
)
def test_decode_shape_errors(prior, shape, message):
    with pytest.raises(ValueError, match=message):
        prior.decode(torch.zeros(shape), steps=2)


def test_decode_rejects_nonfinite_and_bad_steps(prior):
    z = latents(2)
    z[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        prior.decode(z, steps=2)
    with pytest.raises(ValueError, match=r"steps must be in 1\.\.1000"):
        prior.decode(latents(2), steps=0)


def test_conditioning_shapes():
    conditioned = make_prior(cond_dim=3)
    z = latents(4)
    shared = conditioned.decode(z, 3, cond=np.array([0.5, -1.0, 2.0]))
    per_row = conditioned.decode(z, 3, cond=torch.tensor([[0.5, -1.0, 2.0]]).expand(4, 3))
    torch.testing.assert_close(shared, per_row)
    assert (conditioned.decode(z, 3, cond=torch.zeros(3)) - shared).abs().max() > 1e-3
    with pytest.raises(ValueError, match="is conditioned"):
        conditioned.decode(z, 3)
    with pytest.raises(ValueError, match=r"cond must be \(3,\) or \(N=4, K=3\)"):
        conditioned.decode(z, 3, cond=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="unconditioned"):
        make_prior().decode(z, 3, cond=torch.zeros(3))


def test_encode_shape_and_determinism(prior):
    x = torch.from_numpy(actions(5, seed=3))
    z = prior.encode(x, steps=5)
    assert z.shape == (5, H, C) and bool(torch.isfinite(z).all())
    assert torch.equal(z, prior.encode(x.numpy(), steps=5))


def test_normalizer_fit():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(500, H, C))
    data[..., 1] = 7.0  # a constant channel must not divide by zero
    standard = Normalizer.fit(data)
    model_space = standard.normalize(torch.as_tensor(data, dtype=torch.float32))
    assert model_space[..., 0].mean().abs() < 1e-4 and (model_space[..., 0].std() - 1).abs() < 1e-3
    assert standard.scale[1] == 1.0 and torch.all(model_space[..., 1] == 0)
    minmax = Normalizer.fit(data, method="minmax")
    ranged = minmax.normalize(torch.as_tensor(data, dtype=torch.float32))
    assert ranged[..., 0].min() == pytest.approx(-1, abs=1e-5) and ranged[
        ..., 0
    ].max() == pytest.approx(1, abs=1e-5)
    back = standard.denormalize(model_space)
    torch.testing.assert_close(back, torch.as_tensor(data, dtype=torch.float32), atol=1e-4, rtol=0)
    assert torch.all(standard.denormalize(torch.full((1, C), 100.0)) == standard.high)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Normalizer.fit(np.zeros((0, 2))), "finite"),
        (lambda: Normalizer.fit(np.full((3, 2), np.nan)), "finite"),
        (lambda: Normalizer.fit(np.zeros((3, 2)), method="zscore"), "method"),
        (lambda: Normalizer(*[torch.zeros(2)] * 4), "positive"),
        (
            lambda: Normalizer(torch.zeros(2), torch.ones(3), torch.zeros(2), torch.zeros(2)),
            "one shape",
        ),
    ],
)
def test_normalizer_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_prior_rejects_mismatched_normalizer():
    with pytest.raises(ValueError, match="normalizer has 3 channels"):
        DiffusionPrior(DenoiserConfig(horizon=H, channels=C), Normalizer.fit(np.zeros((4, 3))))


@pytest.mark.parametrize("cond_dim", [0, 3])
def test_save_load_round_trip(tmp_path, cond_dim):
    original = make_prior(kind="mlp", cond_dim=cond_dim, train_steps=500)
    path = original.save(tmp_path / "sub" / "prior.pt")
    assert sorted(p.name for p in path.parent.iterdir()) == ["prior.pt"]  # no temp file left
    loaded = DiffusionPrior.load(path)
    assert loaded.config == original.config and loaded.schedule == original.schedule
    cond = torch.arange(3.0) if cond_dim else None
    z = latents(6)
    assert torch.equal(loaded.decode(z, 3, cond), original.decode(z, 3, cond))


def test_the_knot_schedule_is_saved_and_a_file_without_one_has_a_knot_per_step(tmp_path):
    original = make_prior(kind="mlp", train_steps=500)
    assert original.knot_schedule == KnotSchedule(H)
    original.knot_schedule = KnotSchedule(4 * H, H, "linear")
    loaded = DiffusionPrior.load(original.save(tmp_path / "prior.pt"))
    assert loaded.knot_schedule == KnotSchedule(4 * H, H, "linear")
    with pytest.raises(ValueError, match=f"decodes {H} knots"):
        loaded.knot_schedule = KnotSchedule(4 * H, H + 1)


@pytest.fixture()
def checkpoint(tmp_path, prior):
    return prior.save(tmp_path / "prior.pt")


def test_truncated_checkpoint(checkpoint):
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"prior\.pt: cannot be read"):
        DiffusionPrior.load(checkpoint)


def test_corrupted_header(checkpoint):
    blob = checkpoint.read_bytes()
    checkpoint.write_bytes(bytes(64) + blob[64:])
    with pytest.raises(CheckpointError, match=r"prior\.pt"):
        DiffusionPrior.load(checkpoint)


def test_corrupted_weights_are_caught_by_checksum(checkpoint, prior):
    blob = bytearray(checkpoint.read_bytes())
    weight = prior.model.out[-1].weight.detach().numpy().tobytes()
    start = blob.find(weight)
    assert start > 0
    blob[start : start + 4] = bytes(4)  # torch.load alone would load these bytes silently
    checkpoint.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        DiffusionPrior.load(checkpoint)


def test_wrong_version_and_missing_key(checkpoint):
    payload = torch.load(checkpoint, weights_only=True)
    torch.save({**payload, "format_version": 99}, checkpoint)
    with pytest.raises(CheckpointError, match="format version 99"):
        DiffusionPrior.load(checkpoint)
    del payload["normalizer"]
    torch.save(payload, checkpoint)
    with pytest.raises(CheckpointError, match=r"missing \['normalizer'\]"):
        DiffusionPrior.load(checkpoint)


def test_missing_file_and_error_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="no prior checkpoint"):
        DiffusionPrior.load(tmp_path / "absent.pt")
    assert issubclass(CheckpointError, ValueError)


def test_saved_checkpoint_is_readable_like_any_written_file(tmp_path, prior):
    import os

    old = os.umask(0o022)
    try:
        path = prior.save(tmp_path / "shared.pt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_prior_for_another_task_is_refused_with_both_names(tmp_path, prior):
    reacher = DiffusionPrior(prior.config, prior.normalizer, model=prior.model, task="reacher")
    path = reacher.save(tmp_path / "reacher.pt")
    with pytest.raises(TaskMismatchError, match="trained for task 'reacher', not 'hopper'") as info:
        DiffusionPrior.load(path, task="hopper")
    assert (info.value.recorded, info.value.expected) == ("reacher", "hopper")
    assert isinstance(info.value, CheckpointError)
    assert DiffusionPrior.load(path, task="reacher").task == "reacher"
