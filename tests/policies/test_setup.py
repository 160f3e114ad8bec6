"""One setup from Python or the command line: the task's defaults, the decoders DE plans with,
the files it refuses, and the same policy as run_mpc.py on a plain ``gymnasium.make`` env."""

import shutil
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import SAC

from envs.registry import CHECKPOINTS, get_task, make_env, task_names
from envs.world_model_rules import reward_fn
from experiments.harness.cli import parse_args
from experiments.run_mpc import RunArgs
from planner.distilled import DistilledPrior
from planner.knots import KnotSchedule
from planner.prior import DiffusionPrior
from planner.world_model import WorldModelObjective
from policies.sb3_agents import load_sb3_agent
from policies.setup import PlanningSetup, SetupError

ENV = SimpleNamespace(action_space=SimpleNamespace(shape=(2,)))
"""All that a budget reads of an env."""


# The task's defaults, and values given


def test_unset_values_take_the_tasks_defaults_and_set_values_are_kept():
    spec = get_task("unicycle-goal")
    setup = PlanningSetup("unicycle-goal", "cem")
    budget, config = setup.budget(ENV), setup.planner_config()
    assert (budget.population, budget.iterations, budget.horizon) == (64, 4, spec.horizon)
    assert (config.search_steps, config.warm_start) == (2, spec.planner["warm_start"])
    setup = PlanningSetup("unicycle-goal", "cem", 8, 2, 48, search_steps=3, warm_start="none")
    budget, config = setup.budget(ENV), setup.planner_config()
    assert (budget.population, budget.iterations, budget.horizon) == (8, 2, 48)
    assert (config.search_steps, config.warm_start) == (3, "none")


def test_mujoco_tasks_default_to_their_budget_not_the_budget_classes():
    # the issue that asked for one setup: Budget's own defaults (64 x 4) are not hopper's (64 x 3)
    budget = PlanningSetup("hopper").budget(make_env("hopper"), None)
    assert (budget.population, budget.iterations) == (64, 3)


