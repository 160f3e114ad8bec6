"""reproduce_blog.py end to end on a tiny prior; the feasibility residual and inpainting it uses."""

import json
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from envs.datasets import unicycle_arcs
from envs.unicycle_feasibility import unicycle_feasibility_residual
from planner.denoiser import DenoiserConfig
from planner.training import TrainingConfig, train_prior

REPO = Path(__file__).resolve().parents[2]
H = 24  # >= 2 * 8 + 1: the script judges feasibility over 8-step windows
ARC_BOUNDS = {"dt": 0.01, "v_range": (0.5, 1.0), "omega_max": 4.0}


@pytest.fixture(scope="module")
def tiny_prior_path(tmp_path_factory):
    """A small MLP prior over (x, y) arcs of H steps, trained for a moment and saved."""
    arcs = unicycle_arcs(512, horizon=H, seed=0).states
    config = DenoiserConfig(kind="mlp", horizon=H, channels=2, mlp_hidden=64, mlp_depth=2)
    training = TrainingConfig(steps=60, batch_size=64, warmup_steps=5, log_every=20, seed=0)
    prior, _ = train_prior(arcs, config, training, progress=False)
    prior.task = "unicycle"
    return prior.save(tmp_path_factory.mktemp("prior") / "tiny-state.pt")


@pytest.fixture(scope="module")
def tiny_prior(tiny_prior_path):
    from planner.prior import DiffusionPrior

    return DiffusionPrior.load(tiny_prior_path)


