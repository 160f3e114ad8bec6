"""One count check for every config: an int (not a bool, not a float) of at least its minimum."""

import numpy as np
import pytest

from planner.denoiser import DenoiserConfig
from planner.elites_config import ElitesConfig
from planner.islands import IslandConfig
from planner.mpc import PlannerConfig
from planner.planning import Budget
from planner.threads import ThreadPolicy
from planner.training import TrainingConfig
from planner.validation import check_count
from planner.world_model import WorldModelConfig
from policies.icem import ICEMConfig
from policies.mppi import MPPIConfig
from policies.setup import PlanningSetup


@pytest.mark.parametrize(
    "make, field",
    [
        (PlannerConfig, "iterations"),  # accepted True before there was one check
        (PlannerConfig, "population"),
        (TrainingConfig, "steps"),
        (DenoiserConfig, "horizon"),
        (ElitesConfig, "mixture_components"),
        (IslandConfig, "islands"),
        (lambda **kw: WorldModelConfig(obs_dim=3, action_dim=2, **kw), "hidden"),
        (lambda cores: ThreadPolicy(cores), "cores"),
        (lambda horizon: Budget(horizon, action_dim=2), "horizon"),  # these three took True
        (ICEMConfig, "iterations"),
        (MPPIConfig, "iterations"),
        (lambda **kw: PlanningSetup("hopper", **kw), "population"),
    ],
)
@pytest.mark.parametrize("value", [True, 2.0, 0, -3])
def test_every_config_refuses_a_count_that_is_not_a_positive_int(make, field, value):
    with pytest.raises(ValueError, match=f"{field} must be an int >= 1"):
        make(**{field: value})


def test_check_count_takes_numpy_ints_and_names_its_bound_and_hint():
    check_count("n", np.int64(3))
    check_count("seed", 0, minimum=0)
    with pytest.raises(ValueError, match=r"^teacher_steps must be an int >= 2 \(S\), got 1$"):
        check_count("teacher_steps", 1, minimum=2, hint="S")
