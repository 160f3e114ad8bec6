"""Unicycle world: kinematics, env/objective equality, layouts, Gymnasium/SB3 compliance, render."""

import warnings

import gymnasium as gym
import matplotlib
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from matplotlib.figure import Figure
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from envs.datasets import smooth_random_actions
from envs.unicycle import UnicycleGoalEnv, UnicycleObstaclesEnv, register_unicycle_envs
from envs.unicycle_layouts import path_exists
from envs.unicycle_render import draw_scene, scene_limits
from envs.unicycle_world import UnicycleConfig, UnicycleObjective, split_state, unicycle_step

matplotlib.use("Agg")
ENV_CLASSES = [UnicycleGoalEnv, UnicycleObstaclesEnv]


def goal_seeking_action(state: np.ndarray, config: UnicycleConfig) -> np.ndarray:
    """Turn toward the goal (in place if it is far off to the side) and drive at it, blind to
    obstacles."""
    pose, goal, _ = split_state(state, config)
    bearing = np.arctan2(goal[1] - pose[1], goal[0] - pose[0]) - pose[2]
    bearing = np.mod(bearing + np.pi, 2 * np.pi) - np.pi
    turn = np.clip(bearing / (config.omega_max * config.dt), -1.0, 1.0)
    return np.array([1.0 if abs(bearing) < 0.5 else -1.0, turn])


def drive_blind(env: gym.Env, steps: int) -> tuple[np.ndarray, bool]:
    """Step the env ``steps`` times with :func:`goal_seeking_action` (past any termination);
    returns the actions (steps, 2) and whether a step collided."""
    actions, collided = [], False
    for _ in range(steps):
        actions.append(goal_seeking_action(env.get_state(), env.config))
        collided |= env.step(actions[-1])[4]["collision"]
    return np.array(actions), collided


def env_rollout(env: gym.Env, state: np.ndarray, actions: np.ndarray):
    """Per-step poses (H+1, 3) and rewards (H,) of env.step, frozen after termination."""
    env.set_state(state)
    poses, rewards, done = [state[:3].copy()], [], False
    for action in actions:
        if not done:
            _, reward, terminated, _, _ = env.step(action)
            done = terminated
        else:
            reward = 0.0
        poses.append(env.get_state()[:3])
        rewards.append(reward)
    return np.array(poses), np.array(rewards)


@pytest.mark.parametrize(
    "overrides",
    [
        {"dt": 0.0},
        {"v_min": 1.0, "v_max": 1.0},
        {"goal_distance_range": (2.0, 1.0)},
        {"goal_distance_range": (0.1, 1.0)},
        {"max_episode_steps": 0},
        {"num_obstacles": -1},
        {"num_obstacles": 4, "goal_distance_range": (1.0, 2.0)},
    ],
)
def test_config_rejects_bad_values(overrides):
    with pytest.raises(ValueError, match=r"UnicycleConfig|fit"):
        UnicycleConfig(**overrides)


def test_action_scaling_round_trip_and_bounds():
    config = UnicycleConfig(v_min=-0.5)
    speed, yaw = config.scale_actions(np.array([[-1.0, -1.0], [1.0, 1.0], [3.0, 0.0]]))
    np.testing.assert_allclose(speed, [-0.5, 1.0, 1.0])  # out-of-range actions are clipped
    np.testing.assert_allclose(yaw, [-config.omega_max, config.omega_max, 0.0])
    actions = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    np.testing.assert_allclose(config.normalize_actions(*config.scale_actions(actions)), actions)


def test_step_traces_exact_circles_and_lines():
    poses = np.array([[0.0, 0.0, 0.3], [1.0, -1.0, -2.0]])
    speed, yaw = np.array([0.8, 1.0]), np.array([2.0, 0.0])
    track = [poses]
    for _ in range(40):
        track.append(unicycle_step(track[-1], speed, yaw, 0.1))
    track = np.array(track)
    center = np.array([0.0, 0.0]) + 0.4 * np.array([-np.sin(0.3), np.cos(0.3)])  # radius v/omega
    np.testing.assert_allclose(np.linalg.norm(track[:, 0, :2] - center, axis=1), 0.4, atol=1e-12)
    travelled = np.linalg.norm(track[:, 1, :2] - poses[1, :2], axis=1)
    np.testing.assert_allclose(travelled, 0.1 * np.arange(41), atol=1e-12)
    assert np.all(np.abs(track[..., 2]) <= np.pi)
    # the sinc form is continuous through omega = 0
    tiny = unicycle_step(poses[:1], np.ones(1), np.full(1, 1e-9), 0.1)
    straight = unicycle_step(poses[:1], np.ones(1), np.zeros(1), 0.1)
    np.testing.assert_allclose(tiny, straight, atol=1e-9)


