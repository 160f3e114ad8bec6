"""Short task names -> env factory, planning objective, shipped prior and defaults.

``make_env(name)`` returns a Gymnasium env that answers ``planning_state()`` (through its
wrappers, and inside SB3 VecEnvs via ``env_method``): the full simulator state the task's
objective restarts from (see :mod:`envs.planning_state`, which also reads it from a plain
``gymnasium.make`` env). ``task.make_objective(env, costs, terminal_value)`` gives the batched
objective ``rewards (N,) = objective(state, actions (N, H, A))`` for that env. Together they are
all a planner needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from envs import mujoco_tasks
from envs.mujoco_rewards import CostTerm, format_costs, parse_costs, unsupported_reason
from envs.planning_state import PlanningState
from envs.unicycle import register_unicycle_envs
from planner.objective import TerminalValue

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
TUNING_FILE = Path(__file__).resolve().parent / "baseline_tuning.json"
"""Each task's tuned baseline settings, written by experiments/tune_baselines.py."""


@dataclass(frozen=True)
class TaskSpec:
    """Everything the scripts need to plan on one task.

    Attributes:
        name: short name (``unicycle-goal``).
        env_id: Gymnasium id the env is made from.
        make_objective: ``(env, costs, terminal_value) -> objective`` scoring (N, H, A)
            normalised actions from a state, charging the planning-only cost terms ``costs``
            (``()``: none) and adding ``terminal_value`` at the horizon's end (None: none;
            :data:`planner.objective.TerminalValue`).
        prior: file name in ``checkpoints/`` of the shipped action-chunk prior (None: none yet).
        student: file name in ``checkpoints/`` of the one-step student distilled from that
            prior (experiments/distill_prior.py; None: none), DE's default decoder where it
            ships. A student ships where it planned at least as well as the prior's DDIM decode
            on validation seeds (results/student/).
        family: the task name its priors record (``DiffusionPrior.task``), checked when one is
            loaded. Tasks with the same dynamics and action space share priors, so they share
            a family: ``unicycle`` for both unicycle tasks (default: ``name``).
        horizon: H env steps for planners without a prior (with one, the prior's horizon is
            used); their plans have a knot per step unless told (results/knots/README.md).
        episodes: default episode count of ``run_mpc.py``.
        max_steps: default cut of an episode (None: the env's own limit).
        planner: default planner settings (population, iterations, search_steps, final_steps,
            warm_start).
        fill_action: the task's safe action (normalised), shared by every planner through
            :class:`planner.safeguards.Safeguards`; None: shifted plans repeat their last action
            and there is no safe plan.
        tuning: per baseline kind, its settings tuned on this task (``{"mppi": {"noise_std":
            ...}}``), chosen by ``experiments/tune_baselines.py`` (its tables: TUNING.md).
        env_kwargs: passed to ``gymnasium.make``.
        costs: planning-only cost terms the task's objective charges by default
            (:data:`envs.mujoco_rewards.COST_TERMS`); declared only where a measurement showed a
            term helps (results/task-costs/README.md).
        world_model_reward: the reward a learned world model plans with unless told
            (``policies.setup.WORLD_MODEL_REWARDS``): ``"computed"``, the task's rule on
            predicted observations (:func:`envs.world_model_rules.reward_fn`), where it planned
            at least as well as the model's reward head, else ``"learned"``.
        value_agent: file name in ``checkpoints/`` of the SAC agent whose critic values the
            horizon's end of every planner by default (None: no value); declared
            only where a measurement showed it helps (results/terminal-value/README.md).
        value_weight: the default weight of that value.
        world_model_propagation: how a world model's planner rolls the ensemble out unless told
            (``planner.world_model.PROPAGATIONS``): ``"tsinf"`` where trajectory sampling
            planned better on validation seeds than the ensemble mean, else ``"mean"``.
    """

    name: str
    env_id: str
    make_objective: Callable[[gym.Env, tuple[CostTerm, ...], TerminalValue | None], Any]
    prior: str | None = None
    student: str | None = None
    horizon: int = 16
    episodes: int = 10
    max_steps: int | None = None
    planner: dict[str, Any] = field(default_factory=dict)
    fill_action: tuple[float, ...] | None = None
    tuning: dict[str, dict[str, Any]] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    family: str = ""
    costs: tuple[CostTerm, ...] = ()
    world_model_reward: str = "learned"
    value_agent: str | None = None
    value_weight: float = 1.0
    world_model_propagation: str = "mean"

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.name)  # frozen: set once, here

    @property
    def prior_path(self) -> Path | None:
        """Absolute path of the shipped prior, or None."""
        return None if self.prior is None else CHECKPOINTS / self.prior

    @property
    def student_path(self) -> Path | None:
        """Absolute path of the shipped student of the shipped prior, or None."""
        return None if self.student is None else CHECKPOINTS / self.student

    @property
    def value_agent_path(self) -> Path | None:
        """Absolute path of the agent whose critic is the default value, or None."""
        return None if self.value_agent is None else CHECKPOINTS / self.value_agent

    @property
    def value_text(self) -> str:
        """The default value in words, for help texts and reports."""
        if self.value_agent is None:
            return "none"
        return f"checkpoints/{self.value_agent}'s critic at weight {self.value_weight:g}"


