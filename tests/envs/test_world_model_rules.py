"""Termination and reward rules on observations agree with the envs' own."""

import numpy as np
import pytest

from envs.mujoco_rewards import PlanningCosts, parse_costs
from envs.mujoco_tasks import TASKS as MUJOCO_TASKS
from envs.registry import make_env
from envs.world_model_rules import (
    check_world_model_task,
    cost_fn,
    reward_fn,
    termination_fn,
    winding_angles,
    world_model_tasks,
)
from planner.action_scaling import ActionScaling


@pytest.mark.parametrize("name", ["hopper", "walker2d", "inverted-pendulum"])
def test_the_rule_on_observations_matches_the_env(name):
    env = make_env(name)
    rule = termination_fn(env)
    rng = np.random.default_rng(0)
    ended = 0
    for episode in range(5):
        env.reset(seed=episode)
        for _ in range(200):
            action = rng.uniform(env.action_space.low, env.action_space.high)
            observation, _, terminated, truncated, _ = env.step(action)
            assert bool(rule(observation[None])[0]) == terminated
            if terminated or truncated:
                ended += terminated
                break
    assert ended > 0  # the rule was seen to fire


@pytest.mark.parametrize("name", ["reacher", "half-cheetah"])
def test_tasks_that_never_end_have_no_rule(name):
    assert termination_fn(make_env(name)) is None


def test_a_world_model_plans_on_the_tasks_whose_termination_the_observation_shows():
    assert set(world_model_tasks()) == set(MUJOCO_TASKS) - {"inverted-double-pendulum"}
    check_world_model_task("Walker2d-v5")  # a Gymnasium id as well
    with pytest.raises(ValueError, match=r"pole tip's height.*a world model plans on half-cheetah"):
        check_world_model_task("inverted-double-pendulum")
    with pytest.raises(ValueError, match="a world model plans on"):
        check_world_model_task("unicycle-goal")
    with pytest.raises(ValueError, match="unknown task 'nowhere'"):
        check_world_model_task("nowhere")


def test_a_non_finite_observation_ends_the_episode():
    rule = termination_fn(make_env("hopper"))
    assert rule(np.full((1, 11), np.nan))[0]


# Rewards on observations


def recorded_transitions(name, episodes=3, steps=300):
    """Random-action transitions of the env: observations, normalised actions, next
    observations (M, .), the env's rewards (M,), its reward infos and its end-of-step qvel[0]."""
    env = make_env(name)
    scaling = ActionScaling(env.action_space.low, env.action_space.high)
    rng = np.random.default_rng(0)
    rows = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=episode)
        for _ in range(steps):
            action = rng.uniform(-1, 1, env.action_space.shape)
            after, reward, terminated, truncated, info = env.step(scaling.to_env(action))
            rows.append((observation, action, after, reward, info, env.unwrapped.data.qvel[0]))
            observation = after
            if terminated or truncated:
                break
    return [np.array([row[i] for row in rows]) for i in (0, 1, 2, 3, 5)], [row[4] for row in rows]


@pytest.mark.parametrize("name", ["reacher", "inverted-pendulum"])
def test_rewards_that_the_observation_holds_equal_the_envs(name):
    (obs, actions, after, rewards, _), _ = recorded_transitions(name)
    np.testing.assert_allclose(reward_fn(make_env(name))(obs, actions, after), rewards, atol=1e-12)


# The env pays the mean x velocity over the step's frame_skip substeps (displacement / dt); the
# observation holds only the end-of-step velocity. Largest differences measured on these random
# transitions: half-cheetah 1.02 (mean 0.22, mean |forward| 0.49), hopper 0.11, walker2d 0.30.
@pytest.mark.parametrize(
    ("name", "forward_tolerance"), [("half-cheetah", 1.5), ("hopper", 0.2), ("walker2d", 0.5)]
)
def test_locomotion_terms_are_the_envs_and_forward_is_the_end_of_step_velocity(
    name, forward_tolerance
):
    (obs, actions, after, rewards, velocity), infos = recorded_transitions(name)
    rule = reward_fn(make_env(name))
    terms = rule.terms(obs, actions, after)
    info = {key: np.array([i.get(key, 0.0) for i in infos]) for key in infos[0]}
    np.testing.assert_allclose(terms["control"], -info["reward_ctrl"], atol=1e-12)
    np.testing.assert_allclose(terms["healthy"], info.get("reward_survive", 0.0), atol=0)
    clipped = velocity if name == "half-cheetah" else np.clip(velocity, -10, 10)
    np.testing.assert_array_equal(terms["forward"], rule.forward_weight * clipped)
    assert np.abs(terms["forward"] - info["reward_forward"]).max() < forward_tolerance
    total = terms["forward"] + terms["healthy"] - terms["control"]
    np.testing.assert_allclose(rule(obs, actions, after), total)
    np.testing.assert_allclose(total - terms["forward"] + info["reward_forward"], rewards)


