"""The planning thread policy: torch on one thread, rollouts on the cores given, applied once."""

import gymnasium as gym
import pytest
import torch

from envs.mujoco_tasks import make_task
from planner import threads
from planner.threads import ThreadPolicy, available_cores, planning_threads, use_planning_threads
from policies.diffusion_elites import DiffusionElitesPolicy


@pytest.fixture(autouse=True)
def fresh_policy(monkeypatch):
    """Each test starts with no policy in force and gives torch's thread count back."""
    monkeypatch.setattr(threads, "_current", None)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_torch_on_one_thread_and_the_pool_on_every_core():
    policy = planning_threads(3)
    assert (policy.cores, policy.torch_threads, policy.rollout_threads) == (3, 1, 3)
    assert planning_threads().cores == available_cores() >= 1


@pytest.mark.parametrize("cores", [0, -1, 1.5, True, "2"])
def test_a_bad_core_count_is_refused(cores):
    with pytest.raises(ValueError, match="cores must be an int >= 1"):
        ThreadPolicy(cores)


def test_use_planning_threads_sets_torch_and_the_pools_built_after_it():
    torch.set_num_threads(2)
    assert use_planning_threads(1) == ThreadPolicy(1)
    assert torch.get_num_threads() == 1
    assert make_task("reacher").objective().threads == 1
    use_planning_threads()  # None keeps the policy in force
    assert threads.current_planning_threads() == ThreadPolicy(1)


def test_a_policy_built_in_process_applies_it():
    torch.set_num_threads(2)
    env = gym.make("Reacher-v5")
    DiffusionElitesPolicy.for_env(env, lambda i: None)
    assert torch.get_num_threads() == 1
    assert threads.current_planning_threads() == planning_threads()


def test_run_mpc_applies_its_threads_flag(tmp_path):
    from experiments.run_mpc import RunArgs, run

    torch.set_num_threads(2)
    args = RunArgs(
        env="reacher", planner="random", episodes=1, max_steps=2, threads=1, no_render=True,
        runs_dir=str(tmp_path),
    )  # fmt: skip
    run(args)
    assert torch.get_num_threads() == 1
    assert threads.current_planning_threads() == ThreadPolicy(1)