def _unicycle_objective(
    env: gym.Env, costs: tuple[CostTerm, ...] = (), terminal_value: TerminalValue | None = None
) -> Any:
    if terminal_value is not None:
        raise ValueError(
            "the unicycle tasks take no terminal value: a goal-reaching plan's return is all "
            "within its horizon"
        )
    if costs:
        raise ValueError(
            f"the unicycle tasks have no planning cost terms ({format_costs(costs)}): they are "
            "written for the MuJoCo tasks (envs/mujoco_rewards.py)"
        )
    return env.unwrapped.objective


def _mujoco_objective(
    env: gym.Env, costs: tuple[CostTerm, ...] = (), terminal_value: TerminalValue | None = None
) -> Any:
    return mujoco_tasks.MujocoTask(env).objective(costs=costs, terminal_value=terminal_value)


UNICYCLE_PLANNER = {
    "population": 64,
    "iterations": 4,
    "search_steps": 2,
    "final_steps": 5,
    # Measured (results/warm-start/README.md, 20 seeds): "shift-mix" keeps the restart's
    # success on unicycle-obstacles (0.85 at 16x2, 1.0 at 64x4; "shift": 0.75, 0.95) and reaches
    # the goal of unicycle-goal 6.8 +- 3.4 / 4.9 +- 1.8 steps sooner than a restart.
    "warm_start": "shift-mix",
}
UNICYCLE_STAND_STILL = (-1.0, 0.0)
"""Speed 0, no turn: a shifted collision-free plan stays collision-free, and holding it is safe."""
MUJOCO_PLANNER = {
    "population": 64,
    "iterations": 3,
    "search_steps": 2,
    "final_steps": 5,
    # Measured with the shipped SAC-data priors (results/warm-start/README.md, 5 seeds, 200
    # steps): the shifted mean beats a restart on every task, e.g. half-cheetah return 363
    # against 144 at 16x3 and 826 against 193 at 64x3, reacher +0.69 +- 0.17 paired at 16x3.
    # With the self-taught priors (results/warm-start/selftaught-16x3, 5 seeds) none, shift and
    # shift-mix are within noise of each other on half-cheetah and reacher.
    "warm_start": "shift",
}
MUJOCO_COSTS = {"half-cheetah": parse_costs("flip=100")}
"""Declared planning cost terms (results/task-costs/README.md, seeds 100-101, 400 steps, 64x3).
Half-cheetah: charging a flip (pitch past pi/2) stopped CEM and iCEM flipping onto the back
(return 859 -> 2799 and 1556 -> 2731, means of 2 seeds); DE, which does not flip,
lost 38 (4492 -> 4454). Hopper: no term kept it up while it moved forward (results/task-costs)."""
MUJOCO_EPISODES = {"inverted-pendulum": (5, 200), "reacher": (10, None)}
"""Episodes and step cut of run_mpc.py per MuJoCo task; the rest: 3 episodes of 200 steps."""
MUJOCO_PRIORS = {
    "reacher": "reacher-action-selftaught.pt",
    "half-cheetah": "half-cheetah-action-selftaught.pt",
    "hopper": "hopper-action-selftaught.pt",
    "walker2d": "walker2d-action-cond.pt",
}
"""Shipped action-chunk priors. Reacher and half-cheetah: taught by their own planner from a
prior of smooth random actions, no agent needed (experiments/improve_prior.py,
results/improve-prior/); against the prior of SAC agent data on the same seeds, half-cheetah
gains +903 +- 483 at 64x3 and reacher is level (results/self-taught/). Hopper: one round of
self-teaching with its critic (improve_prior.py --start shipped) over the prior of the episodes of
the 452k-step agent whose critic is its default value (hopper-action-sac452k.pt, the default
before); on validation seeds 500-504 (1000 steps, DE 64x3, that critic) it scored 3640 +- 14
against 3593 +- 15, better on every seed; that agent's prior had scored 3596 +- 11 against
3418 +- 34 for the 32k-step agent's (hopper-action.pt) on seeds 300-304 (results/terminal-value/).
Without the critic, self-teaching had not helped: its teachers fell as early as the planner did.
The world model's planner plans over it too: with hopper-world-model.pt, trained on rounds of
that planner's own episodes over this prior, it scored 3628 against 3538 over the 452k agent's
prior (validation seeds 1000-1004, 1000 steps; results/world-model-value/). Earlier models fell
with it (2050 and 2967 against 3114 and 3470), which kept it from being the default until then.
Walker2d: a prior of its SAC agent's episodes conditioned on each chunk's first observation
(train_prior.py --condition); the unconditioned priors of the same agent's data barely moved or
fell (results/staying-up/), this one walked all 1000 steps on validation seeds 300-302 with the
task's default value."""
MUJOCO_STUDENTS = {
    "reacher": "reacher-action-selftaught-student.pt",
    "half-cheetah": "half-cheetah-action-selftaught-student.pt",
}
"""Shipped one-step students of the shipped priors (experiments/distill_prior.py, S = 5),
chosen on validation seeds 1000-1009, 64x3, 200 steps (runs kept in results/student/): half-cheetah
return +214 +- 108 over the DDIM decode, reacher level. Hopper's student lost (-55 +- 45) and
does not ship."""

