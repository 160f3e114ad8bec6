"""Planning rewards of Gymnasium v5 MuJoCo envs, computed from rolled-out simulation records.

Each reward repeats its env's ``step`` reward term by term, from the same ``mjData`` quantities
the env reads after ``mj_step`` and with the weights read from the env instance, so the planning
reward of an action sequence equals the sum of the env's ``step`` rewards for it.

Derived quantities matter: after ``mj_step`` the fields Gymnasium reads besides the state (body
``xpos`` for Reacher, ``site_xpos`` for InvertedDoublePendulum) hold what the integrator's last
internal stage computed (for RK4, the fourth stage), not the kinematics of the new state; they
differ by about 1e-6 per step. The objective records those very fields from the simulation
(``mujoco.batch``), never recomputes them.

Every reward also states its ``alive_bonus``: the reward per step that an episode still running
keeps earning, which a terminal step forfeits for the rest of the episode (0 where the env never
terminates). Planning objectives price a fall with it (``MujocoTask.termination_cost``).

Beside the env's reward, a task may declare planning-only cost terms (:data:`COST_TERMS`, in the
MuJoCo MPC style: torso height, uprightness, a flip, speed toward a target, control), which
:class:`PlanningCosts` sums per step for the objective to subtract. They shape what the planner
prefers; the reported return is the env's own and never includes them.

Shapes: N candidates, H env steps, A action dim. Every reward is called as
``reward(after, qpos_before, actions) -> (rewards (N, H) float64, terminated (N, H) bool)`` with

- ``after``: ``"qpos"`` and each field in ``reward.fields`` as recorded after each env step,
  ``(N, H, *field shape)``;
- ``qpos_before``: ``qpos`` before each env step, ``(N, H, nq)``;
- ``actions``: the env actions, scaled to the env's bounds, ``(N, H, A)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import gymnasium
import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from gymnasium.envs.mujoco.hopper_v5 import HopperEnv
from gymnasium.envs.mujoco.inverted_double_pendulum_v5 import InvertedDoublePendulumEnv
from gymnasium.envs.mujoco.inverted_pendulum_v5 import InvertedPendulumEnv
from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv
from gymnasium.envs.mujoco.swimmer_v5 import SwimmerEnv
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv

Records = dict[str, np.ndarray]


class TaskReward(Protocol):
    """Per-step reward and termination of one env, from recorded simulation quantities."""

    fields: tuple[str, ...]
    alive_bonus: float

    def __call__(
        self, after: Records, qpos_before: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``rewards (N, H)`` and ``terminated (N, H)`` (see the module docstring)."""
        ...


def _control_cost(weight: float, actions: np.ndarray) -> np.ndarray:
    """``weight * sum(action**2)`` per step, ``(N, H)``, as every v5 env charges it."""
    return weight * np.square(actions).sum(axis=-1)


def _never(rewards: np.ndarray) -> np.ndarray:
    return np.zeros(rewards.shape, dtype=bool)


@dataclass(frozen=True)
class InvertedPendulumReward:
    """InvertedPendulum-v5: 1 per step while the pole is within 0.2 rad and the state finite."""

    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel")
    alive_bonus: ClassVar[float] = 1.0

    @classmethod
    def from_env(cls, env: InvertedPendulumEnv) -> InvertedPendulumReward:
        """InvertedPendulum has no reward weights."""
        return cls()

    def __call__(self, after: Records, qpos_before: np.ndarray, actions: np.ndarray):
        finite = np.isfinite(after["qpos"]).all(axis=-1) & np.isfinite(after["qvel"]).all(axis=-1)
        terminated = ~finite | (np.abs(after["qpos"][..., 1]) > 0.2)
        return (~terminated).astype(np.float64), terminated


