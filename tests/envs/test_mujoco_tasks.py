"""MuJoCo planning tasks: the planning reward equals the env's own step rewards, exactly."""

import gymnasium
import numpy as np
import pytest

from envs.mujoco_rewards import SUPPORTED_ENV_IDS
from envs.mujoco_tasks import TASKS, MujocoTask, make_task
from planner.objective import Objective

N, H = 8, 10


@pytest.fixture(autouse=True)
def _mujoco_log_in_tmp(tmp_path, monkeypatch):
    """MuJoCo appends its warnings to MUJOCO_LOG.TXT in the working directory: not the repo's."""
    monkeypatch.chdir(tmp_path)


def start_state(task: MujocoTask, seed: int, steps: int = 10, scale: float = 1.0) -> np.ndarray:
    """Snapshot after ``steps`` random env steps (actions uniform in [-scale, scale]) from reset."""
    rng = np.random.default_rng(seed)
    task.env.reset(seed=seed)
    for _ in range(steps):
        task.env.unwrapped.step(task.scale_actions(rng.uniform(-scale, scale, task.action_dim)))
    return task.snapshot()


def env_returns(task: MujocoTask, state: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, int]:
    """Sum of ``env.step`` rewards of each action sequence ``(N, H, A)`` from ``state``, stopping
    at termination; also how many sequences terminated."""
    returns, fell = env_returns_and_falls(task, state, actions)
    return returns, int(fell.sum())


def env_returns_and_falls(task: MujocoTask, state: np.ndarray, actions: np.ndarray):
    """Like :func:`env_returns`, with which sequences terminated, ``(N,)`` bool."""
    env = task.env.unwrapped
    returns, fell = np.zeros(len(actions)), np.zeros(len(actions), dtype=bool)
    for i, sequence in enumerate(actions):
        task.restore(env, state)
        for action in sequence:
            _, reward, term, _, _ = env.step(task.scale_actions(action))
            returns[i] += reward
            if term:
                fell[i] = True
                break
    return returns, fell


# (short name, seed, warm-up steps, action scale, whether some but not all candidates terminate):
# seeds and scales picked so that every terminating task scores terminated and surviving
# candidates; warm-up and candidate actions are uniform in [-scale, scale]
CASES = [
    ("inverted-pendulum", 1, 10, 0.1, True),
    ("reacher", 0, 10, 1.0, False),
    ("half-cheetah", 0, 10, 1.0, False),
    ("hopper", 2, 10, 1.0, True),
    ("walker2d", 2, 10, 1.0, True),
    ("swimmer", 0, 10, 1.0, False),
    ("inverted-double-pendulum", 3, 2, 0.1, True),
]


@pytest.mark.parametrize(("name", "seed", "steps", "scale", "some_terminate"), CASES)
def test_planning_reward_equals_env_reward(name, seed, steps, scale, some_terminate):
    task = make_task(name)
    state = start_state(task, seed, steps, scale)
    rng = np.random.default_rng(seed + 100)
    actions = rng.uniform(-scale, scale, (N, H, task.action_dim))
    objective = task.objective(threads=2, termination_cost=0.0)

    rewards = objective(state, actions)
    expected, terminated = env_returns(task, state, actions)

    assert rewards.shape == (N,) and rewards.dtype == np.float64
    np.testing.assert_allclose(rewards, expected, rtol=0, atol=1e-8)
    assert (0 < terminated < N) if some_terminate else terminated == 0, terminated
    assert objective.num_evaluated == N and objective.num_diverged == 0


@pytest.mark.parametrize(("name", "seed", "steps", "scale", "some_terminate"), CASES)
def test_termination_cost_charges_exactly_the_terminated_candidates(
    name, seed, steps, scale, some_terminate
):
    task = make_task(name)
    state = start_state(task, seed, steps, scale)
    actions = np.random.default_rng(seed + 100).uniform(-scale, scale, (N, H, task.action_dim))

    rewards = task.objective(threads=1)(state, actions)
    expected, fell = env_returns_and_falls(task, state, actions)

    assert task.termination_cost == (1000.0 * task.reward.alive_bonus)
    assert (task.termination_cost > 0) == some_terminate
    np.testing.assert_allclose(rewards, expected - task.termination_cost * fell, atol=1e-8)


