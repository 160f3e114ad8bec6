"""Wiring shared by the scripts: a task's prior, agent, budget, planner settings and policy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from envs.mujoco_tasks import termination_cost
from envs.registry import CHECKPOINTS
from envs.world_model_rules import termination_fn
from experiments.harness.cli import UsageError
from planner.checkpoint import TaskMismatchError
from planner.distilled import DistilledPrior
from planner.files import file_sha256
from planner.mpc import PlannerConfig
from planner.prior import DiffusionPrior
from planner.safeguards import Safeguards
from planner.world_model import WorldModel, WorldModelObjective
from policies.diffusion_elites import DiffusionElitesPolicy
from policies.planners import PLANNERS, Budget, build_planner, sub_env_seed
from policies.sb3_agents import load_sb3_agent

AGENTS = ("sac", "ppo")
REWARDS = ("simulator", "world-model")
DECODERS = ("ddim", "student")
"""How Diffusion Elites decodes a latent: the prior's DDIM decode, or its one-call student."""
CONTROLLERS = PLANNERS + AGENTS


def read_prior(
    path: str | os.PathLike, task: str, device: str = "cpu", force: bool = False
) -> DiffusionPrior:
    """``DiffusionPrior.load`` for a script, its refusals worded for the command line.

    A prior recorded for a task other than ``task`` is a :class:`UsageError` naming
    ``--force-prior``; ``force`` skips that check.
    """
    try:
        return DiffusionPrior.load(path, device=device, task=None if force else task)
    except FileNotFoundError as exc:
        raise UsageError(f"{exc}: pass --prior PATH, a file written by train_prior.py") from exc
    except TaskMismatchError as exc:
        raise UsageError(f"{exc}, or add --force-prior to use it anyway") from exc


def load_prior(kind: str, spec, path: str | None = None, device: str = "cpu", force=False):
    """The DE prior: ``path`` or the task's shipped one (None for other planners).

    It must record the task's family (``spec.family``, e.g. ``unicycle`` for both unicycle
    tasks); ``force`` accepts a prior recorded for any task (see :func:`read_prior`).
    """
    if kind != "de":
        return None
    path = Path(path) if path else spec.prior_path
    if path is None:
        raise UsageError(
            f"task {spec.name} ships no prior yet: pass --prior PATH "
            "(train one with experiments/train_prior.py) or pick a baseline with --planner"
        )
    return read_prior(path, spec.family, device, force)


def load_decoders(
    kind: str,
    spec,
    path: str | None = None,
    device: str = "cpu",
    force: bool = False,
    decoder: str | None = None,
    final_decoder: str | None = None,
    student: str | None = None,
) -> tuple[Any, Any]:
    """Diffusion Elites' search decoder and the executed plan's ((None, None) for others).

    Each is the prior (:func:`load_prior`: ``path`` or the task's shipped one) decoding by
    DDIM, or its student (``student``, default: the task's shipped one), one network call.
    ``decoder`` None: ``"student"`` where the task ships one for its shipped prior, else (and
    for a prior given by ``path``) ``"ddim"``; ``final_decoder`` None: ``decoder``. A
    student is refused unless it was distilled from that very prior file (``force`` skips this
    and the task check).
    """
    prior = load_prior(kind, spec, path, device, force)
    if prior is None:
        return None, None
    if decoder is None:
        decoder = "student" if path is None and spec.student is not None else "ddim"
    final_decoder = final_decoder or decoder
    for flag, value in (("--decoder", decoder), ("--final-decoder", final_decoder)):
        if value not in DECODERS:
            raise UsageError(f"{flag} must be one of {DECODERS}, got {value!r}")
    if "student" not in (decoder, final_decoder):
        return prior, prior
    distilled = read_student(spec, Path(path) if path else spec.prior_path, student, device, force)
    chosen = {"ddim": prior, "student": distilled}
    return chosen[decoder], chosen[final_decoder]


def read_student(
    spec, teacher: Path, path: str | None = None, device: str = "cpu", force: bool = False
) -> DistilledPrior:
    """The student at ``path`` (default: the task's shipped one), refused unless it records
    the task's family and was distilled from the prior file ``teacher`` (``force``: accept)."""
    path = Path(path) if path else spec.student_path
    if path is None:
        raise UsageError(
            f"task {spec.name} ships no student: distil one with experiments/distill_prior.py "
            f"--prior {teacher} and pass --student PATH, or search with --decoder ddim"
        )
    try:
        student = DistilledPrior.load(path, device=device, task=None if force else spec.family)
    except FileNotFoundError as exc:
        raise UsageError(f"{exc}: pass --student PATH, a file written by distill_prior.py") from exc
    except TaskMismatchError as exc:
        raise UsageError(f"{exc}, or add --force-prior to use it anyway") from exc
    recorded = student.record.get("teacher", {})
    if not force and recorded.get("sha256") != file_sha256(teacher):
        raise UsageError(
            f"{path} was distilled from {recorded.get('file', 'another prior')}, not from "
            f"{teacher}: distil a student of it (experiments/distill_prior.py --prior {teacher}) "
            "or search with --decoder ddim"
        )
    return student