MUJOCO_VALUES = {
    "hopper": {"value_agent": "agents/hopper-value-452k-sac.zip", "value_weight": 2.0},
    "walker2d": {"value_agent": "agents/walker2d-value-sac.zip", "value_weight": 2.0},
}
"""Each task's default value at the horizon's end (the SAC agent whose critic it is, and its
weight), for every planner, on the simulator or on a world model. Hopper, chosen on validation
seeds 300-304 (1000 steps, DE 64x3) among two agents and weights 1 and 2: the 452k-step agent at
weight 2 kept it up all 1000 steps on every seed; without a value every planner falls within 200
steps
(results/terminal-value/README.md). Walker2d: its agent's critic at weight 2 (the weight
hopper's was chosen at, not tuned again) kept CEM walking all 1000 steps on validation seeds
300-301, and DE over the task's prior on 300-302 (results/staying-up/README.md). On hopper's
world model the critic took DE from 155 to 595 steps survived (validation seeds 1000-1002, 1000
steps, results/world-model-value/). On walker2d's earlier model (trained on CEM's falling
episodes, never a gait) it cut DE's return from 212 to 43 per 200 steps; on its model of the
agent's gait, with TS-inf, it took DE from 203 to 446 and from 104 to all 200 steps survived
(validation seeds 1000-1002). The other tasks have no agent that was measured to help."""
MUJOCO_PROPAGATIONS = {"half-cheetah": "tsinf", "hopper": "tsinf", "walker2d": "tsinf"}
"""Tasks whose world model plans by default with TS-inf (a member per particle for the whole
horizon, 5 particles, a candidate scored by their mean; as many model rows as the mean) instead
of the ensemble mean, chosen on validation seeds. A planner steers into the states its model errs
on; where the members disagree there, some of a candidate's particles fail, and the candidate
scores lower. Hopper (DE 64x3 with its critic, 1000 steps, its last two models, seeds
1000-1004): TS-inf minus the mean +1305 +- 922 per episode over 10 pairs (better on 8), +362 +-
247 steps survived; with the shipped model TS-inf kept it up on 3 of 5 seeds, the mean on none.
Walker2d (its model of the agent's gait, 200 steps): the mean fell within 12 steps on every seed,
TS-inf with the critic walked all 200 (results/world-model-value/README.md). Half-cheetah (its
models from the planners' candidates, DE 64x3, 1000 steps, seeds 1010-1019, stop 38,
results/world-model-candidates/): TS-inf minus the mean +848 +- 283 per episode with R4 (the
shipped model until stop 42), +622 +- 512 with the one before; its earlier models, trained on
episodes alone, planned level with either (+38 +- 57, results/world-model-loop/). Reacher keeps
the mean (not measured)."""
MUJOCO_COMPUTED_REWARDS = ("reacher",)
"""Tasks whose world model plans by default with the reward computed from predicted
observations, chosen on validation seeds 1000-1007 (results/world-model-reward/: DE 64x3, the
shipped world models, 200 steps; paired computed - learned, 95% t). Reacher: +0.52 +- 0.19,
better on all 8 seeds (its rule is the env's reward exactly; the head errs by 0.021 per step).
Hopper: -5.7 +- 10.1 and half-cheetah: -49 +- 123, no better: they keep the head. Half-cheetah's
R4 (TS-inf; stop 42, fresh seeds, results/world-model-candidates/): -43 +- 119 over 200 steps,
+103 +- 476 over 1000, still no better; R5, shipped after it, was not checked. The other tasks
ship no world model, nothing was measured: they keep the head."""