def test_a_fall_ranks_below_surviving():
    # With the env's reward alone a forward lunge that falls late in the horizon can outscore
    # standing still; the termination cost puts every fall below every survivor.
    task = make_task("hopper")
    task.env.reset(seed=0)
    state = task.snapshot()
    horizon = 40
    still = np.zeros((1, horizon, task.action_dim))
    # seed 4: 30 of the 32 lunges fall, the best of them 12.1 above standing still (seed 0
    # needed 256 lunges to find one that beats it)
    lunges = np.random.default_rng(4).uniform(-1, 1, (32, horizon, task.action_dim))
    candidates = np.concatenate([still, lunges])
    _, fell = env_returns_and_falls(task, state, candidates)
    assert not fell[0] and fell[1:].any()
    bare = task.objective(threads=1, termination_cost=0.0)(state, candidates)
    assert bare[fell].max() > bare[0]  # what the cost is for

    rewards = task.objective(threads=1)(state, candidates)

    assert rewards[fell].max() < rewards[~fell].min()
    assert rewards[fell].max() < rewards[0]


def test_every_supported_env_has_a_task():
    assert sorted(info.env_id for info in TASKS.values()) == sorted(SUPPORTED_ENV_IDS)
    task = make_task("Hopper-v5", ctrl_cost_weight=0.5)
    assert (task.env_id, task.action_dim, task.obs_dim, task.frame_skip) == ("Hopper-v5", 3, 11, 4)
    assert task.default_horizon == TASKS["hopper"].default_horizon
    assert task.reward.control_weight == 0.5
    assert isinstance(task.objective(threads=1), Objective)


def test_reward_weights_come_from_the_env():
    task = make_task("half-cheetah", forward_reward_weight=2.0, ctrl_cost_weight=0.7)
    state = start_state(task, seed=3)
    actions = np.random.default_rng(3).uniform(-1, 1, (4, 5, task.action_dim))
    expected, _ = env_returns(task, state, actions)
    np.testing.assert_allclose(task.objective(threads=1)(state, actions), expected, atol=1e-8)


def test_snapshot_restore_round_trip_is_exact():
    # Walker2d's contacts make the step depend on the solver's warm start (by ~1e-11 here), so
    # this fails if the snapshot leaves qacc_warmstart out
    task = make_task("walker2d")
    env = task.env.unwrapped
    state = start_state(task, seed=1, steps=12)
    action = task.scale_actions(np.full(task.action_dim, 0.5))
    first = env.step(action)
    after_first = task.snapshot()
    for _ in range(3):
        env.step(-action)

    task.restore(env, state)
    assert np.array_equal(task.snapshot(), state)
    second = env.step(action)

    assert np.array_equal(task.snapshot(), after_first)
    assert np.array_equal(first[0], second[0]) and first[1] == second[1]


def test_threads_give_identical_rewards():
    task = make_task("hopper")
    state = start_state(task, seed=4)
    actions = np.random.default_rng(4).uniform(-1, 1, (16, 8, task.action_dim))
    one = task.objective(threads=1)(state, actions)
    two = task.objective(threads=2)(state, actions)
    assert np.array_equal(one, two)
    assert np.isfinite(one).all()


def unstable_pendulum() -> MujocoTask:
    """InvertedPendulum whose motor is 1e12 times stronger: a full push makes qacc blow up."""
    env = gymnasium.make("InvertedPendulum-v5")
    env.unwrapped.model.actuator_gear[:, 0] *= 1e12
    return MujocoTask(env)


def test_diverging_candidates_get_minus_inf_and_are_counted():
    task = unstable_pendulum()
    task.env.reset(seed=0)
    state = task.snapshot()
    actions = np.zeros((4, H, 1))
    actions[1, 0] = 1.0  # diverges at the first step
    actions[2, 5] = -1.0  # diverges mid-sequence
    objective = task.objective(threads=2)

    rewards = objective(state, actions)

    assert np.isneginf(rewards[[1, 2]]).all()
    # the env silently resets a diverged simulation and goes on scoring the reset state
    assert np.isfinite(env_returns(task, state, actions)[0]).all()
    np.testing.assert_allclose(rewards[[0, 3]], env_returns(task, state, actions[[0, 3]])[0])
    assert objective.num_diverged == 2 and objective.num_evaluated == 4
    # the pool is reusable after divergence
    np.testing.assert_allclose(objective(state, actions[[0, 3]]), rewards[[0, 3]])
    assert objective.num_diverged == 2