def agent_path(spec, kind: str, path: str | None = None) -> Path:
    """``path``, or the task's shipped SB3 agent ``kind``: checkpoints/agents/<task>-<kind>.zip."""
    return Path(path) if path else CHECKPOINTS / "agents" / f"{spec.name}-{kind}.zip"


def load_agent(spec, env, kind: str, path: str | None = None, device: str = "cpu") -> Any:
    """The SB3 agent ``kind`` (in AGENTS) at :func:`agent_path`, refused unless it observes what
    ``env`` gives."""
    path = agent_path(spec, kind, path)
    if not path.is_file():
        raise UsageError(
            f"no {kind.upper()} agent at {path}: train one with experiments/train_agent.py "
            f"--env {spec.name} --algo {kind}, or pass --agent PATH"
        )
    model = load_sb3_agent(path, kind, device)
    if model.observation_space.shape != env.observation_space.shape:
        raise UsageError(
            f"{path} observes {model.observation_space.shape} but {spec.name} gives "
            f"{env.observation_space.shape}: pass the agent trained on {spec.name} with --agent"
        )
    return model


def make_budget(spec, env, prior, population=None, iterations=None, horizon=None) -> Budget:
    """The per-step budget: the prior's horizon (else ``horizon``, else the task's), the task's
    default N and T."""
    if prior is not None and horizon not in (None, prior.horizon):
        raise UsageError(
            f"Diffusion Elites plans over its prior's horizon H={prior.horizon}, not {horizon}: "
            f"pass a prior trained with that horizon, or drop the horizon"
        )
    if prior is None and horizon is None:
        horizon = spec.horizon
    defaults = spec.planner
    return Budget(
        horizon=prior.horizon if prior is not None else horizon,
        action_dim=env.action_space.shape[0],
        population=defaults.get("population", 64) if population is None else population,
        iterations=defaults.get("iterations", 4) if iterations is None else iterations,
    )


def planner_settings(spec, search_steps=None, final_steps=None, warm_start=None):
    """PlannerConfig for DE and CEM from the command line; None takes the task's default."""
    defaults = spec.planner
    return PlannerConfig(
        search_steps=defaults.get("search_steps", 2) if search_steps is None else search_steps,
        final_steps=defaults.get("final_steps", 5) if final_steps is None else final_steps,
        warm_start=defaults.get("warm_start", "shift") if warm_start is None else warm_start,
    )


def make_objective(
    spec, env, reward="simulator", world_model=None, seed=0, device="cpu", propagation="mean"
):
    """The planner's objective for ``env``: the task's simulator, or a learned world model.

    ``reward="world-model"`` loads ``world_model`` (default: checkpoints/<task>-world-model.pt;
    one trained for another task is refused) and scores candidates from the current observation,
    with the task's termination rule on predicted observations (envs/world_model_rules.py) and
    its termination cost (as the simulator's objective charges it), propagating the ensemble by
    its ``propagation`` (planner.world_model.PROPAGATIONS).
    """
    if reward == "simulator":
        return spec.make_objective(env)
    if reward != "world-model":
        raise UsageError(f"--reward must be one of {REWARDS}, got {reward!r}")
    path = Path(world_model) if world_model else CHECKPOINTS / f"{spec.name}-world-model.pt"
    if not path.is_file():
        raise UsageError(
            f"no world model at {path}: train one with experiments/train_world_model.py --env "
            f"{spec.name} --data FILE, or pass --world-model PATH"
        )
    model = WorldModel.load(path, task=spec.name, device=device)
    return WorldModelObjective(
        model,
        termination_fn(env),
        propagation,
        seed=seed,
        termination_cost=termination_cost(env),
    )


def task_planner(
    kind,
    spec,
    objective,
    budget,
    seed,
    prior,
    settings,
    device="cpu",
    record=False,
    tuning=None,
    final_decoder=None,
):
    """``build_planner`` with what the task gives every planner alike: its safeguards (the
    task's fill action) and the baseline's tuned settings (``tuning`` replaces them)."""
    safeguards = Safeguards(fill_action=spec.fill_action)
    tuning = tuning or spec.tuning.get(kind)
    return build_planner(
        kind, objective, budget, seed, prior, settings, device, record, safeguards, tuning,
        final_decoder,
    )  # fmt: skip


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
    tuning=None,
    final_decoder=None,
):
    """An SB3-style policy for ``env``: a planner behind DiffusionElitesPolicy, or an SB3 agent.

    ``prior`` and ``final_decoder``: DE's search decoder and the executed plan's
    (:func:`load_decoders`; ``final_decoder`` None: ``prior``).
    ``agent``: the SB3 zip for ``kind`` in AGENTS (default: checkpoints/agents/<task>-<kind>.zip).
    ``tuning``: the baseline's settings (see ``build_planner``); default (None or empty): the
    task's tuned ones, ``spec.tuning[kind]``.
    """
    if kind in AGENTS:
        return load_agent(spec, env, kind, agent, device)

    def make_planner(index: int):
        return task_planner(
            kind, spec, objective, budget, sub_env_seed(seed, index), prior, settings, device,
            record, tuning, final_decoder,
        )  # fmt: skip

    conditioned = prior is not None and prior.cond_dim > 0
    from_observation = getattr(objective, "plans_from_observation", False)
    return DiffusionElitesPolicy.for_env(env, make_planner, conditioned, from_observation)