@pytest.mark.parametrize("env_class", ENV_CLASSES)
def test_objective_equals_env_step_by_step(env_class):
    env, outcomes = env_class(), {"success": 0, "collision": 0}
    objective = UnicycleObjective(env.config)
    for seed in range(6):
        env.reset(seed=seed)
        state = env.get_state()
        if seed % 2:  # goal just ahead, inside the obstacle-free start area: reachable blind
            state[3:5] = state[:2] + 0.3 * np.array([np.cos(state[2]), np.sin(state[2])])
        env.set_state(state)
        drive, _ = drive_blind(env, 60)
        random = smooth_random_actions(14, 60, 2, seed=seed)
        actions = np.concatenate([drive[None], random, np.clip(drive + 0.3 * random[:1], -1, 1)])
        rollout = objective.rollout(state, actions)
        for index, candidate in enumerate(actions):
            poses, rewards = env_rollout(env, state, candidate)
            np.testing.assert_array_equal(rollout.states[index], poses)  # bit for bit
            np.testing.assert_array_equal(rollout.rewards[index], rewards)
        np.testing.assert_allclose(objective(state, actions), rollout.rewards.sum(1), atol=1e-12)
        np.testing.assert_array_equal(objective.rollout_states(state, actions), rollout.states)
        outcomes["success"] += rollout.success.sum()
        outcomes["collision"] += rollout.collision.sum()
    assert outcomes["success"] > 0  # both termination kinds were exercised
    if env_class is UnicycleObstaclesEnv:
        assert outcomes["collision"] > 0


def test_objective_stops_counting_after_termination():
    env = UnicycleObstaclesEnv()
    env.reset(seed=3)
    state = env.get_state()
    actions = drive_blind(env, 60)[0][None]
    rollout = UnicycleObjective(env.config).rollout(state, actions)
    assert rollout.collision[0] and not rollout.success[0]
    hit = int(np.flatnonzero(rollout.rewards[0])[-1])
    assert rollout.rewards[0, hit] < -env.config.collision_penalty + 0.2
    assert np.all(rollout.states[0, hit + 1 :] == rollout.states[0, hit + 1])


def test_objective_rejects_bad_input():
    objective, env = UnicycleObjective(), UnicycleGoalEnv()
    env.reset(seed=0)
    state = env.get_state()
    with pytest.raises(ValueError, match=r"\(N, H, 2\)"):
        objective(state, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="planning state"):
        objective(np.zeros(8), np.zeros((4, 3, 2)))


@pytest.mark.parametrize("env_id", ["UnicycleGoal-v0", "UnicycleObstacles-v0"])
def test_env_passes_gymnasium_and_sb3_checkers(env_id):
    register_unicycle_envs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        gym_check_env(gym.make(env_id, render_mode="rgb_array").unwrapped, skip_render_check=False)
        sb3_check_env(gym.make(env_id).unwrapped, warn=True)


def test_registration_is_idempotent_and_makes_envs():
    register_unicycle_envs()
    register_unicycle_envs()
    for env_id, env_class in [
        ("UnicycleGoal-v0", UnicycleGoalEnv),
        ("UnicycleObstacles-v0", UnicycleObstaclesEnv),
    ]:
        env = gym.make(env_id)
        assert isinstance(env.unwrapped, env_class)
        assert env.reset(seed=0)[0].shape == env.observation_space.shape


def test_reset_is_seeded_and_state_round_trips():
    env = UnicycleObstaclesEnv()
    first, _ = env.reset(seed=11)
    state = env.get_state()
    second, _ = env.reset(seed=11)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(state, env.get_state())
    assert state.shape == (env.config.state_dim,) and state.dtype == np.float64
    env.step(np.array([1.0, 0.5]))
    env.set_state(state)
    np.testing.assert_array_equal(env.get_state(), state)
    with pytest.raises(ValueError, match="planning state"):
        env.set_state(state[:5])


