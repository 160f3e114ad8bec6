"""The planning thread policy: torch on one thread, rollouts on the cores given, applied once."""

import gymnasium as gym
import pytest
import torch

from envs.mujoco_tasks import make_task
from planner import threads
from planner.threads import (
    FastestThreads,
    ThreadPolicy,
    available_cores,
    planning_threads,
    use_planning_threads,
)
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


class FakeJob:
    """A job whose run on ``threads`` takes ``costs[threads]`` seconds per unit of work on a fake
    clock (``first``: the extra cost of each count's first run)."""

    def __init__(self, costs: dict[int, float], first: float = 0.0) -> None:
        self.costs, self.first, self.now, self.runs = costs, first, 0.0, []

    def __call__(self, threads: int, work: float = 1.0) -> int:
        self.now += self.costs[threads] * work + (self.first if threads not in self.runs else 0)
        self.runs.append(threads)
        return threads


def test_fastest_threads_tries_each_in_turn_then_keeps_the_faster():
    job = FakeJob({1: 2.0, 4: 1.0}, first=100.0)  # a slow first run of each is not counted
    fastest = FastestThreads((1, 4), trials=2, clock=lambda: job.now)
    for _ in range(6):
        assert fastest.chosen is None
        fastest.run(job, work=1.0)
    assert job.runs == [1, 4, 1, 4, 1, 4]
    assert fastest.chosen == 4
    assert fastest.seconds == {1: [2.0, 2.0], 4: [1.0, 1.0]}
    assert [fastest.run(job, work=1.0) for _ in range(3)] == [4, 4, 4]
    assert fastest.seconds == {1: [2.0, 2.0], 4: [1.0, 1.0]}  # no longer timed


def test_fastest_threads_compares_seconds_per_unit_of_work():
    job = FakeJob({1: 1.0, 2: 1.5})  # per unit: 2 threads are slower
    fastest = FastestThreads((2, 1), trials=1, clock=lambda: job.now)
    for work in (1.0, 1.0, 2.0, 10.0):  # 2 threads get the small runs, 1 the big one
        fastest.run(lambda threads, w=work: job(threads, w), work=work)
    assert fastest.seconds == {2: [1.5], 1: [1.0]}
    assert fastest.chosen == 1


def test_fastest_threads_leaves_unmeasured_runs_out():
    job = FakeJob({1: 1.0, 2: 0.5})
    fastest = FastestThreads((1, 2), trials=1, clock=lambda: job.now)
    assert [fastest.run(job, 1.0, measured=False) for _ in range(5)] == [1] * 5
    assert fastest.chosen is None and fastest.seconds == {1: [], 2: []}


def test_fastest_threads_with_one_option_times_nothing():
    clock_reads = []
    fastest = FastestThreads((3, 3), clock=lambda: clock_reads.append(0) or 0.0)
    assert (fastest.options, fastest.chosen) == ((3,), 3)
    assert fastest.run(lambda threads: threads, work=1.0) == 3
    assert clock_reads == []


@pytest.mark.parametrize(
    ("options", "trials", "match"),
    [((), 3, "at least one"), ((0, 2), 3, "threads must be"), ((1, 2), 0, "trials must be")],
)
def test_fastest_threads_refuses_bad_options(options, trials, match):
    with pytest.raises(ValueError, match=match):
        FastestThreads(options, trials)
