"""Planning-only task cost terms: how they rank candidates, what they charge, what they never
touch (the reported return), and their command-line spelling."""

import gymnasium as gym
import numpy as np
import pytest

from envs.mujoco_rewards import (
    COST_TERMS,
    CostTerm,
    PlanningCosts,
    cost_terms,
    format_costs,
    parse_costs,
)
from envs.mujoco_tasks import make_task
from envs.registry import TASKS, make_env
from experiments.harness.episodes import run_episode
from policies.setup import PlanningSetup

N, H = 6, 12


@pytest.fixture(autouse=True)
def _mujoco_log_in_tmp(tmp_path, monkeypatch):
    """MuJoCo appends its warnings to MUJOCO_LOG.TXT in the working directory: not the repo's."""
    monkeypatch.chdir(tmp_path)


def hopper_start(seed: int = 2):
    task = make_task("hopper")
    task.env.reset(seed=seed)
    return task, task.snapshot()


def records(pitch: float, height: float = 1.25, steps: int = 4):
    """Synthetic records of one candidate standing still at ``height`` with ``pitch``."""
    qpos = np.zeros((1, steps, 6))
    qpos[..., 1], qpos[..., 2] = height, pitch
    return {"qpos": qpos}, qpos.copy(), np.zeros((1, steps, 3))


# Ranking


def test_an_upright_candidate_outranks_a_leaning_one_all_else_equal():
    env = gym.make("Hopper-v5").unwrapped
    costs = PlanningCosts.from_env(env, parse_costs("upright=3"))
    upright, leaning = costs(*records(0.0)), costs(*records(0.3))
    assert (upright == 0).all() and np.allclose(leaning, 3 * 0.3**2)
    assert upright.sum() < leaning.sum()


@pytest.mark.parametrize(
    ("spelling", "pitch", "height", "expected"),
    [
        ("height=10@1.3", 0.0, 1.0, 10 * 0.3**2),
        ("height=10", 0.0, 1.0, 10 * 0.25**2),  # target: the initial torso height, 1.25
        ("flip=2", 2.0, 1.0, 2 * (2.0 - np.pi / 2)),
        ("flip=2", 0.5, 1.0, 0.0),
        ("flip=2", 2 * np.pi + 0.5, 1.0, 0.0),  # a full turn is upright again
        ("flip=2@1", -1.5, 1.0, 2 * 0.5),
    ],
)
def test_body_terms_charge_as_documented(spelling, pitch, height, expected):
    env = gym.make("Hopper-v5").unwrapped
    costs = PlanningCosts.from_env(env, parse_costs(spelling))
    assert np.allclose(costs(*records(pitch, height)), expected)


def test_the_objective_charges_each_step_up_to_the_terminal_one():
    """Objective with costs = objective without - the terms of the env's own states, summed up
    to each candidate's terminal step."""
    task, state = hopper_start()
    actions = np.random.default_rng(0).uniform(-1, 1, (N, H, task.action_dim))
    weights = parse_costs("height=10@1.3,upright=3,speed=1@0.5,control=0.1")
    plain = task.objective(threads=1)(state, actions)
    charged = task.objective(threads=1, costs=weights)(state, actions)
    env, expected = task.env.unwrapped, np.zeros(N)
    for i, sequence in enumerate(actions):
        task.restore(env, state)
        for action in sequence:
            x = env.data.qpos[0]
            env_action = task.scale_actions(action)
            _, _, terminated, _, _ = env.step(env_action)
            z, pitch = env.data.qpos[1], env.data.qpos[2]
            speed = (env.data.qpos[0] - x) / env.dt
            expected[i] += 10 * (z - 1.3) ** 2 + 3 * pitch**2 + (speed - 0.5) ** 2
            expected[i] += 0.1 * np.square(env_action).sum()
            if terminated:
                break
    assert np.allclose(plain - charged, expected, rtol=1e-9, atol=1e-9)