def test_observation_has_goal_in_vehicle_frame():
    env = UnicycleGoalEnv()
    env.reset(seed=0)
    env.set_state(np.array([1.0, 1.0, np.pi / 2, 1.0, 3.0]))  # goal 2 ahead of the vehicle
    obs = env._observation()
    np.testing.assert_allclose(obs, [2.0, 0.0, 2.0, 0.0, 1.0, 1.0, 1.0], atol=1e-6)
    assert obs.dtype == np.float32


def test_goal_reached_in_typical_episode_lengths_and_truncation():
    env, lengths = UnicycleGoalEnv(), []
    for seed in range(20):
        env.reset(seed=seed)
        terminated, steps = False, 0
        while not terminated and steps < env.config.max_episode_steps:
            action = goal_seeking_action(env.get_state(), env.config)
            _, _, terminated, _, info = env.step(action)
            steps += 1
        assert info["success"] and info["distance"] <= env.config.goal_tolerance
        lengths.append(steps)
    assert 20 <= min(lengths) and max(lengths) <= 60  # measured 22..51
    env.reset(seed=0)
    for step in range(env.config.max_episode_steps):
        _, reward, terminated, truncated, _ = env.step(np.array([-1.0, 0.0]))  # stand still
        assert reward == 0.0 and not terminated
        assert truncated == (step == env.config.max_episode_steps - 1)


def test_layouts_block_the_line_keep_clearance_and_are_solvable():
    env, collided = UnicycleObstaclesEnv(), 0
    config = env.config
    for seed in range(30):
        env.reset(seed=seed)
        pose, goal, obstacles = split_state(env.get_state(), config)
        assert obstacles.shape == (config.num_obstacles, 3)
        centers, radii = obstacles[:, :2], obstacles[:, 2]
        separation = np.linalg.norm(centers[:, None] - centers[None], axis=2)
        np.fill_diagonal(separation, np.inf)
        assert np.all(separation > radii[:, None] + radii[None])  # no overlaps
        for point in (pose[:2], goal):
            surface = np.linalg.norm(centers - point, axis=1) - radii - config.vehicle_radius
            assert surface.min() > config.endpoint_clearance
        inflation = config.vehicle_radius + config.gap_clearance
        assert path_exists(pose[:2], goal, obstacles, inflation)
        straight = pose[:2] + np.linspace(0, 1, 200)[:, None] * (goal - pose[:2])
        gaps = np.linalg.norm(straight[:, None] - centers, axis=2) - radii - config.vehicle_radius
        assert gaps.min() < 0.0
        collided += drive_blind(env, 80)[1]
    assert collided >= 27  # measured: the obstacle-blind controller collides in 30 of 30


def test_path_exists_detects_enclosure():
    start, goal = np.zeros(2), np.array([3.0, 0.0])
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ring = np.column_stack([3 + 0.8 * np.cos(angles), 0.8 * np.sin(angles), np.full(24, 0.15)])
    assert not path_exists(start, goal, ring, inflation=0.15)
    assert not path_exists(start, goal, ring[1:], inflation=0.15)  # gap 0.27 < 2 x 0.15 + ...
    assert path_exists(start, goal, ring[4:], inflation=0.15)  # a gap of 0.75 between surfaces
    assert path_exists(start, goal, np.zeros((0, 3)), inflation=0.15)


def test_render_and_draw_scene():
    env = UnicycleObstaclesEnv(render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    env.step(np.array([1.0, 0.0]))
    second = env.render()
    assert first.shape == (400, 400, 3) and first.dtype == np.uint8
    assert np.any(first != second)
    with pytest.warns(UserWarning, match="render_mode"):
        assert UnicycleGoalEnv().render() is None
    state = env.get_state()
    objective = UnicycleObjective(env.config)
    candidates = objective.rollout_states(state, smooth_random_actions(12, 16, 2, seed=0))
    ax = Figure().add_subplot()
    draw_scene(ax, state, env.config, candidates[0], candidates, candidates[:3], candidates[0])
    assert len(ax.lines) == 2 + 12 + 3 + 1  # goal marker, path, population, elites, plan
    assert len(ax.patches) == env.config.num_obstacles + 3  # obstacles, goal, vehicle, arrow
    (x_low, x_high), (y_low, y_high) = scene_limits(state, env.config)
    assert np.isclose(x_high - x_low, y_high - y_low)
    assert x_low < state[3] < x_high and y_low < state[4] < y_high