def test_script_writes_its_table_json_and_figures(tiny_prior_path, tmp_path):
    out = tmp_path / "results.json"
    command = [
        sys.executable, "experiments/reproduce_blog.py", "--prior", str(tiny_prior_path),
        "--population", "16", "--iterations", "2", "--steps", "5", "--dataset-samples", "50",
        "--out-dir", str(tmp_path / "run"), "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "median_elite_distance" in done.stdout

    results = json.loads(out.read_text())
    assert results["steps"] == 5 and results["population"] == 16
    assert [r["iteration"] for r in results["iterations"]] == [1, 2]
    rows = results["iterations"]
    assert results["num_elites"] == 2  # max(1, ceil(0.1 * 16))
    for row in rows:
        # a share of the 2 elites, so 0, 1/2 or 1
        assert row["frac_elites_within_0_02"] * 2 in (0.0, 1.0, 2.0)
    best = [row["best_distance"] for row in rows]
    assert [row["best_distance_so_far"] for row in rows] == list(np.minimum.accumulate(best))
    # The reported best trajectory is the one with the reported best distance.
    end = np.asarray(results["best_trajectory"])[-1]
    assert np.linalg.norm(end - np.asarray(results["goal"])) == pytest.approx(min(best), rel=1e-5)
    # The search moves towards the goal: measured best 0.299 -> 0.259 and population median
    # 0.321 -> 0.299 over the 2 iterations (this prior's short arcs cannot reach the goal).
    assert best[-1] < 0.95 * best[0]
    assert rows[-1]["median_distance"] < rows[0]["median_distance"]
    assert set(results["feasibility"]) >= {"dataset", "de", "inpainting"}
    assert results["feasibility"]["dataset"] == pytest.approx(0.0, abs=1e-6)
    assert results["inpainting"]["max_end_distance"] == 0.0
    assert results["inpainting"]["max_start_distance"] < 1e-6  # measured 3e-11 (float32 start)
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == results
    for name in ("iterations.png", "inpainting.png", "dataset.png"):
        assert (tmp_path / "run" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert (tmp_path / "run" / "iterations.gif").read_bytes()[:6] == b"GIF89a"
    assert len(imageio.mimread(tmp_path / "run" / "iterations.gif")) == 2  # one frame each


@pytest.fixture(scope="module")
def arcs():
    return unicycle_arcs(2000, horizon=64, seed=1).states


@pytest.mark.parametrize("stride", [1, 8])
def test_feasibility_residual_is_zero_on_arcs_and_large_on_breaks(arcs, stride):
    residual = unicycle_feasibility_residual(arcs, **ARC_BOUNDS, stride=stride)
    assert residual.shape == (2000,)
    assert residual.max() == 0.0  # the bounds hold for every drivable path, not just about

    for jump_at in (32, 63):  # a jump of ~0.07 (7-14 step lengths) inside or at the end
        broken = arcs[:50].copy()
        broken[:, jump_at:] += 0.05
        # measured minimum over the 50: 6.6 (stride 1), 0.24 (stride 8)
        threshold = {1: 3.0, 8: 0.1}[stride]
        assert unicycle_feasibility_residual(broken, **ARC_BOUNDS, stride=stride).min() > threshold


def test_feasibility_residual_flags_jitter_per_step_but_not_over_windows(arcs):
    zigzag = arcs[:50].copy()
    zigzag[:, 1::2, 1] += 0.005  # lateral steps of about one step length
    # measured min 21: every chord turns by ~1 rad, 25x the yaw-rate bound
    assert unicycle_feasibility_residual(zigzag, **ARC_BOUNDS).min() > 10.0

    noisy = arcs[:50] + np.random.default_rng(0).normal(0.0, 3e-4, arcs[:50].shape)
    # noise of 4% of a step length: measured min 2.5 per step, max 0.006 over 8-step windows
    assert unicycle_feasibility_residual(noisy, **ARC_BOUNDS).min() > 1.0
    assert unicycle_feasibility_residual(noisy, **ARC_BOUNDS, stride=8).max() < 0.05


def test_feasibility_residual_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, H, 2\)"):
        unicycle_feasibility_residual(np.zeros((8, 2)), **ARC_BOUNDS)
    with pytest.raises(ValueError, match="lower stride"):
        unicycle_feasibility_residual(np.zeros((1, 16, 2)), **ARC_BOUNDS, stride=8)
    with pytest.raises(ValueError, match="stride"):
        unicycle_feasibility_residual(np.zeros((1, 16, 2)), **ARC_BOUNDS, stride=0)
    with pytest.raises(ValueError, match="omega_max"):
        unicycle_feasibility_residual(np.zeros((1, 8, 2)), 0.01, (0.5, 1.0), 0.0)


def _endpoints_known(horizon, start, goal):
    mask = torch.zeros(horizon, 2, dtype=torch.bool)
    mask[[0, -1]] = True
    values = torch.zeros(horizon, 2)
    values[0], values[-1] = torch.tensor(start), torch.tensor(goal)
    return mask, values


def test_inpainting_imposes_the_known_values_exactly_and_is_deterministic(tiny_prior):
    latents = torch.randn(32, H, 2, generator=torch.Generator().manual_seed(0))
    # The goal lies beyond these short arcs' bounds, so the clamp to the data range must not
    # move it either.
    mask, values = _endpoints_known(H, (0.008, 0.0), (0.4, 0.2))
    first = tiny_prior.decode(latents, 5, known=(mask, values))
    again = tiny_prior.decode(latents.clone(), 5, known=(mask, values))
    assert torch.equal(first, again)
    assert torch.equal(first[:, mask], values[mask].expand(32, -1))

    plain = tiny_prior.decode(latents, 5)
    free = tiny_prior.decode(latents, 5, known=(torch.zeros_like(mask), values))
    assert torch.equal(free, plain)
    # the imposed ends move the free middle too (measured mean change 0.0032; arcs span ~0.2)
    assert (first[:, 1:-1] - plain[:, 1:-1]).abs().mean() > 1e-3


def test_inpainting_rejects_bad_known(tiny_prior):
    latents = torch.zeros(2, H, 2)
    mask, values = _endpoints_known(H, (0.0, 0.0), (0.4, 0.2))
    with pytest.raises(TypeError, match="bool"):
        tiny_prior.decode(latents, 2, known=(mask.float(), values))
    with pytest.raises(ValueError, match="broadcast"):
        tiny_prior.decode(latents, 2, known=(mask[:5], values))
    with pytest.raises(TypeError, match="pair"):
        tiny_prior.decode(latents, 2, known=mask)
