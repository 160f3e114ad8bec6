"""RayEvaluator and Ray islands on one private local Ray session (2 CPUs) for the module."""

import glob
import os
import socket
import traceback

import numpy as np
import pytest

from envs.mujoco_tasks import make_task
from planner.elites import ElitesConfig
from planner.islands import IslandConfig, search_islands
from planner.parallel import RayEvaluator
from planner.planning import Budget
from policies.planners import build_planner

pytest.importorskip("ray", reason="Ray is the optional extra: pip install -e '.[distributed]'")


def reacher_objective():
    return make_task("reacher").objective(threads=1)


@pytest.fixture(scope="module")
def reacher_state():
    task = make_task("reacher")
    task.env.reset(seed=3)
    return task.snapshot()


def first_action(state, actions):
    """A reward that names its candidate: its first action's first entry."""
    return actions[:, 0, 0] + 0.0 * state


def exploding(state, actions):
    raise ValueError(f"reward exploded on {len(actions)} candidates")


def test_rewards_come_back_in_the_candidates_order(ray_cluster):
    with RayEvaluator(lambda: first_action, actors=2) as evaluator:
        for n in (1, 2, 5, 64):  # one chunk, one each, uneven chunks, many
            actions = np.arange(n, dtype=np.float64).reshape(n, 1, 1) * np.ones((1, 4, 2))
            np.testing.assert_array_equal(evaluator(1.0, actions), np.arange(n))
    with pytest.raises(RuntimeError, match="called after close"):
        evaluator(1.0, actions)


def test_mujoco_rewards_equal_the_in_process_objective(ray_cluster, reacher_state):
    actions = np.random.default_rng(0).uniform(-1, 1, (7, 5, 2))  # 7 = chunks of 4 and 3
    expected = reacher_objective()(reacher_state, actions)
    with RayEvaluator(reacher_objective, actors=2) as evaluator:
        np.testing.assert_array_equal(evaluator(reacher_state, actions), expected)


def test_a_planner_plans_the_same_with_the_evaluator(ray_cluster, reacher_state):
    budget = Budget(horizon=5, action_dim=2, population=12, iterations=2)
    with RayEvaluator(reacher_objective, actors=2) as evaluator:
        plans = [
            build_planner("cem", objective, budget, seed=4).plan(reacher_state)
            for objective in (reacher_objective(), evaluator)
        ]
    np.testing.assert_array_equal(plans[0].plan, plans[1].plan)
    assert plans[0].reward_evaluations == plans[1].reward_evaluations == 24


def test_a_reward_error_surfaces_with_its_type_message_and_traceback(ray_cluster):
    with RayEvaluator(lambda: exploding, actors=2) as evaluator:
        with pytest.raises(ValueError, match="reward exploded on 3 candidates") as caught:
            evaluator(0.0, np.zeros((6, 2, 1)))
    text = "".join(traceback.format_exception(caught.value))
    assert "Raised on a Ray worker" in text and "in exploding" in text


def test_islands_on_actors_equal_islands_in_process(ray_cluster):
    config = ElitesConfig(population=8, elite_fraction=0.25)
    runs = [
        search_islands(two_peaks, (3,), 5, config, IslandConfig(2, 2, 2), seed=1, ray=remote)
        for remote in (False, True)
    ]
    assert runs[0].reward == runs[1].reward and runs[0].island == runs[1].island
    np.testing.assert_array_equal(runs[0].latent, runs[1].latent)
    np.testing.assert_array_equal(runs[0].island_rewards, runs[1].island_rewards)
    assert runs[0].evaluations == runs[1].evaluations == 2 * 8 * 5


def test_more_islands_than_cpus_are_refused_not_left_waiting(ray_cluster):
    with pytest.raises(ValueError, match="3 islands need one Ray CPU each"):
        search_islands(two_peaks, (3,), 1, islands=IslandConfig(islands=3), ray=True)


def two_peaks():
    """(decode, reward): the identity, and a reward with optima at +1 and -1 (the better)."""
    return (lambda z: z), lambda z: np.maximum(
        -((z - 1) ** 2).sum((1,)).numpy(), 0.5 - ((z + 1) ** 2).sum((1,)).numpy()
    )


def listening_addresses(pids: set[int]) -> list[str]:
    """Addresses of the TCP sockets (IPv4 and IPv6) listening in processes ``pids``."""
    owned = set()
    for pid in pids:
        for fd in glob.glob(f"/proc/{pid}/fd/*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owned.add(target[len("socket:[") : -1])
    addresses = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in owned:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(fields[1].split(":")[0])
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            addresses.append(socket.inet_ntop(family, words))
    return addresses


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        found.add(current := todo.pop())
        todo += parents.get(current, [])
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's /proc")
def test_the_local_cluster_listens_on_the_loopback_only(ray_cluster):
    with RayEvaluator(lambda: first_action, actors=2) as evaluator:  # workers up and listening
        evaluator(0.0, np.zeros((2, 1, 1)))
        addresses = listening_addresses(descendants(os.getpid()))
    assert len(addresses) >= 3, addresses  # GCS, raylet, this driver's core worker at least
    loopback = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
    assert set(addresses) <= loopback, f"Ray listens beyond the loopback: {addresses}"