TUNED: dict[str, dict[str, dict[str, Any]]] = (
    json.loads(TUNING_FILE.read_text()) if TUNING_FILE.exists() else {}
)
"""The baselines' settings per task from TUNING_FILE; a task without an entry uses their
defaults."""

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            "unicycle-goal",
            "UnicycleGoal-v0",
            _unicycle_objective,
            prior="unicycle-action.pt",
            # The student of the search's 2-step decode (results/student/README.md): on 60
            # validation seeds of unicycle-obstacles it succeeded as often as DDIM (+0.05 +-
            # 0.07) and reached the goal 4.5 +- 3.8 steps sooner; the 5-step decode's student
            # succeeded less often there (-0.15 +- 0.12).
            student="unicycle-action-student.pt",
            horizon=32,
            planner=UNICYCLE_PLANNER,
            fill_action=UNICYCLE_STAND_STILL,
            tuning=TUNED.get("unicycle-goal", {}),
            family="unicycle",
        ),
        TaskSpec(
            "unicycle-obstacles",
            "UnicycleObstacles-v0",
            _unicycle_objective,
            prior="unicycle-action.pt",
            # The student of the search's 2-step decode (results/student/README.md): on 60
            # validation seeds of unicycle-obstacles it succeeded as often as DDIM (+0.05 +-
            # 0.07) and reached the goal 4.5 +- 3.8 steps sooner; the 5-step decode's student
            # succeeded less often there (-0.15 +- 0.12).
            student="unicycle-action-student.pt",
            horizon=32,
            planner=UNICYCLE_PLANNER,
            fill_action=UNICYCLE_STAND_STILL,
            tuning=TUNED.get("unicycle-obstacles", {}),
            family="unicycle",
        ),
    ]
    + [
        TaskSpec(
            info.short_name,
            info.env_id,
            _mujoco_objective,
            prior=MUJOCO_PRIORS.get(info.short_name),
            student=MUJOCO_STUDENTS.get(info.short_name),
            horizon=info.default_horizon,
            episodes=MUJOCO_EPISODES.get(info.short_name, (3, 200))[0],
            max_steps=MUJOCO_EPISODES.get(info.short_name, (3, 200))[1],
            planner=MUJOCO_PLANNER,
            tuning=TUNED.get(info.short_name, {}),
            costs=MUJOCO_COSTS.get(info.short_name, ()),
            world_model_reward="computed"
            if info.short_name in MUJOCO_COMPUTED_REWARDS
            else "learned",
            world_model_propagation=MUJOCO_PROPAGATIONS.get(info.short_name, "mean"),
            **MUJOCO_VALUES.get(info.short_name, {}),
        )
        for info in mujoco_tasks.TASKS.values()
    ]
}


def default_values() -> str:
    """The tasks' default values at the horizon's end in words, for help texts."""
    declared = [f"{spec.name}: {spec.value_text}" for spec in TASKS.values() if spec.value_agent]
    return "; ".join([*declared, "no value elsewhere"])


def default_propagations() -> str:
    """How the tasks' world models roll their ensembles out by default, in words, for help
    texts."""
    *rest, last = sorted(s.name for s in TASKS.values() if s.world_model_propagation != "mean")
    listed = f"{', '.join(rest)} and {last}" if rest else last
    return f"{listed} tsinf, every other task mean"


def task_names() -> list[str]:
    """The short names :func:`get_task` knows."""
    return sorted(TASKS)


def get_task(name: str) -> TaskSpec:
    """The :class:`TaskSpec` of a short name (or of its Gymnasium id).

    Raises ValueError naming the known tasks, and for a Gymnasium env that is not one of them
    (``Ant-v5``, ``CartPole-v1``) why it cannot be planned on here.
    """
    if name in TASKS:
        return TASKS[name]
    for spec in TASKS.values():
        if spec.env_id == name:
            return spec
    known = f"known tasks: {', '.join(task_names())}"
    reason = unsupported_reason(name)
    if reason is not None:
        raise ValueError(
            f"{name} is a Gymnasium MuJoCo env the planner cannot use: {reason}; {known}"
        )
    if name in gym.registry:
        raise ValueError(
            f"{name} is a Gymnasium env without a planning objective here: the planner scores "
            "candidates by restarting the simulator from the env's full state, which only the "
            f"unicycle and the supported MuJoCo envs expose (envs/planning_state.py); {known}"
        )
    raise ValueError(f"unknown task {name!r}; {known}")


def make_env(name: str, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """The task's Gymnasium env, wrapped so that it answers ``planning_state()``."""
    register_unicycle_envs()
    spec = get_task(name)
    env = gym.make(spec.env_id, render_mode=render_mode, **{**spec.env_kwargs, **kwargs})
    return PlanningState(env)