def test_divergence_after_termination_does_not_count():
    task = unstable_pendulum()
    task.env.reset(seed=0)
    task.env.unwrapped.set_state(np.array([0.0, 0.19]), np.array([0.0, 1.0]))  # falling
    state = task.snapshot()
    actions = np.zeros((2, H, 1))
    actions[1, H - 1] = 1.0  # diverges long after the pole fell

    rewards = task.objective(threads=1, termination_cost=0.0)(state, actions)
    expected, terminated = env_returns(task, state, actions)

    assert terminated == 2
    np.testing.assert_array_equal(rewards, expected)


def test_huge_velocities_in_the_state_diverge_without_crashing():
    task = make_task("hopper")
    state = start_state(task, seed=0)
    nq = task.model.nq
    state[1 + nq : 1 + nq + task.model.nv] = 1e12  # qvel follows time and qpos
    objective = task.objective(threads=2)
    rewards = objective(state, np.zeros((3, H, task.action_dim)))
    assert np.isneginf(rewards).all() and objective.num_diverged == 3


def test_bad_inputs_raise_with_the_expected_shape():
    task = make_task("reacher")
    objective = task.objective(threads=1)
    state = task.snapshot()
    with pytest.raises(ValueError, match=r"\(N, H, 2\)"):
        objective(state, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="finite"):
        objective(state, np.full((1, 3, 2), np.nan))
    with pytest.raises(ValueError, match=r"shape \(\d+,\)"):
        objective(state[:-1], np.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match="threads"):
        task.objective(threads=0)
    with pytest.raises(ValueError, match="termination_cost"):
        task.objective(threads=1, termination_cost=-1.0)
    with pytest.raises(NotImplementedError, match="Hopper-v5"):
        make_task("Ant-v5")


def final_observations(task: MujocoTask, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The env's observation after stepping through each action sequence ``(N, H, A)``."""
    env = task.env.unwrapped
    observations = []
    for sequence in actions:
        task.restore(env, state)
        for action in sequence:
            observation, *_ = env.step(task.scale_actions(action))
        observations.append(observation)
    return np.array(observations)


@pytest.mark.parametrize("name,seed,steps,scale,_", CASES)
def test_observations_of_recorded_states_are_the_envs_own(name, seed, steps, scale, _):
    task = make_task(name)
    start_state(task, seed, steps, scale)
    base = task.env.unwrapped
    observed = task.observations(base.data.qpos[None].copy(), base.data.qvel[None].copy())
    # positions read after mj_step lag the state by its last substep (reacher's fingertip,
    # about 1e-6; envs/mujoco_rewards.py); observations() forwards the state itself
    np.testing.assert_allclose(observed[0], base._get_obs(), rtol=0, atol=1e-5)


def test_a_terminal_value_is_added_to_the_survivors_from_their_last_observation():
    task = make_task("hopper")
    state = start_state(task, 2, 10)
    actions = np.random.default_rng(2).uniform(-1, 1, (12, 16, task.action_dim))
    _, fell = env_returns_and_falls(task, state, actions)
    assert fell.any() and not fell.all()  # seed 2: some of the 12 fall within 16 steps
    seen = []

    def value(observations: np.ndarray) -> np.ndarray:
        seen.append(observations)
        return observations[:, 0] * 100.0  # the torso's height, scaled

    without = task.objective(threads=1)(state, actions)
    with_value = task.objective(threads=1, terminal_value=value)(state, actions)

    survivors = final_observations(task, state, actions[~fell])
    np.testing.assert_allclose(seen[0], survivors, rtol=0, atol=1e-9)
    np.testing.assert_allclose(with_value[fell], without[fell], rtol=0, atol=0)
    np.testing.assert_allclose(
        with_value[~fell] - without[~fell], survivors[:, 0] * 100.0, rtol=1e-9
    )


@pytest.mark.parametrize(
    "value,message",
    [
        (lambda obs: np.zeros(len(obs) + 1), r"shape \(\d+,\)"),
        (lambda obs: np.full(len(obs), np.nan), "NaN or inf"),
    ],
)
def test_a_bad_terminal_value_is_refused_with_what_it_returned(value, message):
    task = make_task("half-cheetah")
    state = start_state(task, 0)
    objective = task.objective(threads=1, terminal_value=value)
    with pytest.raises(ValueError, match=message):
        objective(state, np.zeros((3, 4, task.action_dim)))
