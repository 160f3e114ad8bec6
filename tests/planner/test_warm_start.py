"""Warm starts (planner/warm_start.py): each moves exactly what it claims, tail from the prior.

The planner is the toy of test_mpc.py (identity decoder, point-mass reward). Spies on ``ask``
and ``prior_samples`` record the search distribution, the rows of the replan's first iteration
and the prior draws of the warm start.
"""

import numpy as np
import pytest
import torch

from planner.mpc import PlannerConfig
from planner.warm_start import WARM_STARTS
from tests.planner.test_mpc import A, H, make

N = 32


def first_ask_after_warm_start(warm_start: str, k: int = 1) -> tuple[dict, dict]:
    """Plan, then replan as if k cached actions had run. Returns the first ``plan`` (H, A) and
    the search's ``mean`` (H, A) after it, and the replan's first ``ask()``: the distribution's
    ``mean`` and ``std`` (H, A), its ``rows`` (N, H, A) and the warm start's ``prior`` draws."""
    planner = make(PlannerConfig(population=N, iterations=2, warm_start=warm_start))
    plan = planner.plan(np.zeros(2)).plan
    elites = planner.elites
    before = {"plan": plan, "mean": elites.mean}
    planner._steps_since_plan = k
    first = {"prior": []}
    ask, prior_samples = elites.ask, elites.prior_samples

    def spy_ask():
        if "rows" not in first:
            first.update(mean=elites.mean, std=elites.std, rows=ask())
            return first["rows"]
        return ask()

    def spy_prior(n):
        first["prior"].append(prior_samples(n))
        return first["prior"][-1]

    elites.ask, elites.prior_samples = spy_ask, spy_prior
    planner.plan(np.zeros(2))
    return before, first


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("warm_start", ["shift", "shift-mix"])
def test_shifts_move_the_mean_k_steps_with_the_priors_tail_and_std(warm_start, k):
    before, first = first_ask_after_warm_start(warm_start, k)
    assert torch.equal(first["mean"][: H - k], before["mean"][k:])
    assert torch.equal(first["mean"][H - k :], torch.zeros(k, A))  # the prior's mean
    assert torch.equal(first["std"], torch.ones(H, A))  # init_std everywhere


def test_shift_mix_draws_the_first_half_of_the_first_population_from_the_prior():
    _, first = first_ask_after_warm_start("shift-mix")
    (drawn,) = first["prior"]
    assert drawn.shape == (N // 2, H, A)
    assert torch.equal(first["rows"][: N // 2], drawn)
    assert not torch.isin(first["rows"][N // 2 :], drawn).any()


def test_shift_samples_the_whole_first_population_from_the_shifted_gaussian():
    assert first_ask_after_warm_start("shift")[1]["prior"] == []


@pytest.mark.parametrize("k", [1, 3])
def test_inversion_centres_on_the_previous_plan_shifted_k_steps(k):
    """The identity decoder inverts to itself: the mean is the plan moved k steps, its tail
    the plan's last action (no fill action is set)."""
    before, first = first_ask_after_warm_start("inversion", k)
    plan = before["plan"]
    expected = np.concatenate([plan[k:], np.repeat(plan[-1:], k, axis=0)])
    np.testing.assert_allclose(first["mean"].numpy(), expected, atol=1e-6)


def test_none_restarts_from_the_prior():
    _, first = first_ask_after_warm_start("none")
    assert torch.equal(first["mean"], torch.zeros(H, A))
    assert torch.equal(first["std"], torch.ones(H, A))


@pytest.mark.parametrize("warm_start", WARM_STARTS)
def test_every_warm_start_replans_the_same_bit_for_bit_with_one_seed(warm_start):
    config = PlannerConfig(population=N, iterations=2, warm_start=warm_start)
    first, second = make(config), make(config)
    for step in range(3):
        state = np.array([0.05 * step, 0.0])
        np.testing.assert_array_equal(first.plan(state).plan, second.plan(state).plan)