def test_forward_at_weight_one_plans_without_the_envs_forward_reward():
    task, state = hopper_start()
    actions = np.random.default_rng(1).uniform(-1, 1, (N, H, task.action_dim))
    with_forward = task.objective(threads=1)(state, actions)
    without = task.objective(threads=1, costs=parse_costs("forward=1"))(state, actions)
    final_x = np.empty(N)
    for i, sequence in enumerate(actions):
        task.restore(task.env.unwrapped, state)
        for action in sequence:
            *_, terminated, _, _ = task.env.unwrapped.step(task.scale_actions(action))
            if terminated:
                break
        final_x[i] = task.env.unwrapped.data.qpos[0]
    start_x = state[1]  # mj_getState order: time, then qpos
    forward = (
        task.env.unwrapped._forward_reward_weight * (final_x - start_x) / task.env.unwrapped.dt
    )
    assert np.allclose(with_forward - without, forward)


def test_zero_weights_leave_the_objective_bit_for_bit():
    task, state = hopper_start()
    actions = np.random.default_rng(2).uniform(-1, 1, (N, H, task.action_dim))
    zero = ",".join(f"{name}=0" + ("@1" if name == "speed" else "") for name in COST_TERMS)
    today = task.objective(threads=1)(state, actions)
    assert np.array_equal(task.objective(threads=1, costs=parse_costs(zero))(state, actions), today)
    assert not task.objective(threads=1, costs=parse_costs(zero)).costs


def test_only_half_cheetah_declares_a_term_its_flip_measured_to_help():
    declared = {name: spec.costs for name, spec in TASKS.items() if spec.costs}
    assert declared == {"half-cheetah": (CostTerm("flip", 100.0),)}
    assert PlanningSetup("half-cheetah").objective(make_env("half-cheetah")).costs
    assert not PlanningSetup("half-cheetah", costs="none").objective(make_env("half-cheetah")).costs


def test_terms_a_task_lacks_are_refused_naming_it():
    with pytest.raises(ValueError, match="planar legged torso"):
        make_task("swimmer").objective(costs=parse_costs("upright=1"))
    with pytest.raises(ValueError, match="forward motion"):
        make_task("reacher").objective(costs=parse_costs("speed=1@1"))
    make_task("reacher").objective(costs=parse_costs("control=1"))


# The reported return


def test_costs_never_enter_the_reported_return():
    """The episode's return is the env's rewards for the actions it took, with costs on."""

    class Logged(gym.Wrapper):
        def step(self, action):
            taken.append(np.array(action))
            return super().step(action)

    taken: list[np.ndarray] = []
    env = Logged(make_env("hopper"))
    setup = PlanningSetup(
        "hopper", planner="random", population=8, iterations=1, costs="height=10@1.3,upright=3"
    )
    episode = run_episode(env, setup.policy(env), seed=3, max_steps=8, recorder=None)
    replay = gym.make("Hopper-v5")
    replay.reset(seed=3)
    rewards = [replay.step(action)[1] for action in taken]
    assert episode["return"] == sum(rewards) and episode["rewards"] == rewards


# Spelling


def test_the_syntax_reads_weights_targets_and_none():
    terms = parse_costs("height=10@1.3, upright=3,speed=1.5@1")
    assert terms == (CostTerm("height", 10, 1.3), CostTerm("upright", 3), CostTerm("speed", 1.5, 1))
    assert parse_costs("none") == () and format_costs(()) == "none"
    assert parse_costs(format_costs(terms)) == terms
    assert cost_terms({"height": (10, 1.3), "upright": 3, "speed": (1.5, 1)}) == terms


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("tilt=1", "unknown cost term 'tilt'"),
        ("height", "NAME=WEIGHT"),
        ("height=ten", "NAME=WEIGHT"),
        ("height=1@", "NAME=WEIGHT"),
        ("height=-1", ">= 0"),
        ("height=nan", ">= 0"),
        ("speed=1", "speed=WEIGHT@TARGET"),
        ("control=1@2", "takes no @TARGET"),
        ("upright=1,upright=2", "twice"),
    ],
)
def test_bad_costs_are_refused_saying_the_syntax(text, mentions):
    with pytest.raises(ValueError, match=mentions):
        parse_costs(text)
