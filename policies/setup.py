"""One planning setup, from the command line or from Python, turned into a policy in one call.

A :class:`PlanningSetup` names everything a run plans with: the task, the planner (or SB3
agent), its budget, the prior and decoders, the reward (simulator or world model), the warm
start, the device and the seed; every field left at None takes the task's default
(:mod:`envs.registry`). Every script builds one and :meth:`PlanningSetup.policy` is the only
path from it to a policy, so ``run_mpc.py --env hopper`` and

    import gymnasium as gym
    from policies.setup import PlanningSetup

    env = gym.make("Hopper-v5")
    policy = PlanningSetup("hopper").policy(env)
    action, _ = policy.predict(env.reset(seed=0)[0])

plan with the same thing. :meth:`PlanningSetup.resolve` stops one step earlier, at a
:class:`Planning` (the loaded prior, objective, budget and planner settings for one env), for
code that builds many planners from one setup (the evaluation grid, a speed benchmark).

A setup that cannot plan raises :class:`SetupError`, which says how to fix it: by the
setting's Python name and its command-line flag.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from envs.mujoco_rewards import CostTerm, cost_terms
from envs.mujoco_tasks import termination_cost
from envs.registry import CHECKPOINTS, TaskSpec, get_task
from envs.world_model_rules import cost_fn, reward_fn, termination_fn
from planner.checkpoint import TaskMismatchError
from planner.distilled import DistilledPrior
from planner.files import file_sha256
from planner.knots import DEFAULT_INTERPOLATION, INTERPOLATIONS
from planner.mpc import EXECUTE, WARM_STARTS, PlannerConfig
from planner.planning import Budget, Planner
from planner.prior import DiffusionPrior
from planner.safeguards import Safeguards
from planner.validation import check_count
from planner.world_model import (
    PROPAGATIONS,
    WorldModel,
    WorldModelObjective,
    check_particles,
    check_pessimism,
)
from policies.diffusion_elites import DiffusionElitesPolicy
from policies.planners import PLANNERS, build_planner, sub_env_seed
from policies.sb3_agents import CriticValue, load_sb3_agent

AGENTS = ("sac", "ppo")
"""Trained stable-baselines3 agents a setup can run instead of a planner (no budget)."""
CONTROLLERS = PLANNERS + AGENTS
REWARDS = ("simulator", "world-model")
"""What candidates are scored with: the task's simulator, or a learned world model."""
WORLD_MODEL_REWARDS = ("computed", "learned")
"""A world model's reward: the task's rule on predicted observations, or the model's reward head."""
DECODERS = ("ddim", "student")
"""How Diffusion Elites decodes a latent: the prior's DDIM decode, or its one-call student."""
DE_ONLY = ("prior", "decoder", "final_decoder", "student")
NO_VALUE = "none"
"""``PlanningSetup.value_agent`` that plans without a value, also where the task has one."""


class SetupError(ValueError):
    """A setup that cannot plan: a missing or mismatched file, a setting of another planner."""


def option(name: str, value: Any = None) -> str:
    """The setting ``name`` as Python and the command line spell it, in a message:
    ``decoder (--decoder)``; with ``value``: ``prior=PATH (--prior PATH)``, and for a switch
    (``value=True``) ``force_prior=True (--force-prior)``."""
    flag = "--" + name.replace("_", "-")
    if value is None:
        return f"{name} ({flag})"
    if value is True:
        return f"{name}=True ({flag})"
    return f"{name}={value} ({flag} {value})"


