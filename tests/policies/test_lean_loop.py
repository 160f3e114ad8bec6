"""The planner's hot loop: arguments checked once per control step, the same plans as the checked
public calls, one rollout pool per planner."""

import numpy as np
import pytest

from envs.registry import make_env
from policies.setup import PlanningSetup


class CheckedDecoder:
    """A prior seen only through its checked ``decode``: the loop as it was before."""

    def __init__(self, prior):
        self.prior = prior
        self.latent_shape = prior.latent_shape
        self.decodes_in_one_call = prior.decodes_in_one_call

    def decoding(self, steps, cond=None):
        def decode(latents):
            rows = None if cond is None else cond.expand(len(latents), -1)
            return self.prior.decode(latents, steps, cond=rows)

        return decode

    def encode(self, trajectories, steps, cond=None):
        return self.prior.encode(trajectories, steps, cond=cond)


class CheckedObjective:
    """An objective without ``bind``: every call goes through its checked ``__call__``."""

    def __init__(self, objective):
        self.objective = objective

    def __call__(self, state, actions):
        return self.objective(state, actions)


def plans(task: str, steps: int, checked: bool) -> np.ndarray:
    env = make_env(task)
    planning = PlanningSetup(task, decoder="ddim").resolve(env)
    prior, objective, policy = planning.decoder, planning.objective, planning.policy()
    if checked:
        policy._ensure_planners(1)
        planner = policy.planners[0]
        planner.decoder = planner.final_decoder = CheckedDecoder(prior)
        planner.objective = CheckedObjective(objective)
    observation, _ = env.reset(seed=5)
    start, chosen = np.ones(1, dtype=bool), []
    for _ in range(steps):
        action, _ = policy.predict(observation[None], episode_start=start)
        start[:] = False
        chosen.append(policy.last_results[0].plan)
        observation, _, terminated, truncated, _ = env.step(action[0])
        assert not (terminated or truncated)
    return np.array(chosen)


@pytest.mark.parametrize("task, steps", [("unicycle-obstacles", 6), ("half-cheetah", 4)])
def test_the_lean_loop_plans_bit_for_bit_as_the_checked_calls(task, steps):
    np.testing.assert_array_equal(plans(task, steps, checked=False), plans(task, steps, True))


def test_one_rollout_pool_per_planner_at_a_fixed_budget():
    env = make_env("half-cheetah")
    planning = PlanningSetup("half-cheetah", decoder="ddim").resolve(env)
    objective, policy = planning.objective, planning.policy()
    observation, _ = env.reset(seed=0)
    sizes = []
    score = objective._rewards
    objective._rewards = lambda state, actions: (sizes.append(len(actions)), score(state, actions))[
        1
    ]
    for _ in range(3):
        action, _ = policy.predict(observation)
        observation, *_ = env.step(action)
    assert len(set(sizes)) >= 3  # the populations of a step differ (64, 62, then 2)
    assert objective.pools_built == 1


def test_a_call_on_part_of_a_larger_pool_scores_as_a_pool_of_its_size():
    from envs.mujoco_tasks import make_task

    task = make_task("hopper")
    task.env.reset(seed=1)
    state = task.snapshot()
    actions = np.random.default_rng(0).uniform(-1, 1, (64, 16, task.action_dim))
    shared = task.objective(threads=2)
    shared(state, actions)
    for n in (62, 2, 64):
        np.testing.assert_array_equal(
            shared(state, actions[:n]), task.objective()(state, actions[:n])
        )
    assert shared.pools_built == 1