def test_the_control_cost_is_charged_on_the_envs_units():
    rule = reward_fn(make_env("hopper"))
    squeezed = type(rule)(**{**vars(rule), "scaling": ActionScaling(np.zeros(3), np.full(3, 2.0))})
    actions = np.full((1, 3), 0.5)  # env action 1.5
    assert squeezed.terms(None, actions, np.zeros((1, 11)))["control"][0] == pytest.approx(
        rule.control_weight * 3 * 1.5**2
    )


def test_a_task_whose_observation_misses_its_reward_has_no_rule():
    assert reward_fn(make_env("inverted-double-pendulum")) is None


# Planning-only cost terms on observations

EVERY_TERM = "height=10@1.3,upright=3,flip=100@0.3,speed=2@1.5,forward=1,control=0.1"


@pytest.mark.parametrize("name", ["half-cheetah", "hopper", "walker2d"])
def test_costs_on_observations_are_the_simulators_on_the_recorded_states(name):
    env = make_env(name)
    scaling = ActionScaling(env.action_space.low, env.action_space.high)
    terms = parse_costs(EVERY_TERM)
    rng = np.random.default_rng(0)
    obs, actions, after, qpos, velocity = [], [], [], [], []
    for episode in range(2):
        observation, _ = env.reset(seed=episode)
        for _ in range(100):
            action = rng.uniform(-1, 1, env.action_space.shape)
            next_observation, _, terminated, truncated, _ = env.step(scaling.to_env(action))
            data = env.unwrapped.data
            obs.append(observation), actions.append(action), after.append(next_observation)
            qpos.append(data.qpos.copy()), velocity.append(data.qvel[0])
            observation = next_observation
            if terminated or truncated:
                break
    obs, actions, after, qpos = map(np.array, (obs, actions, after, qpos))
    observed = np.array(velocity) if name == "half-cheetah" else np.clip(velocity, -10, 10)
    # the simulator's terms on the recorded states, with the observed end-of-step x velocity
    # in place of the step's mean (the one approximation, as the forward reward's)
    costs = PlanningCosts.from_env(env.unwrapped, terms)
    expected = costs.of(qpos, observed, scaling.to_env(actions))
    assert np.abs(expected).max() > 1  # the terms charge something here
    np.testing.assert_allclose(cost_fn(env, terms)(obs, actions, after), expected, rtol=1e-12)


def test_no_terms_give_no_cost_function_and_other_tasks_are_refused():
    assert cost_fn(make_env("hopper"), ()) is None
    assert cost_fn(make_env("hopper"), parse_costs("upright=0")) is None
    with pytest.raises(ValueError, match="locomotion envs only, not ReacherEnv"):
        cost_fn(make_env("reacher"), parse_costs("control=1"))
    with pytest.raises(ValueError, match="planar legged torso"):
        cost_fn(make_env("swimmer"), parse_costs("flip=1"))


@pytest.mark.parametrize(
    ("name", "joints"),
    [("half-cheetah", ["rooty"]), ("swimmer", ["free_body_rot"]), ("hopper", []), ("reacher", [])],
)
def test_winding_angles_are_the_unlimited_hinges_no_termination_bounds(name, joints):
    """Half-cheetah's and swimmer's root turns freely and nothing ends their episodes; hopper's
    root pitch is an unlimited hinge too, but its healthy range ends the episode first."""
    env = make_env(name)
    base = env.unwrapped
    dims = winding_angles(env)
    hidden = base.model.nq + base.model.nv - base.observation_space.shape[0]
    found = [
        base.model.joint(j).name
        for j in range(base.model.njnt)
        if base.model.jnt_qposadr[j] - hidden in dims
    ]
    assert found == joints
    if dims:  # the observation's entry is that joint's angle
        env.reset(seed=0)
        base.data.qpos[hidden + dims[0]] = 0.7
        assert base._get_obs()[dims[0]] == 0.7
    env.close()