@dataclass(frozen=True)
class PlanningSetup:
    """Everything a run plans with; None takes the task's default.

    Attributes:
        task: a short name (``hopper``) or Gymnasium id (``Hopper-v5``) of
            :func:`envs.registry.get_task`; stored as the short name.
        planner: one of :data:`CONTROLLERS`: ``de`` (Diffusion Elites), an action-space
            baseline (``cem``, ``icem``, ``mppi``, ``random``) or a trained SB3 agent.
        population, iterations: N and T per control step (default: the task's).
        horizon: H env steps of planners without a prior (default: the task's); DE plans over
            its prior's, and refuses another.
        horizon_seconds: H in seconds instead of steps, ``round(seconds / env dt)`` steps.
        knots, interpolation: K knots per plan and how they become H actions
            (:mod:`planner.knots`; default: a knot per step), the same for every planner; DE
            plans with its prior's, and refuses others.
        prior: DE's prior checkpoint (default: the task's shipped one).
        decoder, final_decoder: what DE searches with and what decodes its executed plan, each
            one of :data:`DECODERS` (default: the student where the task ships one for its
            prior, else ddim; the final one as the search's).
        student: the student checkpoint (default: the task's shipped one).
        force_prior: accept a prior or student recorded for another task or teacher.
        reward: one of :data:`REWARDS`; ``world-model`` plans from the observation.
        world_model: its checkpoint (default: checkpoints/<task>-world-model.pt).
        propagation: how the world model's ensemble is rolled out (PROPAGATIONS; None: the
            task's, :attr:`~envs.registry.TaskSpec.world_model_propagation`, set here once).
        particles: P, rollouts per candidate of a sampling propagation (None: its default,
            :class:`~planner.world_model.WorldModelObjective`); a candidate counts once in the
            budget whatever P.
        pessimism: k of a world model's candidate score ``mean - k std`` over its particles'
            returns (0: the mean; a sampling propagation only).
        world_model_reward: the world model's reward, one of :data:`WORLD_MODEL_REWARDS`:
            the task's rule on predicted observations or the model's reward head (None: the
            task's default, :attr:`~envs.registry.TaskSpec.world_model_reward`).
        search_steps, final_steps, warm_start, execute: DE's settings
            (:class:`planner.mpc.PlannerConfig`; default: the task's).
        tuning: a baseline's settings replacing the task's tuned ones (a mapping or pairs).
        costs: planning-only cost terms of the simulator's objective, replacing the task's
            declared ones (``TaskSpec.costs``): pairs ``(name, weight)`` or ``(name, (weight,
            target))``, a mapping of those, :class:`~envs.mujoco_rewards.CostTerm` s or the
            command line's text (``"height=10@1.3,upright=3"``, :func:`parse_costs`); stored as
            cost terms. None: the task's; empty or ``"none"``: no cost terms. They shape the
            search only: the reported return is the env's own.
        agent: the SB3 agent zip (default: checkpoints/agents/<task>-<planner>.zip).
        value_agent: a SAC agent zip whose critic values the state at the horizon's end
            (:class:`~policies.sb3_agents.CriticValue`), added to the planning reward of every
            candidate that does not fall, at the last state the simulator reaches or the world
            model predicts; planning only. None: the task's
            (:attr:`~envs.registry.TaskSpec.value_agent`: hopper's and walker2d's critics, no
            value elsewhere); ``"none"``: no value.
        value_weight: the value is multiplied by it (None: the task's weight).
        device: torch device of the prior and world model.
        seed: seeds the planners (sub-env i of a VecEnv: :func:`sub_env_seed`) and the world
            model's sampling.
        record: keep each step's population in PlanResult (for videos).
    """

    task: str
    planner: str = "de"
    population: int | None = None
    iterations: int | None = None
    horizon: int | None = None
    horizon_seconds: float | None = None
    knots: int | None = None
    interpolation: str | None = None
    prior: str | None = None
    decoder: str | None = None
    final_decoder: str | None = None
    student: str | None = None
    force_prior: bool = False
    reward: str = "simulator"
    world_model: str | None = None
    propagation: str | None = None
    particles: int | None = None
    pessimism: float = 0.0
    world_model_reward: str | None = None
    search_steps: int | None = None
    final_steps: int | None = None
    warm_start: str | None = None
    execute: str = "best"
    tuning: tuple[tuple[str, Any], ...] = field(default=())
    costs: tuple[CostTerm, ...] | None = None
    agent: str | None = None
    value_agent: str | None = None
    value_weight: float | None = None
    device: str = "cpu"
    seed: int = 0
    record: bool = False

    def __post_init__(self) -> None:
        try:
            spec = get_task(self.task)
        except ValueError as exc:
            raise SetupError(str(exc)) from None
        object.__setattr__(self, "task", spec.name)  # frozen: normalised once, here
        if self.propagation is None:
            object.__setattr__(self, "propagation", spec.world_model_propagation)
        tuning = self.tuning.items() if isinstance(self.tuning, Mapping) else self.tuning
        object.__setattr__(self, "tuning", tuple(sorted(tuple(pair) for pair in tuning)))
        if self.costs is not None:
            object.__setattr__(self, "costs", _cost_terms(self.costs))
        choices = {
            "planner": CONTROLLERS,
            "reward": REWARDS,
            "propagation": PROPAGATIONS,
            "world_model_reward": WORLD_MODEL_REWARDS,
            "execute": EXECUTE,
            "decoder": DECODERS,
            "final_decoder": DECODERS,
            "warm_start": WARM_STARTS,
            "interpolation": INTERPOLATIONS,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise SetupError(f"{option(name)} must be one of {allowed}, got {value!r}")
        counts = ("population", "iterations", "horizon", "knots", "search_steps", "final_steps")
        for name in counts:
            if getattr(self, name) is not None:
                check_count(f"PlanningSetup.{name}", getattr(self, name))
        if self.value_weight is not None and not math.isfinite(self.value_weight):
            raise SetupError(f"{option('value_weight')} must be finite, got {self.value_weight}")
        if self.horizon_seconds is not None and not self.horizon_seconds > 0:
            raise SetupError(f"{option('horizon_seconds')} must be > 0, got {self.horizon_seconds}")
        if self.horizon is not None and self.horizon_seconds is not None:
            raise SetupError(
                f"pass the horizon once: {option('horizon')} in env steps or "
                f"{option('horizon_seconds')}, not both"
            )
        if self.pessimism and self.reward != "world-model":
            raise SetupError(
                f"{option('pessimism')} charges a world model's disagreement: plan with "
                f"{option('reward', 'world-model')}, or drop it"
            )
        for name, check in (("particles", check_particles), ("pessimism", check_pessimism)):
            try:
                check(self.propagation, getattr(self, name))
            except ValueError as exc:
                raise SetupError(f"{exc} ({option(name)}, {option('propagation')})") from None
        for name in DE_ONLY:
            if getattr(self, name) is not None and self.planner != "de":
                raise SetupError(
                    f"{option(name)} is a setting of Diffusion Elites, but the planner is "
                    f"{self.planner}: drop it, or plan with {option('planner', 'de')}"
                )

    @classmethod
    def from_fields(cls, source: Any, **overrides: Any) -> PlanningSetup:
        """The setup whose fields ``source`` (a script's arguments) has under the same names;
        ``overrides`` win (e.g. ``task=args.env``)."""
        values = {f.name: getattr(source, f.name) for f in fields(cls) if hasattr(source, f.name)}
        return cls(**{**values, **overrides})

    @property
    def spec(self) -> TaskSpec:
        """The task's :class:`~envs.registry.TaskSpec`."""
        return get_task(self.task)

    def resolve(self, env: Any) -> Planning:
        """The setup's files loaded and its defaults filled for ``env`` (see :class:`Planning`)."""
        decoder, final_decoder = self.decoders()
        return Planning(
            self,
            env,
            self.objective(env),
            None if self.planner in AGENTS else self.budget(env, decoder),
            self.planner_config(),
            decoder,
            final_decoder,
        )

    def policy(self, env: Any) -> Any:
        """What controls ``env`` (a Gymnasium env or an SB3 VecEnv): a
        :class:`~policies.diffusion_elites.DiffusionElitesPolicy` over the setup's planner, or
        the SB3 agent; either answers ``predict(observation)``."""
        return self.resolve(env).policy()

    def prior_file(self) -> Path | None:
        """DE's prior checkpoint: ``prior``, else the task's shipped one (None: a planner
        without a prior). Refuses a task that ships none when ``prior`` is not set."""
        if self.planner != "de":
            return None
        if self.prior:
            return Path(self.prior)
        if self.spec.prior_path is None:
            raise SetupError(
                f"task {self.spec.name} ships no prior yet: pass {option('prior', 'PATH')}, a "
                "file written by experiments/train_prior.py, or plan with a baseline such as "
                f"{option('planner', 'cem')}, which needs none"
            )
        return self.spec.prior_path

    def decoders(self) -> tuple[Any, Any]:
        """DE's search decoder and the executed plan's ((None, None) for other planners).

        Each is the prior (``prior`` or the task's shipped one) decoding by DDIM, or its student
        (``student`` or the task's shipped one), one network call. A student is refused unless it
        was distilled from that very prior file (``force_prior`` skips this and the task check).
        """
        teacher = self.prior_file()
        if teacher is None:
            return None, None
        spec = self.spec
        prior = read_prior(teacher, spec.family, self.device, self.force_prior)
        decoder = self.decoder
        if decoder is None:
            decoder = "student" if self.prior is None and spec.student is not None else "ddim"
        final_decoder = self.final_decoder or decoder
        if "student" not in (decoder, final_decoder):
            return prior, prior
        student = read_student(spec, teacher, self.student, self.device, self.force_prior)
        chosen = {"ddim": prior, "student": student}
        return chosen[decoder], chosen[final_decoder]

    def budget(self, env: Any, decoder: Any = None) -> Budget:
        """N x T over H, plans of K knots, for ``env``: H, K and the interpolation are DE's
        ``decoder``'s (refusing others), else the set ones (H: else the task's; K: else a knot
        per step); N and T are ``population`` and ``iterations``, else the task's."""
        defaults = self.spec.planner
        horizon = self.horizon
        if self.horizon_seconds is not None:
            horizon = max(1, round(self.horizon_seconds / _env_dt(env)))
        if decoder is None:
            horizon = horizon or self.spec.horizon
            knots, interpolation = self.knots, self.interpolation or DEFAULT_INTERPOLATION
        else:
            schedule = decoder.knot_schedule
            _check_prior_plans(schedule, horizon, self.knots, self.interpolation)
            horizon, knots, interpolation = schedule.horizon, schedule.knots, schedule.interpolation
        try:
            return Budget(
                horizon=horizon,
                action_dim=env.action_space.shape[0],
                population=_default(self.population, defaults, "population", 64),
                iterations=_default(self.iterations, defaults, "iterations", 4),
                knots=knots,
                interpolation=interpolation,
            )
        except ValueError as exc:
            raise SetupError(
                f"{exc} ({option('horizon')}, {option('knots')}, {option('interpolation')})"
            ) from None

    def value(self) -> tuple[Path, float] | None:
        """The agent whose critic values the horizon's ends, and its weight: ``value_agent`` and
        ``value_weight``, else the task's. None: no value (``value_agent`` ``"none"``, a task
        without one, or an SB3 agent, which does not plan)."""
        if self.value_agent == NO_VALUE or self.planner in AGENTS:
            return None
        path = Path(self.value_agent) if self.value_agent else self.spec.value_agent_path
        if path is None:
            return None
        return path, self.spec.value_weight if self.value_weight is None else self.value_weight

    def terminal_value(self, env: Any) -> CriticValue | None:
        """The critic of :meth:`value` loaded for ``env``, times its weight (None: no value)."""
        chosen = self.value()
        if chosen is None:
            return None
        agent = load_agent(self.spec, env, "sac", str(chosen[0]), self.device, "value_agent")
        return CriticValue(agent, chosen[1])

    def planner_config(self) -> PlannerConfig:
        """DE's and CEM's :class:`~planner.mpc.PlannerConfig`: the set fields, else the task's."""
        defaults = self.spec.planner
        return PlannerConfig(
            search_steps=_default(self.search_steps, defaults, "search_steps", 2),
            final_steps=_default(self.final_steps, defaults, "final_steps", 5),
            warm_start=_default(self.warm_start, defaults, "warm_start", "shift"),
            execute=self.execute,
        )

    def objective(self, env: Any) -> Any:
        """What scores candidates for ``env``: the task's simulator, or a learned world model.

        ``reward="world-model"`` loads ``world_model`` (one trained for another task is
        refused) and scores candidates from the current observation, with the task's
        termination rule on predicted observations (envs/world_model_rules.py) and its
        termination cost (as the simulator's objective charges it), rolling the ensemble out
        by ``propagation`` with ``particles`` per candidate, seeded with ``seed``, a candidate
        scored ``pessimism`` standard deviations of its particles below their mean. Its reward is
        ``world_model_reward``: ``"computed"`` (the task's rule on predicted observations,
        :func:`envs.world_model_rules.reward_fn`) or ``"learned"`` (the model's reward head);
        None: the task's default. The cost terms (``costs``, or the task's declared ones) are
        charged alike: on simulator rollouts, or on the model's predicted observations
        (:func:`envs.world_model_rules.cost_fn`). ``value_agent``'s critic, times
        ``value_weight``, values the candidates at their horizon's end, simulated or predicted
        (:meth:`value`).
        """
        spec = self.spec
        env = env.envs[0] if hasattr(env, "envs") else env  # a VecEnv's sub-envs share a task
        costs = spec.costs if self.costs is None else self.costs
        if self.reward == "simulator":
            value = self.terminal_value(env)
            try:
                return spec.make_objective(env, costs, value)
            except ValueError as exc:
                given = (
                    option("costs")
                    if value is None
                    else f"{option('costs')}, {option('value_agent')}"
                )
                raise SetupError(f"{exc} ({given})") from None
        try:
            charged = cost_fn(env, costs)
        except ValueError as exc:
            raise SetupError(f"{exc} ({option('costs')})") from None
        computed = (self.world_model_reward or spec.world_model_reward) == "computed"
        rule = reward_fn(env) if computed else None
        if computed and rule is None:
            raise SetupError(
                f"task {spec.name} has no reward rule on observations (its observation does not "
                f"hold what its reward reads): pass {option('world_model_reward', 'learned')} "
                "to plan with the world model's reward head"
            )
        path = Path(self.world_model or CHECKPOINTS / f"{spec.name}-world-model.pt")
        if not path.is_file():
            raise SetupError(
                f"no world model at {path}: train one with experiments/train_world_model.py "
                f"--env {spec.name} --data FILE, or pass {option('world_model', 'PATH')}"
            )
        value = self.terminal_value(env)  # the critic loads once the model is known to exist
        model = WorldModel.load(path, task=spec.name, device=self.device)
        return WorldModelObjective(
            model,
            termination_fn(env),
            self.propagation,
            seed=self.seed,
            termination_cost=termination_cost(env),
            particles=self.particles,
            pessimism=self.pessimism,
            reward_fn=rule,
            cost_fn=charged,
            terminal_value=value,
        )


@dataclass(frozen=True)
class Planning:
    """A :class:`PlanningSetup` resolved for one env: its files loaded, its defaults filled.

    Planners and policies built from it share the objective (and its rollout pool) and the
    decoders; :meth:`with_objective` swaps what scores candidates.

    Attributes:
        setup: what it was resolved from.
        env: the env (or VecEnv) it plans for.
        objective: ``rewards (N,) = objective(state, actions (N, H, A))``.
        budget: N x T evaluations over H steps per control step (None for an SB3 agent, which
            plans nothing).
        config: DE's and CEM's :class:`~planner.mpc.PlannerConfig`.
        decoder, final_decoder: DE's search and final decoders (None for other planners).
    """

    setup: PlanningSetup
    env: Any
    objective: Any
    budget: Budget | None
    config: PlannerConfig
    decoder: Any
    final_decoder: Any

    def planner(self, seed: int | None = None) -> Planner:
        """A new planner (default seed: the setup's) with what the task gives every planner
        alike: its safeguards (the task's fill action) and the baseline's tuned settings (the
        setup's ``tuning`` replaces them)."""
        setup, spec = self.setup, self.setup.spec
        return build_planner(
            setup.planner,
            self.objective,
            self.budget,
            setup.seed if seed is None else seed,
            self.decoder,
            self.config,
            setup.device,
            setup.record,
            Safeguards(fill_action=spec.fill_action),
            dict(setup.tuning) or spec.tuning.get(setup.planner),
            self.final_decoder,
        )

    def policy(self, seed: int | None = None) -> Any:
        """A policy for ``env`` (default seed: the setup's): the SB3 agent of an agent setup,
        else a :class:`~policies.diffusion_elites.DiffusionElitesPolicy` with one planner per
        sub-env (seeded by :func:`sub_env_seed`)."""
        setup = self.setup
        if setup.planner in AGENTS:
            return load_agent(setup.spec, self.env, setup.planner, setup.agent, setup.device)
        seed = setup.seed if seed is None else seed
        return DiffusionElitesPolicy.for_env(
            self.env,
            lambda i: self.planner(sub_env_seed(seed, i)),
            self.conditioned,
            self.plans_from_observation,
        )

    @property
    def conditioned(self) -> bool:
        """Whether its planner takes the observation as the prior's conditioning vector
        (``plan(state, cond=observation)``): DE over a conditioned prior."""
        return self.decoder is not None and self.decoder.cond_dim > 0

    @property
    def plans_from_observation(self) -> bool:
        """Whether its planner's state is the observation (a world model), not the simulator's
        state."""
        return getattr(self.objective, "plans_from_observation", False)

    def with_objective(self, objective: Any) -> Planning:
        """The same planning, scoring candidates with ``objective``."""
        return replace(self, objective=objective)


def _cost_terms(costs: Any) -> tuple[CostTerm, ...]:
    """``PlanningSetup.costs`` in any of its spellings -> cost terms, or SetupError."""
    try:
        return cost_terms(costs)
    except (ValueError, TypeError) as exc:
        raise SetupError(f"{option('costs')}: {exc}") from None


def _env_dt(env: Any) -> float:
    """Seconds of one step of ``env`` (a Gymnasium env or an SB3 VecEnv)."""
    env = env.envs[0] if hasattr(env, "envs") else env
    return float(env.unwrapped.dt)


def _check_prior_plans(
    schedule: Any, horizon: int | None, knots: int | None, interpolation: str | None
) -> None:
    """Refuse a horizon, knot count or interpolation other than the prior's ``schedule``."""
    asked = {"horizon": horizon, "knots": knots, "interpolation": interpolation}
    for name, value in asked.items():
        if value is not None and value != getattr(schedule, name):
            raise SetupError(
                f"Diffusion Elites plans as its prior was trained: H={schedule.horizon} steps, "
                f"{schedule.knots} knots, {schedule.interpolation} interpolation; not "
                f"{name}={value}: pass a prior trained for it (experiments/train_prior.py, "
                f"experiments/improve_prior.py), or drop {option(name)}"
            )


def _default(value: Any, defaults: Mapping[str, Any], name: str, fallback: Any) -> Any:
    """``value``, or (when None) the task's default ``defaults[name]``, or ``fallback``."""
    return defaults.get(name, fallback) if value is None else value


def read_prior(
    path: str | Path, family: str, device: str = "cpu", force: bool = False
) -> DiffusionPrior:
    """``DiffusionPrior.load`` refused unless it records ``family`` (``force``: any task),
    with errors that say how to fix the setup."""
    try:
        return DiffusionPrior.load(path, device=device, task=None if force else family)
    except FileNotFoundError as exc:
        raise SetupError(
            f"{exc}: pass {option('prior', 'PATH')}, a file written by experiments/train_prior.py"
        ) from exc
    except TaskMismatchError as exc:
        raise SetupError(f"{exc}, or pass {option('force_prior', True)} to use it anyway") from exc


def read_student(
    spec: TaskSpec, teacher: Path, path: str | None = None, device="cpu", force=False
) -> DistilledPrior:
    """The student at ``path`` (default: the task's shipped one), refused unless it records
    the task's family and was distilled from the prior file ``teacher`` (``force``: accept)."""
    path = Path(path) if path else spec.student_path
    if path is None:
        raise SetupError(
            f"task {spec.name} ships no student: distil one with experiments/distill_prior.py "
            f"--prior {teacher} and pass {option('student', 'PATH')}, or search with "
            f"{option('decoder', 'ddim')}"
        )
    try:
        student = DistilledPrior.load(path, device=device, task=None if force else spec.family)
    except FileNotFoundError as exc:
        raise SetupError(
            f"{exc}: pass {option('student', 'PATH')}, a file written by "
            "experiments/distill_prior.py"
        ) from exc
    except TaskMismatchError as exc:
        raise SetupError(f"{exc}, or pass {option('force_prior', True)} to use it anyway") from exc
    recorded = student.record.get("teacher", {})
    if not force and recorded.get("sha256") != file_sha256(teacher):
        raise SetupError(
            f"{path} was distilled from {recorded.get('file', 'another prior')}, not from "
            f"{teacher}: distil a student of it (experiments/distill_prior.py --prior {teacher}) "
            f"or search with {option('decoder', 'ddim')}"
        )
    return student


def agent_path(spec: TaskSpec, kind: str, path: str | None = None) -> Path:
    """``path``, or the task's shipped SB3 agent ``kind``: checkpoints/agents/<task>-<kind>.zip."""
    return Path(path) if path else CHECKPOINTS / "agents" / f"{spec.name}-{kind}.zip"


def load_agent(
    spec: TaskSpec,
    env: Any,
    kind: str,
    path: str | None = None,
    device: str = "cpu",
    given_as: str = "agent",
) -> Any:
    """The SB3 agent ``kind`` (in AGENTS) at :func:`agent_path`, refused unless it observes what
    ``env`` gives; ``given_as``: the setup field that names it, for the messages."""
    path = agent_path(spec, kind, path)
    if not path.is_file():
        raise SetupError(
            f"no {kind.upper()} agent at {path}: train one with experiments/train_agent.py "
            f"--env {spec.name} --algo {kind}, or pass {option(given_as, 'PATH')}"
        )
    model = load_sb3_agent(path, kind, device)
    if model.observation_space.shape != env.observation_space.shape:
        raise SetupError(
            f"{path} observes {model.observation_space.shape} but {spec.name} gives "
            f"{env.observation_space.shape}: pass the agent trained on {spec.name} as "
            f"{option(given_as, 'PATH')}"
        )
    return model
