"""Warm starts (planner/warm_start.py): each moves exactly what it claims, tail from the prior.

The planner is the toy of test_mpc.py (identity decoder, point-mass reward). A spy on ``ask``
records the search distribution and the rows of the first iteration after the warm start.
"""

import numpy as np
import pytest
import torch

from planner.elites import DiffusionElites, ElitesConfig
from planner.mpc import PlannerConfig
from planner.warm_start import WARM_STARTS, shift_latents
from tests.planner.test_mpc import A, H, make

N = 32


def first_ask_after_warm_start(warm_start: str, k: int = 1):
    """Plan once, then replan after k steps; returns (the elites' state after the first search,
    and the mean, std and rows of the replan's first ``ask()``)."""
    planner = make(PlannerConfig(population=N, iterations=2, warm_start=warm_start))
    planner.plan(np.zeros(2))
    elites = planner.elites
    before = {"mean": elites.mean, "best": elites.best.latent.clone(), "elites": elites.elites}
    planner._steps_since_plan = k  # as if k cached actions had been executed
    seen = []
    ask = elites.ask

    def spy():
        rows = ask()
        seen.append({"mean": elites.mean, "std": elites.std, "rows": rows.clone()})
        return rows

    elites.ask = spy
    planner.plan(np.zeros(2))
    return planner, before, seen[0]


def prior_tail(k: int) -> torch.Tensor:
    return torch.zeros(k, A)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize(("warm_start", "moved"), [("shift", "mean"), ("shift-best", "best")])
def test_shift_and_shift_best_centre_the_search_on_the_shifted_mean_or_best(warm_start, moved, k):
    _, before, first = first_ask_after_warm_start(warm_start, k)
    assert torch.equal(first["mean"][: H - k], before[moved][k:])
    assert torch.equal(first["mean"][H - k :], prior_tail(k))  # the prior's mean
    assert torch.equal(first["std"], torch.ones(H, A))  # init_std everywhere


@pytest.mark.parametrize("k", [1, 3])
def test_shift_elites_carries_the_shifted_elites_into_a_restarted_search(k):
    planner, before, first = first_ask_after_warm_start("shift-elites", k)
    carried = before["elites"]
    e = carried.shape[0]
    assert e == planner.elites.config.num_elites
    rows = first["rows"]
    assert torch.equal(rows[:e, : H - k], carried[:, k:])
    assert not torch.isin(rows[:e, H - k :], carried).any()  # tails are fresh prior draws
    assert not torch.isin(rows[e:], carried).any()  # the rest: fresh samples of the prior
    assert torch.equal(first["mean"], torch.zeros(H, A))
    assert torch.equal(first["std"], torch.ones(H, A))


def test_shift_mix_draws_half_of_the_first_population_from_the_prior():
    planner = make(PlannerConfig(population=N, iterations=2, warm_start="shift-mix"))
    planner.plan(np.zeros(2))
    old_mean = planner.elites.mean
    drawn, seen = [], []
    prior_samples, ask = planner.elites.prior_samples, planner.elites.ask
    planner.elites.prior_samples = lambda n: (drawn.append(prior_samples(n)), drawn[-1])[1]
    planner.elites.ask = lambda: (seen.append((planner.elites.mean, ask())), seen[-1][1])[1]
    planner.plan(np.zeros(2))
    mean, rows = seen[0]
    assert torch.equal(rows[: N // 2], drawn[0])
    assert torch.equal(mean[:-1], old_mean[1:])
    assert torch.equal(mean[-1], torch.zeros(A))


def test_none_restarts_from_the_prior_without_previous_rows():
    _, before, first = first_ask_after_warm_start("none")
    assert torch.equal(first["mean"], torch.zeros(H, A))
    assert torch.equal(first["std"], torch.ones(H, A))
    assert not torch.isin(first["rows"], before["elites"]).any()


@pytest.mark.parametrize("warm_start", WARM_STARTS)
def test_every_warm_start_replans_the_same_bit_for_bit_with_one_seed(warm_start):
    config = PlannerConfig(population=N, iterations=2, warm_start=warm_start)
    first, second = make(config), make(config)
    for step in range(3):
        state = np.array([0.05 * step, 0.0])
        np.testing.assert_array_equal(first.plan(state).plan, second.plan(state).plan)


def test_shift_latents_keeps_rows_k_on_and_draws_the_tail_from_the_prior():
    elites = DiffusionElites((H, A), ElitesConfig(init_std=0.5), seed=0)
    latents = torch.full((4000, H, A), 7.0)
    shifted = shift_latents(latents, 2, elites)
    assert torch.equal(shifted[:, : H - 2], latents[:, 2:])
    tail = shifted[:, H - 2 :]
    assert abs(float(tail.mean())) < 0.02 and abs(float(tail.std()) - 0.5) < 0.02
    assert torch.equal(shift_latents(latents, H, elites).abs() < 7.0, torch.ones_like(latents) > 0)
    with pytest.raises(ValueError, match="k must be an int >= 0"):
        shift_latents(latents, -1, elites)