@pytest.mark.parametrize(
    "settings, mentions",
    [
        ({"population": 0}, "population"),
        ({"iterations": True}, "iterations"),
        ({"final_steps": 0}, "final_steps"),
        ({"planner": "pso"}, r"planner \(--planner\) must be one of"),
        ({"reward": "oracle"}, "reward"),
        ({"decoder": "fast"}, r"decoder \(--decoder\) must be one of"),
        ({"warm_start": "rewind"}, "warm_start"),
        ({"propagation": "ts2"}, r"propagation \(--propagation\) must be one of"),
        ({"world_model_reward": "oracle"}, r"world_model_reward \(--world-model-reward\)"),
        ({"propagation": "tsinf", "particles": 0}, r"particles must be an int >= 1.*--particles"),
        ({"reward": "world-model", "particles": 3}, r"sampling propagation.*--propagation"),
        ({"reward": "world-model", "pessimism": 1.0}, r"'mean' rolls one.*--pessimism"),
        (
            {"reward": "world-model", "propagation": "tsinf", "pessimism": -1.0},
            r"finite.*--pessimism",
        ),
        ({"propagation": "tsinf", "pessimism": 1.0}, r"world model's.*--reward world-model"),
        (
            {"planner": "cem", "prior": "x.pt"},
            r"setting of Diffusion Elites.*planner=de \(--planner de\)",
        ),
        ({"planner": "icem", "student": "x.pt"}, "setting of Diffusion Elites"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(settings, mentions):
    with pytest.raises(ValueError, match=mentions):
        PlanningSetup("unicycle-goal", **settings)


def test_a_task_is_named_by_short_name_or_gymnasium_id():
    assert PlanningSetup("Hopper-v5").task == "hopper"
    with pytest.raises(SetupError, match=r"unknown task 'Hopper-v9'.*known tasks"):
        PlanningSetup("Hopper-v9")


def test_the_command_line_builds_the_same_setup_as_python():
    args = parse_args(RunArgs, "", ["--env", "hopper", "--population", "32"])
    from_cli = PlanningSetup.from_fields(args, task=args.env)
    assert from_cli == PlanningSetup("hopper", population=32)


def test_the_world_model_rolls_out_by_the_setups_propagation_and_particles():
    flags = ["--env", "half-cheetah", "--reward", "world-model", "--propagation", "tsinf"]
    args = parse_args(RunArgs, "", [*flags, "--particles", "10", "--seed", "3"])
    setup = PlanningSetup.from_fields(args, task=args.env)
    assert setup == PlanningSetup(
        "half-cheetah", reward="world-model", propagation="tsinf", particles=10, seed=3
    )
    env = make_env("half-cheetah")
    objective = setup.objective(env)
    assert (objective.propagation, objective.particles) == ("tsinf", 10)
    default = PlanningSetup("half-cheetah", reward="world-model", propagation="tsinf")
    assert default.objective(env).particles == objective.model.ensemble_size


def test_the_propagation_is_the_tasks_default_unless_told():
    hopper = PlanningSetup("hopper", reward="world-model")
    assert hopper.propagation == "tsinf"
    assert hopper.objective(make_env("hopper")).propagation == "tsinf"
    told = parse_args(RunArgs, "", ["--env", "hopper", "--propagation", "mean"])
    assert PlanningSetup.from_fields(told, task=told.env).propagation == "mean"
    assert PlanningSetup("half-cheetah", reward="world-model").propagation == "tsinf"
    assert PlanningSetup("reacher", reward="world-model").propagation == "mean"
    # a particle count the task's default cannot take is refused naming both flags
    with pytest.raises(SetupError, match=r"needs a sampling propagation.*--propagation"):
        PlanningSetup("reacher", reward="world-model", particles=4)
    PlanningSetup("hopper", reward="world-model", particles=4)  # tsinf takes it


def test_the_world_model_reward_is_the_tasks_default_unless_told():
    args = parse_args(RunArgs, "", ["--env", "reacher", "--world-model-reward", "learned"])
    assert PlanningSetup.from_fields(args, task=args.env).world_model_reward == "learned"
    env = make_env("reacher")
    chosen = {
        choice: PlanningSetup("reacher", reward="world-model", world_model_reward=choice)
        .objective(env)
        .reward_fn
        for choice in (None, "computed", "learned")
    }
    assert chosen["computed"] is not None and chosen["learned"] is None
    assert isinstance(chosen[None], type(chosen["computed"]))  # reacher's default: computed
    cheetah = PlanningSetup("half-cheetah", reward="world-model")
    assert cheetah.objective(make_env("half-cheetah")).reward_fn is None  # its default: learned


@pytest.mark.parametrize(
    "task", [n for n in task_names() if get_task(n).world_model_reward == "computed"]
)
def test_a_task_defaults_to_a_computed_reward_only_where_it_has_a_rule(task):
    assert reward_fn(make_env(task)) is not None


def test_a_computed_reward_is_refused_for_a_task_without_a_rule():
    setup = PlanningSetup(
        "inverted-double-pendulum", reward="world-model", world_model_reward="computed"
    )
    with pytest.raises(SetupError, match=r"no reward rule.*--world-model-reward learned"):
        setup.objective(make_env("inverted-double-pendulum"))


def test_tuning_is_kept_as_sorted_pairs_so_setups_compare_and_hash():
    a = PlanningSetup("reacher", "mppi", tuning={"temperature": 0.5, "noise_std": 0.2})
    b = PlanningSetup("reacher", "mppi", tuning=(("noise_std", 0.2), ("temperature", 0.5)))
    assert a == b and hash(a) == hash(b)


def test_costs_reach_the_objective_from_the_command_line_or_python():
    args = parse_args(RunArgs, "", ["--env", "hopper", "--costs", "upright=3,speed=1@0.5"])
    setup = PlanningSetup.from_fields(args, task=args.env)
    pairs = PlanningSetup("hopper", costs={"upright": 3, "speed": (1, 0.5)})
    assert setup == pairs and hash(setup) == hash(pairs)
    assert setup.objective(make_env("hopper")).costs.terms == (
        ("upright", 3.0, 0.0),
        ("speed", 1.0, 0.5),
    )
    assert not PlanningSetup("hopper").objective(make_env("hopper")).costs  # the task's: none
    assert PlanningSetup("hopper", costs="none").costs == ()


@pytest.mark.parametrize(
    ("settings", "mentions"),
    [
        ({"task": "hopper", "costs": "tilt=1"}, "costs \\(--costs\\): unknown cost term"),
        ({"task": "unicycle-goal", "costs": "control=1"}, "unicycle tasks have no planning cost"),
        ({"task": "reacher", "costs": "upright=1"}, "planar legged torso"),
        (
            {"task": "reacher", "costs": "control=1", "reward": "world-model"},
            "locomotion envs only.*\\(--costs\\)",
        ),
    ],
)
def test_costs_a_setup_cannot_charge_are_refused(settings, mentions):
    with pytest.raises(SetupError, match=mentions):
        setup = PlanningSetup(**settings)
        setup.objective(make_env(setup.task))


SAC_HOPPER = str(CHECKPOINTS / "agents" / "hopper-sac.zip")


def test_a_value_agents_critic_reaches_the_objective_from_the_command_line():
    argv = ["--env", "hopper", "--value-agent", SAC_HOPPER, "--value-weight", "0.5"]
    args = parse_args(RunArgs, "", argv)
    setup = PlanningSetup.from_fields(args, task=args.env)
    assert setup == PlanningSetup("hopper", value_agent=SAC_HOPPER, value_weight=0.5)
    value = setup.objective(make_env("hopper")).terminal_value
    observations = np.random.default_rng(0).normal(size=(4, 11))
    policy = value.agent.policy
    with torch.no_grad():
        obs = torch.as_tensor(observations, dtype=torch.float32)
        q1, q2 = policy.critic(obs, policy.actor(obs, deterministic=True))
    np.testing.assert_allclose(value(observations), 0.5 * torch.min(q1, q2).squeeze(-1), rtol=1e-6)


def test_hopper_plans_with_its_declared_critic_unless_told_otherwise():
    spec = get_task("hopper")
    default = PlanningSetup("hopper").objective(make_env("hopper")).terminal_value
    assert default.weight == spec.value_weight == 2.0
    shipped = load_sb3_agent(spec.value_agent_path, "sac")
    observations = np.random.default_rng(1).normal(size=(3, 11)).astype(np.float32)
    with torch.no_grad():
        obs = torch.as_tensor(observations)
        policy = shipped.policy
        q1, q2 = policy.critic(obs, policy.actor(obs, deterministic=True))
    np.testing.assert_allclose(
        default(observations), 2.0 * torch.min(q1, q2).squeeze(-1), rtol=1e-6
    )
    reweighted = PlanningSetup("hopper", value_weight=0.5).objective(make_env("hopper"))
    assert reweighted.terminal_value.weight == 0.5
    args = parse_args(RunArgs, "", ["--env", "hopper", "--value-agent", "none"])
    setup = PlanningSetup.from_fields(args, task=args.env)
    assert setup.value() is None
    assert setup.objective(make_env("hopper")).terminal_value is None
    # an SB3 agent and a task without a declared value plan without one
    assert PlanningSetup("hopper", planner="sac").value() is None
    assert PlanningSetup("half-cheetah").objective(make_env("half-cheetah")).terminal_value is None


def test_a_world_model_values_its_predicted_horizon_ends_with_the_tasks_critic():
    # the simulator's planner and the world model's get the same value at the horizon's end
    simulator = PlanningSetup("hopper").objective(make_env("hopper"))
    world_model = PlanningSetup("hopper", reward="world-model").objective(make_env("hopper"))
    assert isinstance(world_model, WorldModelObjective)
    observations = np.random.default_rng(2).normal(size=(5, 11))
    np.testing.assert_array_equal(
        world_model.terminal_value(observations), simulator.terminal_value(observations)
    )
    told = PlanningSetup("hopper", reward="world-model", value_agent=SAC_HOPPER, value_weight=0.5)
    assert told.value() == (Path(SAC_HOPPER), 0.5)
    assert told.objective(make_env("hopper")).terminal_value.weight == 0.5
    none = PlanningSetup("hopper", reward="world-model", value_agent="none")
    assert none.objective(make_env("hopper")).terminal_value is None
    walker = get_task("walker2d").value_agent_path
    assert PlanningSetup("walker2d", reward="world-model").value() == (walker, 2.0)


def test_a_missing_world_model_is_refused_before_the_critic_loads(monkeypatch, tmp_path):
    def load_agent(*args, **kwargs):
        raise AssertionError("the critic was loaded for a world model that is not there")

    monkeypatch.setattr("policies.setup.load_agent", load_agent)
    setup = PlanningSetup("hopper", reward="world-model", world_model=str(tmp_path / "wm.pt"))
    with pytest.raises(SetupError, match=r"no world model at .*wm\.pt.*--world-model PATH"):
        setup.objective(make_env("hopper"))


def test_a_unicycle_task_refuses_a_value_naming_the_flag(tmp_path):
    agent = tmp_path / "unicycle-goal-sac.zip"
    SAC("MlpPolicy", make_env("unicycle-goal"), device="cpu").save(agent)
    setup = PlanningSetup("unicycle-goal", value_agent=str(agent))
    with pytest.raises(SetupError, match=r"take no terminal value.*--value-agent"):
        setup.objective(make_env("unicycle-goal"))


@pytest.mark.parametrize(
    ("settings", "mentions"),
    [
        ({"task": "hopper", "value_weight": float("nan")}, r"value_weight.*finite"),
        ({"task": "half-cheetah", "value_agent": SAC_HOPPER}, r"observes \(11,\).*\(17,\)"),
        (
            {"task": "hopper", "value_agent": "missing-sac.zip"},
            r"no SAC agent at missing-sac.zip.*--value-agent PATH",
        ),
    ],
)
def test_a_value_a_setup_cannot_use_is_refused(settings, mentions):
    with pytest.raises(SetupError, match=mentions):
        setup = PlanningSetup(**settings)
        setup.objective(make_env(setup.task))


# Horizons


def test_a_horizon_applies_to_planners_without_a_prior_and_must_match_a_prior():
    prior = SimpleNamespace(knot_schedule=KnotSchedule(16))
    assert PlanningSetup("unicycle-goal").budget(ENV, prior).horizon == 16
    assert PlanningSetup("unicycle-goal", horizon=16).budget(ENV, prior).horizon == 16
    with pytest.raises(SetupError, match=r"H=16 steps.*not horizon=32.*drop horizon \(--horizon\)"):
        PlanningSetup("unicycle-goal", horizon=32).budget(ENV, prior)


def test_a_horizon_in_seconds_is_steps_of_the_envs_dt_and_knots_are_shared_by_baselines():
    hopper = make_env("hopper")  # dt = 0.008 s
    budget = PlanningSetup("hopper", "icem", horizon_seconds=0.256, knots=8).budget(hopper)
    assert (budget.horizon, budget.knots, budget.interpolation) == (32, 8, "hold")
    budget = PlanningSetup("unicycle-goal", "cem", horizon_seconds=2.0).budget(
        make_env("unicycle-goal")
    )
    assert (budget.horizon, budget.knots) == (20, 20)  # dt = 0.1 s, a knot per step
    with pytest.raises(SetupError, match="not both"):
        PlanningSetup("hopper", "cem", horizon=16, horizon_seconds=0.1)
    with pytest.raises(SetupError, match=r"exceeds the horizon.*\(--knots\)"):
        PlanningSetup("hopper", "cem", horizon=8, knots=9).budget(hopper)
    with pytest.raises(SetupError, match="interpolation"):
        PlanningSetup("hopper", "cem", interpolation="spline")


@pytest.mark.parametrize(
    "settings, mentions",
    [({"knots": 4}, "not knots=4"), ({"interpolation": "linear"}, "not interpolation=linear")],
)
def test_a_prior_over_knots_refuses_another_knot_count_or_interpolation(settings, mentions):
    prior = SimpleNamespace(knot_schedule=KnotSchedule(32, 8, "cubic"))
    budget = PlanningSetup("unicycle-goal", knots=8, interpolation="cubic").budget(ENV, prior)
    assert (budget.horizon, budget.knots, budget.interpolation) == (32, 8, "cubic")
    with pytest.raises(SetupError, match=f"8 knots, cubic interpolation; {mentions}"):
        PlanningSetup("unicycle-goal", **settings).budget(ENV, prior)


# What Diffusion Elites decodes with


def test_the_task_default_searches_and_decodes_with_its_student():
    search, final = PlanningSetup("unicycle-goal").decoders()
    assert isinstance(search, DistilledPrior) and search is final
    search, final = PlanningSetup("hopper").decoders()  # ships no student
    assert isinstance(search, DiffusionPrior) and search is final


@pytest.mark.parametrize(
    "decoder, final_decoder, kinds",
    [
        ("ddim", None, (DiffusionPrior, DiffusionPrior)),
        ("student", "ddim", (DistilledPrior, DiffusionPrior)),
        ("ddim", "student", (DiffusionPrior, DistilledPrior)),
    ],
)
def test_settings_choose_each_decoder(decoder, final_decoder, kinds):
    setup = PlanningSetup("unicycle-goal", decoder=decoder, final_decoder=final_decoder)
    search, final = setup.decoders()
    assert (type(search), type(final)) == kinds


def test_other_planners_get_no_decoder():
    assert PlanningSetup("unicycle-goal", "cem").decoders() == (None, None)


def test_a_prior_given_by_path_decodes_by_ddim_unless_told_and_takes_its_own_students(tmp_path):
    copy = tmp_path / "mine.pt"
    shutil.copy(get_task("unicycle-goal").prior_path, copy)
    search, final = PlanningSetup("unicycle-goal", prior=str(copy)).decoders()
    assert isinstance(search, DiffusionPrior) and search is final
    # the shipped student was distilled from these very bytes: accepted
    search, _ = PlanningSetup("unicycle-goal", prior=str(copy), decoder="student").decoders()
    assert isinstance(search, DistilledPrior)


def test_a_student_of_another_prior_is_refused_unless_forced():
    other = str(CHECKPOINTS / "unicycle-action-mlp-h16.pt")
    with pytest.raises(SetupError, match=r"was distilled from unicycle-action\.pt"):
        PlanningSetup("unicycle-goal", prior=other, decoder="student").decoders()
    forced = PlanningSetup("unicycle-goal", prior=other, decoder="student", force_prior=True)
    assert isinstance(forced.decoders()[0], DistilledPrior)


def test_a_task_without_a_student_says_how_to_get_one():
    with pytest.raises(SetupError, match=r"ships no student.*distill_prior\.py.*--decoder ddim"):
        PlanningSetup("hopper", decoder="student").decoders()


def test_a_missing_or_foreign_student_is_refused(tmp_path):
    missing = PlanningSetup("unicycle-goal", decoder="student", student=str(tmp_path / "no.pt"))
    with pytest.raises(SetupError, match=r"no student checkpoint.*--student"):
        missing.decoders()
    foreign = str(get_task("reacher").student_path)
    with pytest.raises(SetupError, match=r"for task 'reacher'.*--force-prior"):
        PlanningSetup("unicycle-goal", decoder="student", student=foreign).decoders()


# Priors


def test_a_prior_of_another_task_is_refused_unless_forced():
    reacher = str(CHECKPOINTS / "reacher-action.pt")
    with pytest.raises(SetupError, match=r"force_prior=True \(--force-prior\)"):
        PlanningSetup("unicycle-goal", prior=reacher).decoders()
    forced = PlanningSetup("unicycle-goal", prior=reacher, force_prior=True).decoders()[0]
    assert forced.task == "reacher"


@pytest.mark.parametrize("task", ["swimmer", "inverted-double-pendulum"])
def test_a_task_without_a_prior_says_how_to_get_one_and_baselines_need_none(task):
    with pytest.raises(
        SetupError,
        match=r"ships no prior.*prior=PATH \(--prior PATH\).*train_prior\.py.*planner=cem",
    ):
        PlanningSetup(task).policy(make_env(task))
    assert PlanningSetup(task, "cem").decoders() == (None, None)


# The policy


def test_python_plans_exactly_what_run_mpc_plans_on_a_plain_gymnasium_env():
    """``PlanningSetup("hopper").policy(gym.make("Hopper-v5"))`` and the setup run_mpc.py builds
    for ``--env hopper`` (on its own env) choose the same actions, bit for bit."""
    args = parse_args(RunArgs, "", ["--env", "hopper"])
    plain, wrapped = gym.make("Hopper-v5"), make_env("hopper")
    ours = PlanningSetup("hopper").policy(plain)
    scripts = PlanningSetup.from_fields(args, task=args.env).policy(wrapped)
    observation, _ = plain.reset(seed=3)
    wrapped.reset(seed=3)
    for _ in range(3):
        action, _ = ours.predict(observation)
        np.testing.assert_array_equal(action, scripts.predict(observation)[0])
        observation, *_ = plain.step(action)
        wrapped.step(action)


def test_a_world_model_is_charged_the_same_cost_terms_as_the_simulator():
    env = make_env("half-cheetah")
    declared = PlanningSetup("half-cheetah", reward="world-model").objective(env).cost_fn
    simulated = PlanningSetup("half-cheetah").objective(env).costs
    assert declared.costs == simulated and [t[0] for t in simulated.terms] == ["flip"]
    told = PlanningSetup("half-cheetah", reward="world-model", costs="upright=3").objective(env)
    assert told.cost_fn.costs.terms == (("upright", 3.0, 0.0),)
    assert (
        PlanningSetup("half-cheetah", reward="world-model", costs="none").objective(env).cost_fn
        is None
    )