@dataclass(frozen=True)
class ReacherReward:
    """Reacher-v5: minus the fingertip-target distance, minus the control cost."""

    fingertip: int
    target: int
    dist_weight: float
    control_weight: float
    fields: ClassVar[tuple[str, ...]] = ("qpos", "xpos")
    alive_bonus: ClassVar[float] = 0.0

    @classmethod
    def from_env(cls, env: ReacherEnv) -> ReacherReward:
        """Read body ids and reward weights from the env."""
        return cls(
            fingertip=env.model.body("fingertip").id,
            target=env.model.body("target").id,
            dist_weight=env._reward_dist_weight,
            control_weight=env._reward_control_weight,
        )

    def __call__(self, after: Records, qpos_before: np.ndarray, actions: np.ndarray):
        xpos = after["xpos"]
        vec = xpos[:, :, self.fingertip] - xpos[:, :, self.target]
        reward_dist = -np.linalg.norm(vec, axis=-1) * self.dist_weight
        reward_ctrl = -np.square(actions).sum(axis=-1) * self.control_weight
        rewards = reward_dist + reward_ctrl
        return rewards, _never(rewards)


@dataclass(frozen=True)
class HealthyRange:
    """Hopper/Walker2d health: z, angle (``qpos[1:3]``) and optionally ``(qpos, qvel)[2:]`` in
    open ranges; ``state=None`` skips the state check (Walker2d has none)."""

    z: tuple[float, float]
    angle: tuple[float, float]
    state: tuple[float, float] | None

    def __call__(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Healthy mask ``(N, H)`` from ``qpos (N, H, nq)`` and ``qvel (N, H, nv)``."""
        z, angle = qpos[..., 1], qpos[..., 2]
        healthy = (self.z[0] < z) & (z < self.z[1])
        healthy &= (self.angle[0] < angle) & (angle < self.angle[1])
        if self.state is not None:
            state = np.concatenate([qpos, qvel], axis=-1)[..., 2:]
            healthy &= ((self.state[0] < state) & (state < self.state[1])).all(axis=-1)
        return healthy


@dataclass(frozen=True)
class LocomotionReward:
    """HalfCheetah, Hopper, Walker2d, Swimmer (v5): forward velocity of ``qpos[0]`` over one env
    step, plus a healthy reward where the env has one, minus the control cost; terminates when
    unhealthy if the env does."""

    dt: float
    forward_weight: float
    control_weight: float
    healthy: HealthyRange | None = None
    healthy_reward: float = 0.0
    terminate_when_unhealthy: bool = False
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel")

    @property
    def alive_bonus(self) -> float:
        """The healthy reward, where being unhealthy ends the episode; else 0."""
        return self.healthy_reward if self.terminate_when_unhealthy else 0.0

    @classmethod
    def from_env(cls, env: Any) -> LocomotionReward:
        """Read dt and weights (and health ranges for Hopper and Walker2d) from the env."""
        health: dict[str, Any] = {}
        if isinstance(env, HopperEnv | Walker2dEnv):
            health = {
                "healthy": HealthyRange(
                    z=env._healthy_z_range,
                    angle=env._healthy_angle_range,
                    state=getattr(env, "_healthy_state_range", None),
                ),
                "healthy_reward": env._healthy_reward,
                "terminate_when_unhealthy": env._terminate_when_unhealthy,
            }
        return cls(
            dt=env.dt,
            forward_weight=env._forward_reward_weight,
            control_weight=env._ctrl_cost_weight,
            **health,
        )

    def __call__(self, after: Records, qpos_before: np.ndarray, actions: np.ndarray):
        x_velocity = (after["qpos"][..., 0] - qpos_before[..., 0]) / self.dt
        rewards = self.forward_weight * x_velocity
        terminated = _never(rewards)
        if self.healthy is not None:
            healthy = self.healthy(after["qpos"], after["qvel"])
            rewards = rewards + healthy * self.healthy_reward
            if self.terminate_when_unhealthy:
                terminated = ~healthy
        return rewards - _control_cost(self.control_weight, actions), terminated


@dataclass(frozen=True)
class InvertedDoublePendulumReward:
    """InvertedDoublePendulum-v5: alive bonus minus tip-distance and velocity penalties;
    terminates when the tip site drops to y <= 1."""

    healthy_reward: float
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "site_xpos")

    @property
    def alive_bonus(self) -> float:
        """The env's healthy reward, paid on every step before the terminal one."""
        return self.healthy_reward

    @classmethod
    def from_env(cls, env: InvertedDoublePendulumEnv) -> InvertedDoublePendulumReward:
        """Read the alive bonus from the env."""
        return cls(healthy_reward=env._healthy_reward)

    def __call__(self, after: Records, qpos_before: np.ndarray, actions: np.ndarray):
        tip = after["site_xpos"][:, :, 0]
        x, y = tip[..., 0], tip[..., 2]
        v1, v2 = after["qvel"][..., 1], after["qvel"][..., 2]
        terminated = y <= 1
        dist_penalty = 0.01 * x**2 + (y - 2) ** 2
        vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
        alive_bonus = self.healthy_reward * ~terminated
        return alive_bonus - dist_penalty - vel_penalty, terminated


_REWARDS = {
    InvertedPendulumEnv: ("InvertedPendulum-v5", InvertedPendulumReward.from_env),
    ReacherEnv: ("Reacher-v5", ReacherReward.from_env),
    HalfCheetahEnv: ("HalfCheetah-v5", LocomotionReward.from_env),
    HopperEnv: ("Hopper-v5", LocomotionReward.from_env),
    Walker2dEnv: ("Walker2d-v5", LocomotionReward.from_env),
    SwimmerEnv: ("Swimmer-v5", LocomotionReward.from_env),
    InvertedDoublePendulumEnv: ("InvertedDoublePendulum-v5", InvertedDoublePendulumReward.from_env),
}
SUPPORTED_ENV_IDS: tuple[str, ...] = tuple(env_id for env_id, _ in _REWARDS.values())

_CONTACT_FORCES = (
    "contact forces (cfrc_ext), which MuJoCo computes only in an extra mj_rnePostConstraint "
    "call the env makes after each step"
)
UNSUPPORTED_ENV_IDS: dict[str, str] = {
    "Ant-v5": (
        "its forward reward is the torso's displacement over each step, from body positions "
        "(xpos) that mjData holds before the step but the state snapshot does not, and its "
        f"contact cost reads {_CONTACT_FORCES}"
    ),
    "Humanoid-v5": (
        "its forward reward is the centre of mass's displacement over each step, from body "
        "positions (xipos) that mjData holds before the step but the state snapshot does not, "
        f"and its contact cost reads {_CONTACT_FORCES}"
    ),
    "HumanoidStandup-v5": f"its impact cost reads {_CONTACT_FORCES}",
    "Pusher-v5": (
        "no planning version of its reward (distances between the arm's tip, the object and "
        "the goal) is written here"
    ),
}
"""The other Gymnasium v5 MuJoCo envs, and why none has a planning reward: a planning reward
must equal the env's own from what a batched rollout from a state snapshot records."""


def unsupported_reason(env_id: str) -> str | None:
    """Why the Gymnasium MuJoCo env ``env_id`` cannot be planned on here, in one clause; None
    for a supported env and for an id that is not a Gymnasium MuJoCo env."""
    if env_id in SUPPORTED_ENV_IDS:
        return None
    if env_id in UNSUPPORTED_ENV_IDS:
        return UNSUPPORTED_ENV_IDS[env_id]
    entry = gymnasium.registry.get(env_id)
    if entry is None or not str(entry.entry_point).startswith("gymnasium.envs.mujoco"):
        return None
    v5 = f"{env_id.rpartition('-v')[0]}-v5"
    if v5 in SUPPORTED_ENV_IDS:
        return f"the planning rewards repeat the v5 envs' reward terms: plan on {v5}"
    return f"the planning rewards are written for v5 envs only, and {v5} has none: " + (
        UNSUPPORTED_ENV_IDS.get(v5, "its reward terms are not written here")
    )


def reward_for(env: Any) -> TaskReward:
    """The planning reward of an unwrapped Gymnasium v5 MuJoCo env, with the env's weights.

    Raises NotImplementedError for envs whose reward terms are not implemented (their exact
    class is checked, so a subclass that changes the reward is not silently mis-scored).
    """
    entry = _REWARDS.get(type(env))
    if entry is None:
        env_id = env.spec.id if getattr(env, "spec", None) is not None else ""
        reason = unsupported_reason(env_id) or "its reward terms are not written here"
        raise NotImplementedError(
            f"no planning reward for {type(env).__module__}.{type(env).__name__}: {reason}; "
            f"supported Gymnasium envs: {', '.join(SUPPORTED_ENV_IDS)}"
        )
    return entry[1](env)


COST_TERMS: dict[str, str] = {
    "height": "weight * (torso z - TARGET)^2; TARGET: the env's initial torso height",
    "upright": "weight * (pitch - TARGET)^2; TARGET: 0 rad",
    "flip": "weight * max(0, |pitch wrapped to [-pi, pi]| - TARGET); TARGET: pi/2 rad",
    "speed": "weight * (x velocity - TARGET)^2; TARGET (m/s) is required",
    "forward": "weight * the env's forward reward (1: plan without it)",
    "control": "weight * |action|^2 (env actions)",
}
"""Planning-only cost terms a task may declare or a run may ask for, per step; TARGET is the
optional ``@TARGET`` of the syntax ``NAME=WEIGHT[@TARGET]`` (:func:`parse_costs`)."""
BODY_TERMS = ("height", "upright", "flip")
"""Terms reading the torso of a planar legged body: z = ``qpos[1]``, pitch = ``qpos[2]``."""
_PLANAR_LEGGED = (HopperEnv, Walker2dEnv, HalfCheetahEnv)
_NO_TARGET = ("forward", "control")
COSTS_SYNTAX = (
    "NAME=WEIGHT[@TARGET] pairs separated by commas (height=10@1.3,upright=3,speed=1.5@1), "
    f"or none; NAME one of {', '.join(COST_TERMS)}, WEIGHT a number >= 0"
)


@dataclass(frozen=True)
class CostTerm:
    """One planning-only cost term: ``name`` (a key of :data:`COST_TERMS`), ``weight >= 0`` and
    ``target`` (None: the term's default; refused for ``forward`` and ``control``)."""

    name: str
    weight: float
    target: float | None = None

    def __post_init__(self) -> None:
        if self.name not in COST_TERMS:
            raise ValueError(f"unknown cost term {self.name!r}; write {COSTS_SYNTAX}")
        if not (np.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(
                f"cost term {self.name}: weight must be a number >= 0, got {self.weight}"
            )
        if self.target is not None and self.name in _NO_TARGET:
            raise ValueError(f"cost term {self.name} takes no @TARGET; write {self.name}=WEIGHT")
        if self.target is not None and not np.isfinite(self.target):
            raise ValueError(f"cost term {self.name}: TARGET must be finite, got {self.target}")
        if self.name == "speed" and self.target is None:
            raise ValueError("cost term speed needs a target speed: speed=WEIGHT@TARGET")

    def __str__(self) -> str:
        return f"{self.name}={self.weight:g}" + ("" if self.target is None else f"@{self.target:g}")


def parse_costs(text: str) -> tuple[CostTerm, ...]:
    """``"height=10@1.3,upright=3"`` -> cost terms; ``"none"`` (or "") -> no terms. Raises
    ValueError saying the syntax (:data:`COSTS_SYNTAX`)."""
    if text.strip().lower() in ("none", ""):
        return ()
    terms = []
    for part in text.split(","):
        name, equals, value = part.strip().partition("=")
        weight, at, target = value.partition("@")
        try:
            if not equals or (at and not target):
                raise ValueError
            numbers = float(weight), float(target) if at else None
        except ValueError:
            raise ValueError(f"cost term {part.strip()!r}: write {COSTS_SYNTAX}") from None
        terms.append(CostTerm(name, *numbers))
    return cost_terms(terms)


def cost_terms(costs: Any) -> tuple[CostTerm, ...]:
    """Cost terms from any spelling: :func:`parse_costs` text, :class:`CostTerm` s, or pairs
    ``(name, weight)`` / ``(name, (weight, target))`` (or a mapping of them). Raises ValueError
    for an unknown term, a bad number or a term named twice."""
    if isinstance(costs, str):
        return parse_costs(costs)
    terms = []
    for pair in costs.items() if isinstance(costs, dict) else costs:
        if not isinstance(pair, CostTerm):
            name, value = pair
            weight, target = value if isinstance(value, tuple | list) else (value, None)
            pair = CostTerm(name, float(weight), None if target is None else float(target))
        terms.append(pair)
    names = [term.name for term in terms]
    if len(set(names)) != len(names):
        raise ValueError(f"costs {format_costs(terms)} name a term twice; write {COSTS_SYNTAX}")
    return tuple(terms)


def format_costs(terms: tuple[CostTerm, ...]) -> str:
    """The :func:`parse_costs` spelling of ``terms`` (``none`` for no terms)."""
    return ",".join(map(str, terms)) or "none"


def _wrapped(angle: np.ndarray) -> np.ndarray:
    """``angle`` wrapped to [-pi, pi]: a full turn of an unlimited hinge is upright again."""
    return np.angle(np.exp(1j * angle))


_QUANTITIES = {
    "height": lambda qpos, x_velocity, actions, target: np.square(qpos[..., 1] - target),
    "upright": lambda qpos, x_velocity, actions, target: np.square(qpos[..., 2] - target),
    "flip": lambda qpos, x_velocity, actions, target: np.maximum(
        0.0, np.abs(_wrapped(qpos[..., 2])) - target
    ),
    "speed": lambda qpos, x_velocity, actions, target: np.square(x_velocity - target),
    "forward": lambda qpos, x_velocity, actions, target: x_velocity,
    "control": lambda qpos, x_velocity, actions, target: np.square(actions).sum(axis=-1),
}
"""Each term's per-step quantity ``(...)`` from ``qpos (..., nq)``, ``x_velocity (...)``,
``actions (..., A)`` and its resolved target (see :data:`COST_TERMS`)."""


@dataclass(frozen=True)
class PlanningCosts:
    """The per-step sum of planning-only cost terms, resolved for one env.

    ``costs(after, qpos_before, actions) -> (N, H)`` float64, with the arguments of a
    :class:`TaskReward` call; the objective subtracts it from the env's per-step rewards, so it
    counts up to a candidate's terminal step as the reward does, never after (so a horizon's
    costs must stay well below the termination cost, or falling early would pay). Built by
    :meth:`from_env`, which drops zero-weight terms (they leave the rewards bit for bit
    unchanged) and fills each term's default target.

    Attributes:
        terms: ``(name, weight, target)`` of each term, target resolved.
        dt: the env step, for the x velocity as the env computes it.
    """

    terms: tuple[tuple[str, float, float | None], ...]
    dt: float

    @classmethod
    def from_env(cls, env: Any, terms: tuple[CostTerm, ...]) -> PlanningCosts:
        """The costs of ``terms`` on the unwrapped ``env``; ValueError for a term ``env`` lacks
        what it reads (the body terms need a planar legged torso, speed and forward a
        locomotion task)."""
        locomotion = isinstance(env, (*_PLANAR_LEGGED, SwimmerEnv))
        for term in terms:
            if term.name in BODY_TERMS and not isinstance(env, _PLANAR_LEGGED):
                raise ValueError(
                    f"cost term {term.name} reads a planar legged torso (hopper, walker2d, "
                    f"half-cheetah); {type(env).__name__} has none"
                )
            if term.name in ("speed", "forward") and not locomotion:
                raise ValueError(
                    f"cost term {term.name} reads forward motion (half-cheetah, hopper, "
                    f"walker2d, swimmer); {type(env).__name__} has none"
                )
        defaults = {"height": float(env.init_qpos[1]), "upright": 0.0, "flip": np.pi / 2}
        resolved = []
        for term in terms:
            weight = term.weight
            if term.name == "forward":  # its quantity is the velocity; the env weighs it
                weight *= float(env._forward_reward_weight)
            target = defaults.get(term.name) if term.target is None else term.target
            if weight != 0:
                resolved.append((term.name, weight, target))
        return cls(tuple(resolved), float(env.dt))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __call__(self, after: Records, qpos_before: np.ndarray, actions: np.ndarray) -> np.ndarray:
        qpos = after["qpos"]
        return self.of(qpos, (qpos[..., 0] - qpos_before[..., 0]) / self.dt, actions)

    def of(self, qpos: np.ndarray, x_velocity: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The summed costs ``(...)`` of states ``qpos (..., nq)`` after a step, the step's
        ``x_velocity (...)`` and its env ``actions (..., A)``: any leading shape, (N, H) in
        simulation, (N,) on a world model's predicted observations."""
        total = np.zeros(np.shape(x_velocity))
        for name, weight, target in self.terms:
            total += weight * _QUANTITIES[name](qpos, x_velocity, actions, target)
        return total
