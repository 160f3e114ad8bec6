"""Wiring shared by the scripts: a task's prior, budget, planner settings and policy."""

from __future__ import annotations

from pathlib import Path

from envs.registry import CHECKPOINTS
from envs.world_model_rules import termination_fn
from planner.mpc import PlannerConfig
from planner.prior import DiffusionPrior
from planner.world_model import WorldModel, WorldModelObjective
from policies.diffusion_elites import DiffusionElitesPolicy
from policies.planners import PLANNERS, Budget, build_planner
from policies.sb3_agents import load_sb3_agent

AGENTS = ("sac", "ppo")
REWARDS = ("simulator", "world-model")
CONTROLLERS = PLANNERS + AGENTS


def load_prior(kind: str, spec, path: str | None = None, device: str = "cpu"):
    """The DE prior: ``path`` or the task's shipped one (None for other planners)."""
    if kind != "de":
        return None
    path = Path(path) if path else spec.prior_path
    if path is None:
        raise SystemExit(
            f"task {spec.name} ships no prior yet: pass --prior PATH "
            "(train one with experiments/train_prior.py) or pick a baseline with --planner"
        )
    return DiffusionPrior.load(path, device=device)


def make_budget(spec, env, prior, population=None, iterations=None) -> Budget:
    """The per-step budget: the prior's horizon (else the task's), the task's default N and T."""
    return Budget(
        horizon=prior.horizon if prior is not None else spec.horizon,
        action_dim=env.action_space.shape[0],
        population=population or spec.planner.get("population", 64),
        iterations=iterations or spec.planner.get("iterations", 4),
    )


def planner_settings(spec, search_steps=None, final_steps=None, warm_start=None):
    """PlannerConfig for DE and CEM from the task's defaults and the command line."""
    defaults = spec.planner
    return PlannerConfig(
        search_steps=search_steps or defaults.get("search_steps", 2),
        final_steps=final_steps or defaults.get("final_steps", 5),
        warm_start=warm_start or defaults.get("warm_start", "shift"),
        fill_action=defaults.get("fill_action"),
    )


def make_objective(
    spec, env, reward="simulator", world_model=None, seed=0, device="cpu", propagation="mean"
):
    """The planner's objective for ``env``: the task's simulator, or a learned world model.

    ``reward="world-model"`` loads ``world_model`` (default: checkpoints/<task>-world-model.pt;
    one trained for another task is refused) and scores candidates from the current observation,
    with the task's termination rule on predicted observations (envs/world_model_rules.py),
    propagating the ensemble by its ``propagation`` (planner.world_model.PROPAGATIONS).
    """
    if reward == "simulator":
        return spec.make_objective(env)
    if reward != "world-model":
        raise SystemExit(f"--reward must be one of {REWARDS}, got {reward!r}")
    path = Path(world_model) if world_model else CHECKPOINTS / f"{spec.name}-world-model.pt"
    if not path.is_file():
        raise SystemExit(
            f"no world model at {path}: train one with experiments/train_world_model.py --env "
            f"{spec.name} --data FILE, or pass --world-model PATH"
        )
    model = WorldModel.load(path, task=spec.name, device=device)
    return WorldModelObjective(model, termination_fn(env), propagation, seed=seed)


def make_policy(
    env,
    spec,
    kind,
    objective,
    budget,
    seed,
    prior,
    settings,
    device="cpu",
    record=False,
    agent=None,
):
    """An SB3-style policy for ``env``: a planner behind DiffusionElitesPolicy, or an SB3 agent.

    ``agent``: the SB3 zip for ``kind`` in AGENTS (default: checkpoints/agents/<task>-<kind>.zip).
    """
    if kind in AGENTS:
        agent = agent or CHECKPOINTS / "agents" / f"{spec.name}-{kind}.zip"
        return load_sb3_agent(agent, kind, device)

    def make_planner(index: int):
        return build_planner(kind, objective, budget, seed, prior, settings, device, record)

    conditioned = prior is not None and prior.cond_dim > 0
    from_observation = getattr(objective, "plans_from_observation", False)
    return DiffusionElitesPolicy.for_env(env, make_planner, conditioned, from_observation)
