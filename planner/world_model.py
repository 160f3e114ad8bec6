"""A learned world model (probabilistic ensemble, PETS) and the Objective that plans with it.

The model reads only observations. Each of E members is an MLP mapping the normalised
``(observation (O,), action (A,))`` to a diagonal Gaussian over the normalised target
``(next_observation - observation (O,), reward (1,))``; its log-variance is soft-clamped
between learned bounds (Chua et al. 2018, PETS), so no member can claim zero or infinite noise.
An observed angle that winds (``WorldModelConfig.periodic``: half-cheetah's root pitch, which
grows by 2 pi with every flip) enters as its sine and cosine, as PETS feeds half-cheetah's
(:func:`network_inputs`); its change is predicted as it is.

The reward of each step is the model's reward head, or, given ``reward_fn``, the task's own
reward computed from the (predicted) observations: ``rewards (M,) = reward_fn(observations
(M, O), actions (M, A), next_observations (M, O))`` (the task-specific ones live in
:mod:`envs.world_model_rules`). The head is needed where the observation cannot give the reward
(InvertedDoublePendulum's reads a site position it does not hold); where it can, the computed
reward is the env's up to what the observation leaves out (half-cheetah's and hopper's forward
reward is the x displacement over one step divided by dt, and x is not observed: the rule reads
the end-of-step x velocity instead).

Termination is not learned: it is the task's own rule applied to predicted observations,
injected as a plain function ``terminated (N,) bool = terminated_fn(observations (N, O))`` (the
task-specific ones live in :mod:`envs.world_model_rules`), as in mbrl-lib. A rolled-out
trajectory earns its terminal step's reward and nothing after it, as
:class:`envs.mujoco_tasks.MujocoObjective` counts it.

Shapes: E ensemble members, N candidates, P particles per candidate, H horizon, O observation
dim, A action dim.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from planner.checkpoint import load_checkpoint, save_checkpoint
from planner.normalizer import Normalizer
from planner.objective import TerminalValue, terminal_values
from planner.threads import FastestThreads, current_planning_threads
from planner.validation import check_count

PROPAGATIONS = ("mean", "ts1", "tsinf")
"""How :class:`WorldModelObjective` rolls the ensemble out: the members' mean, or PETS'
trajectory sampling TS-1 or TS-inf."""
TS1_PARTICLES = 20
"""Default particles per candidate of ``"ts1"``: PETS' P. On half-cheetah (DE 64x3, 3 episodes of
100 steps, a small sample) it planned best of mean, ts1 with 1, 5 or 20 particles and tsinf, at
0.7 control steps/s against 10 for one particle; ``particles=1`` is the ts1 of before."""
MIN_CHUNK = 16
"""Fewest candidates a rollout thread of :class:`WorldModelObjective` takes: below it a step's
fixed cost (about 0.2 ms of small torch ops) outweighs what a second core saves."""
THREAD_TRIALS = 3
"""Calls of each thread count that :class:`WorldModelObjective` times before keeping the faster
(:class:`planner.threads.FastestThreads`), after one uncounted call each."""
_CONTENTS = ("config", "state_dict", "input_normalizer", "target_normalizer")

TerminationFn = Callable[[np.ndarray], np.ndarray]
"""``terminated (N,) bool = terminated_fn(observations (N, O) float64)``."""
RewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``rewards (M,) float64 = reward_fn(observations (M, O), actions (M, A), next_observations (M,
O))``, float64 arrays, actions normalised to [-1, 1]."""


@dataclass(frozen=True)
class WorldModelConfig:
    """Shape of the ensemble: E members, each ``depth`` hidden layers of ``hidden`` units."""

    obs_dim: int
    action_dim: int
    ensemble_size: int = 5
    hidden: int = 200
    depth: int = 3
    min_logvar: float = -10.0
    """Initial lower bound of the (learned) log-variance, in normalised target units."""
    max_logvar: float = 0.5
    """Initial upper bound of the (learned) log-variance."""
    periodic: tuple[int, ...] = ()
    """Observation dims that are angles read on the circle (:func:`network_inputs`), increasing;
    :func:`envs.world_model_rules.winding_angles` names a task's. Checkpoints from before the
    field read as ``()``: the raw observation."""

    def __post_init__(self) -> None:
        for name in ("obs_dim", "action_dim", "ensemble_size", "hidden", "depth"):
            check_count(f"WorldModelConfig.{name}", getattr(self, name))
        if not self.min_logvar < self.max_logvar:
            raise ValueError(
                f"min_logvar must be < max_logvar, got {self.min_logvar} >= {self.max_logvar}"
            )
        periodic = tuple(int(d) for d in self.periodic)  # a checkpoint's JSON gives a list
        if list(periodic) != sorted(set(periodic)) or not all(
            0 <= d < self.obs_dim for d in periodic
        ):
            raise ValueError(
                f"periodic must be distinct observation dims in [0, {self.obs_dim}), increasing; "
                f"got {self.periodic}"
            )
        object.__setattr__(self, "periodic", periodic)

    @property
    def input_dim(self) -> int:
        """O + A + the periodic dims' cosines: the network's input width."""
        return self.obs_dim + self.action_dim + len(self.periodic)

    @property
    def target_dim(self) -> int:
        """O + 1: the observation change and the reward."""
        return self.obs_dim + 1


def network_inputs(
    observations: torch.Tensor, actions: torch.Tensor, periodic: tuple[int, ...]
) -> torch.Tensor:
    """The network's inputs ``(..., O + A + len(periodic))`` before normalisation.

    The observation with each periodic dim replaced by its sine, the action, then those dims'
    cosines: the first O channels stay the observation's (so their scale is its std, a sine's
    for a periodic dim). A periodic angle enters as its point on the circle, so a cheetah that
    flipped over and landed (pitch + 2 pi) is, to the model, the state it was in before, not an
    input far outside the data. Without periodic dims: ``(observation, action)``.
    """
    parts, cosines, start = [], [], 0
    for dim in periodic:  # slices and one cat: every predicted step of a rollout runs this
        angle = observations[..., dim : dim + 1]
        parts += [observations[..., start:dim], torch.sin(angle)]
        cosines.append(torch.cos(angle))
        start = dim + 1
    return torch.cat([*parts, observations[..., start:], actions, *cosines], dim=-1)


class EnsembleLinear(nn.Module):
    """E independent linear layers applied at once: ``(E, B, fan_in) -> (E, B, fan_out)``."""

    def __init__(self, members: int, fan_in: int, fan_out: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, fan_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class GaussianEnsemble(nn.Module):
    """E MLPs with SiLU, each returning the mean and soft-clamped log-variance of the target."""

    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        members, width = config.ensemble_size, config.hidden
        sizes = [config.input_dim] + [width] * config.depth
        self.hidden = nn.ModuleList(EnsembleLinear(members, a, b) for a, b in pairwise(sizes))
        self.head = EnsembleLinear(members, width, 2 * config.target_dim)
        self.max_logvar = nn.Parameter(torch.full((config.target_dim,), config.max_logvar))
        self.min_logvar = nn.Parameter(torch.full((config.target_dim,), config.min_logvar))

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``inputs (E, B, I)`` normalised (:func:`network_inputs`, I = ``config.input_dim``) ->
        mean, logvar ``(E, B, O + 1)`` normalised."""
        x = inputs
        for layer in self.hidden:
            x = F.silu(layer(x))
        mean, raw_logvar = self.head(x).chunk(2, dim=-1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw_logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar


@dataclass(frozen=True, eq=False)
class MeanPredictor:
    """The ensemble's mean prediction of one env step in data units, for fixed weights
    (:meth:`WorldModel.predictor`): ``next observations (E, B, O), rewards (E, B) =
    predictor(observations, actions)``, the arguments as :meth:`WorldModel.step`'s.

    Attributes:
        layers: ``(weight (E, fan_in, fan_out), bias (E, 1, fan_out))`` of each layer, SiLU
            between them, inputs (:func:`network_inputs`) in data units and outputs the
            ``(change (O,), reward)`` in data units.
        low, high: ``(O + 1,)`` bounds of the outputs (the changes' data range; the reward's
            infinite).
        periodic: the observation dims read on the circle (``WorldModelConfig.periodic``).
    """

    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    low: torch.Tensor
    high: torch.Tensor
    periodic: tuple[int, ...] = ()

    def __call__(
        self, observations: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.outputs(observations, actions)
        return observations + out[..., :-1], out[..., -1]

    def outputs(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Each member's predicted ``(change (O,), reward)``, ``(E, B, O + 1)``."""
        x = network_inputs(observations, actions, self.periodic)
        x = x.expand(len(self.layers[0][0]), *x.shape[-2:])
        for weight, bias in self.layers[:-1]:
            x = F.silu(torch.baddbmm(bias, x, weight), inplace=True)
        weight, bias = self.layers[-1]
        return torch.clamp(torch.baddbmm(bias, x, weight), self.low, self.high)


class WorldModel:
    """The trained ensemble with its normalisers, predicting in data units.

    Args:
        config: the ensemble's shape.
        network: its :class:`GaussianEnsemble` (default: a fresh one).
        input_normalizer: maps :func:`network_inputs` ``(O + A + len(config.periodic),)`` (the
            observation and action) to the network's inputs.
        target_normalizer: maps ``(observation change, reward) (O + 1,)`` to its targets.
            Predicted one-step changes are clamped to the training data's range (a guard against
            members exploding far from the data); rewards are not. A planner must be able to
            find plans better than the data: with the reward clamped, half-cheetah's predicted
            reward stopped at the data's best step (3 to 4) while planning in the simulator
            reaches 9, and the model-based planner could not tell fast plans apart.
        task: the task it was trained for (recorded in checkpoints).
    """

    def __init__(
        self,
        config: WorldModelConfig,
        input_normalizer: Normalizer,
        target_normalizer: Normalizer,
        network: GaussianEnsemble | None = None,
        task: str | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        expected = (config.input_dim, config.target_dim)
        got = (input_normalizer.channels, target_normalizer.channels)
        if got != expected:
            raise ValueError(
                f"normalisers have {got} channels, the config needs (O + A + periodic dims, "
                f"O + 1) = {expected}"
            )
        self.config, self.task, self.device = config, task, torch.device(device)
        self.network = (network or GaussianEnsemble(config)).to(self.device).eval()
        self.input_normalizer = input_normalizer.to(self.device)
        self.target_normalizer = target_normalizer.to(self.device)

    @property
    def ensemble_size(self) -> int:
        """E."""
        return self.config.ensemble_size

    @torch.no_grad()
    def step(
        self, observations: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's mean prediction of one env step, on shared rows or on its own rows.

        Args:
            observations: (B, O) float32 on the model's device, the same B rows for every member,
                or (E, B, O), member e predicting its own rows ``observations[e]``.
            actions: (B, A) or (E, B, A), as ``observations``, in [-1, 1].

        Returns:
            next observations (E, B, O) and rewards (E, B); non-finite where a member is.
        """
        return self.predictor()(observations, actions)

    @torch.no_grad()
    def predictor(self) -> MeanPredictor:
        """:meth:`step` as a function of the network's current weights, for many steps with the
        same weights (a planner's rollout): the normalisers are folded into the first and last
        layers and the log-variance, which planning never reads, is not computed.

        The input normaliser's ``(x - c) / s`` followed by a layer ``u W + b`` is one layer
        ``x (W / s) + (b - (c / s) W)``, and the target normaliser's ``m s' + c'`` after the
        head's mean half ``h W' + b'`` is ``h (W' s') + (b' s' + c')``: a planning step runs
        only the ensemble's layers and one clamp of the changes to the data's range.
        """
        layers = [(layer.weight.detach(), layer.bias.detach()) for layer in self.network.hidden]
        inputs, targets = self.input_normalizer, self.target_normalizer
        first, first_bias = layers[0]
        shift = (inputs.center / inputs.scale).expand(first.shape[0], 1, -1)
        layers[0] = (first / inputs.scale[:, None], first_bias - torch.bmm(shift, first))
        head = self.network.head
        mean = slice(0, self.config.target_dim)
        layers.append(
            (
                head.weight[..., mean] * targets.scale,
                head.bias[..., mean] * targets.scale + targets.center,
            )
        )
        unbounded = torch.full((1,), math.inf, device=self.device)
        low = torch.cat([targets.low[:-1], -unbounded])  # rewards are not clamped (see class)
        high = torch.cat([targets.high[:-1], unbounded])
        return MeanPredictor(tuple(layers), low, high, self.config.periodic)

    def first_members(self, count: int) -> WorldModel:
        """A model of this one's first ``count`` members, as they are (the members are
        independent networks: fewer of them cost less per planning step, in proportion, under
        TS-inf)."""
        check_count("count", count, hint=f"members kept, at most {self.ensemble_size}")
        if count > self.ensemble_size:
            raise ValueError(f"count must be <= the {self.ensemble_size} members, got {count}")
        config = replace(self.config, ensemble_size=count)
        with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten
            network = GaussianEnsemble(config)
        state = self.network.state_dict()
        members = {k: v[:count] if v.dim() == 3 else v for k, v in state.items()}
        network.load_state_dict(members)  # EnsembleLinear's weight and bias lead with E
        return WorldModel(
            config, self.input_normalizer, self.target_normalizer, network, self.task, self.device
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write one checkpoint file (config, weights, normalisers, task)."""
        contents = {
            "config": asdict(self.config),
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "input_normalizer": self.input_normalizer.state_dict(),
            "target_normalizer": self.target_normalizer.state_dict(),
        }
        save_checkpoint(path, "world_model", contents, task=self.task)

    @classmethod
    def load(
        cls, path: str | os.PathLike, task: str | None = None, device: str = "cpu"
    ) -> WorldModel:
        """Read a checkpoint; ``task`` given: refuse one trained for another task."""
        payload = load_checkpoint(path, "world_model", _CONTENTS, task=task)
        config = WorldModelConfig(**payload["config"])
        network = GaussianEnsemble(config)
        network.load_state_dict(payload["state_dict"])
        return cls(
            config,
            Normalizer(**payload["input_normalizer"]),
            Normalizer(**payload["target_normalizer"]),
            network,
            task=payload["task"],
            device=device,
        )


def check_particles(propagation: str, particles: int | None) -> None:
    """Raise ValueError for an unknown ``propagation``, for ``particles`` below 1 (None: the
    propagation's default), or for ``particles`` > 1 with ``"mean"``, whose one deterministic
    trajectory per candidate P particles would only repeat."""
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {propagation!r}")
    if particles is None:
        return
    check_count("particles", particles, hint="trajectories per candidate")
    if propagation == "mean" and particles > 1:
        raise ValueError(
            f"particles={particles} needs a sampling propagation: 'mean' rolls one deterministic "
            "trajectory per candidate; pass propagation 'ts1' or 'tsinf', or particles 1"
        )


def check_pessimism(propagation: str, pessimism: float) -> None:
    """Raise ValueError for a ``pessimism`` that is not finite and >= 0, or > 0 with
    ``"mean"``, whose one particle per candidate has no spread to charge."""
    if not (math.isfinite(pessimism) and pessimism >= 0):
        raise ValueError(f"pessimism must be finite and >= 0, got {pessimism}")
    if pessimism and propagation == "mean":
        raise ValueError(
            f"pessimism={pessimism} charges the spread of a candidate's particles, and "
            "propagation 'mean' rolls one: pass propagation 'tsinf' or 'ts1', or pessimism 0"
        )


class WorldModelObjective:
    """Planning reward from a learned model: ``rewards (N,) = objective(observation (O,),
    actions (N, H, A))``.

    Each candidate rolls out as P particles; a chunk of candidates' rows rolls forward together,
    one batched ensemble call per step, each chunk on one of ``threads`` threads (scores do not
    depend on the chunks). Propagation (PETS' names):

    - ``"mean"`` (P = 1): each step's next observation and reward are the mean over the members
      whose prediction for that row is finite (a diverging member is ignored); a row for which
      no member is finite gets -inf.
    - ``"ts1"`` (TS-1): at every step each particle follows one member drawn uniformly at random,
      anew for every particle and step. With P = 1 this is one draw per candidate and step, as
      before particles existed.
    - ``"tsinf"`` (TS-inf): each particle keeps one member for the whole horizon. Particle p of
      every candidate follows member ``(o + p) mod E``, with one offset o drawn per call: with
      P >= E every member carries floor(P/E) or ceil(P/E) of a candidate's particles (exactly
      P/E when E divides P); all candidates of a call are scored by the same members, so their
      scores differ by their actions alone, not by luck of the draw; and across calls no member
      is favoured when E does not divide P (``p mod E`` would always leave out the last ones).

    Every member contributes its mean prediction (no aleatoric noise is sampled), so the
    particles of ``"tsinf"`` that share a member are identical: P = kE scores as P = E, which is
    its default. TS-1's particles differ by their members' sequences; its default is PETS'
    P = 20. Random draws come from a ``torch.Generator`` seeded with ``seed``: same seed, same
    scores, bit for bit.

    A particle's return counts rewards up to its own terminal step and nothing after it (what
    is predicted there, finite or not, does not matter), minus ``termination_cost`` if it
    terminates within the horizon; a particle through a non-finite prediction returns -inf. A
    candidate's score is the mean of its P particles' returns (-inf if any is), less
    ``pessimism`` times their standard deviation: a sampling propagation's P returns tell how
    far the members disagree about that candidate, and a planner that ranks by the mean picks
    the candidates whose return the model overrates.

    Budget: a candidate counts once in ``num_evaluated``, whatever P: one reward evaluation of
    the N x T budget, as PETS counts a candidate action sequence (planners count evaluations
    where they call the objective, one per candidate). Its model cost grows with P: member
    predictions per step are N E (mean), N P E (ts1: every member for every particle, one
    picked afterwards, as with P = 1) and N E ceil(P/E) (tsinf: each particle's own member
    only).

    Each step's reward is the model's reward head (of the member, or the members' mean, that the
    propagation follows), or with ``reward_fn`` the task's reward computed from that step's
    observation, action and predicted next observation, whatever the propagation.

    ``cost_fn`` (same signature as ``reward_fn``) gives planning-only costs per step, subtracted
    from each step's reward, whichever reward it is: the task's cost terms on predicted
    observations (:class:`envs.world_model_rules.ObservedCosts`), so a model's planner is
    charged what the simulator's is. Like the reward, they count up to a particle's terminal
    step.

    The model rolls the particles out alone, step by step; the task's rules (``terminated_fn``,
    ``reward_fn``, ``cost_fn``) then read the whole trajectory in one call each, all H x rows
    steps stacked, so each must treat its rows independently, as the task's rules do (called per
    step, half-cheetah's flip cost added 4 ms to a 31 ms call of 64 x 16 candidates).

    ``terminal_value`` (:data:`planner.objective.TerminalValue`) values the predicted observation
    at the horizon's end of every particle that neither terminates nor passes a non-finite
    prediction within it, and adds that to the particle's return, as the simulator's objective
    adds it to a candidate that does not terminate: what the particle would earn after the
    horizon.

    ``disagreement_penalty`` > 0 subtracts that weight times the members' disagreement (the std
    over members of the normalised next observation, averaged over dimensions) from every step's
    reward; it needs every member's prediction, so ``"tsinf"`` refuses it.

    Args:
        model: the trained :class:`WorldModel`.
        terminated_fn: ``observations (N, O) -> terminated (N,)``, the task's rule (None: never).
        reward_fn: the task's reward on observations (:data:`RewardFn`; None: the reward head).
        propagation: one of :data:`PROPAGATIONS`.
        seed: seeds the member draws of ``"ts1"`` and ``"tsinf"``.
        disagreement_penalty: weight of the disagreement penalty (0: none).
        pessimism: k of a candidate's score ``mean - k std`` over its particles' returns (0:
            the mean); it needs particles that differ, so ``"mean"`` refuses k > 0.
        termination_cost: charged once to a particle that terminates within the horizon
            (planning only: a fall ranks below surviving; see ``MujocoObjective``).
        particles: P (None: 1 for ``"mean"``, E for ``"tsinf"``, :data:`TS1_PARTICLES` for
            ``"ts1"``); ``"mean"`` takes only 1 (:func:`check_particles`).
        cost_fn: planning-only costs per step (:data:`RewardFn` signature; None: none).
        terminal_value: values of the predicted last observations, ``(M, O) -> (M,)``, one
            finite value each (None: nothing after the horizon).
        threads: threads of the rollouts: the candidates are split into that many chunks (of
            :data:`MIN_CHUNK` or more), each rolled out on its own Python thread with torch on
            one thread (torch releases the GIL while it computes). None: the faster of one
            thread and the rollout threads of the planning thread policy in force, timed on the
            first calls that can be split (:class:`planner.threads.FastestThreads`, which says
            why; :data:`THREAD_TRIALS` calls of each).

    Attributes:
        particles: P, resolved. threads: the rollouts' :class:`~planner.threads.FastestThreads`
            (``threads.chosen``: the thread count kept, None while timing).
            num_evaluated: candidates scored so far. num_invalid: of those,
            scored -inf.
        plans_from_observation: True: its planning state is the env's observation, so a policy
            passes the observation rather than the simulator state.
    """

    plans_from_observation = True

    def __init__(
        self,
        model: WorldModel,
        terminated_fn: TerminationFn | None = None,
        propagation: str = "mean",
        seed: int = 0,
        disagreement_penalty: float = 0.0,
        termination_cost: float = 0.0,
        particles: int | None = None,
        reward_fn: RewardFn | None = None,
        cost_fn: RewardFn | None = None,
        threads: int | None = None,
        pessimism: float = 0.0,
        terminal_value: TerminalValue | None = None,
    ) -> None:
        check_particles(propagation, particles)
        check_pessimism(propagation, pessimism)
        if threads is None:
            options = (1, current_planning_threads().rollout_threads)
        else:
            check_count("threads", threads, hint="threads of the world model's rollouts")
            options = (threads,)
        if not disagreement_penalty >= 0:
            raise ValueError(f"disagreement_penalty must be >= 0, got {disagreement_penalty}")
        if disagreement_penalty and propagation == "tsinf":
            raise ValueError(
                "disagreement_penalty needs every member's prediction at each row, which "
                "propagation 'tsinf' does not compute: use 'mean' or 'ts1', or no penalty"
            )
        if not (math.isfinite(termination_cost) and termination_cost >= 0):
            raise ValueError(f"termination_cost must be finite and >= 0, got {termination_cost}")
        members = model.ensemble_size
        if particles is None:
            particles = {"mean": 1, "ts1": TS1_PARTICLES, "tsinf": members}[propagation]
        self.termination_cost = float(termination_cost)
        self.threads = FastestThreads(options, THREAD_TRIALS)
        self.model = model
        self.terminated_fn = terminated_fn
        self.reward_fn, self.cost_fn = reward_fn, cost_fn
        self.terminal_value = terminal_value
        self.propagation = propagation
        self.particles = particles
        self.disagreement_penalty = float(disagreement_penalty)
        self.pessimism = float(pessimism)
        self.generator = torch.Generator(device=model.device).manual_seed(seed)
        # Slots (rows per candidate): its P particles; for tsinf E blocks of ceil(P/E) slots,
        # block e on member e, particle p in block (o + p) mod E at p // E; a slot holding no
        # particle (at most E - 1 of them) is rolled out with the rest but not scored
        self._slots = (
            members * math.ceil(particles / members) if propagation == "tsinf" else particles
        )
        self._predict = {
            "mean": self._every_member if disagreement_penalty else self._members_mean,
            "ts1": self._every_member,
            "tsinf": self._own_member,
        }[propagation]
        self._used = self._tsinf_slots if propagation == "tsinf" else self._all_slots
        self._executor: ThreadPoolExecutor | None = None
        self.num_evaluated = 0
        self.num_invalid = 0

    def __call__(self, observation: Any, actions: Any) -> np.ndarray:
        """Rewards ``(N,)`` float64 of ``actions (N, H, A)`` from ``observation (O,)``."""
        device = self.model.device
        observation, actions = self._check(observation, actions)
        n, horizon, _ = actions.shape
        rows = self._slots * n  # row s * N + i: slot s of candidate i
        used = self._used()
        picks = self._picks(horizon, n)
        # Roll out: the model alone, the candidates in chunks on the objective's threads; the
        # task's rules then read the whole trajectory at once
        predict = self.model.predictor()
        start = torch.as_tensor(observation, dtype=torch.float32, device=device)
        plan = torch.as_tensor(actions, dtype=torch.float32, device=device).transpose(0, 1)
        plan = plan[:, None].expand(-1, self._slots, -1, -1)  # (H, slots, N, A)

        def roll_out(chunk: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            chunk_picks = None if picks is None else picks[:, :, chunk]
            return self._rollout(predict, start, plan[:, :, chunk], chunk_picks)

        parts = self.threads.run(
            lambda threads: list(self._map(roll_out, self._chunks(n, threads))),
            work=n,
            measured=n >= 2 * MIN_CHUNK,  # fewer candidates make one chunk whatever the threads
        )
        states, rewards, valid = (
            torch.cat(part, dim=2).flatten(1, 2) for part in zip(*parts, strict=True)
        )
        plan = plan.reshape(horizon, rows, -1)
        rewards, valid, alive = self._apply_rules(states, plan, rewards, valid)
        # A step counts while its particle is alive; its end is charged once
        total = torch.where(alive[:-1] & valid, rewards, 0.0).sum(dim=0)
        total -= self.termination_cost * (~alive[-1]).double()
        invalid = (alive[:-1] & ~valid).any(dim=0)
        if self.terminal_value is not None:
            total += self._terminal_values(
                states[-1], alive[-1] & ~invalid & used.repeat_interleave(n)
            )
        # Mean over each candidate's particles, less the pessimism's multiple of their spread
        total = torch.where(used[:, None], total.view(self._slots, n), 0.0)
        scores = total.sum(dim=0) / self.particles
        if self.pessimism:
            deviation = torch.where(used[:, None], total - scores, 0.0)
            scores -= self.pessimism * (deviation.square().sum(dim=0) / self.particles).sqrt()
        failed = (invalid.view(self._slots, n) & used[:, None]).any(dim=0)
        scores[failed] = -math.inf
        self.num_evaluated += n
        self.num_invalid += int(failed.sum())
        return scores.cpu().numpy()

    def _rollout(self, predict, start, plan, picks):
        """The model's rollout of ``plan (H, slots, C, A)`` from ``start (O,)`` (``picks (H,
        slots, C)``: ts1's members): states ``(H + 1, slots, C, O)``, rewards and valid ``(H,
        slots, C)``; a row's state stays where its prediction is not finite."""
        horizon, slots, count, _ = plan.shape
        rows = slots * count
        plan = plan.reshape(horizon, rows, -1)
        states = torch.empty(horizon + 1, rows, len(start), device=start.device)
        states[0] = start
        rewards = torch.empty(horizon, rows, dtype=torch.float64, device=start.device)
        valid = torch.ones(horizon, rows, dtype=torch.bool, device=start.device)
        for t in range(horizon):
            pick = None if picks is None else picks[t].reshape(-1)
            next_obs, rewards[t], step_valid = self._predict(predict, states[t], plan[t], pick)
            if step_valid is True:
                states[t + 1] = next_obs
            else:
                valid[t] = step_valid
                states[t + 1] = torch.where(step_valid[:, None], next_obs, states[t])
        return (
            states.view(horizon + 1, slots, count, -1),
            rewards.view(horizon, slots, count),
            valid.view(horizon, slots, count),
        )

    def _terminal_values(self, last: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``terminal_value`` of the last predicted observations ``last (R, O)`` of the rows
        ``rows`` (a mask ``(R,)``; the others get 0), as float64 ``(R,)``."""
        values = torch.zeros(len(last), dtype=torch.float64, device=last.device)
        if bool(rows.any()):
            observations = last[rows].double().cpu().numpy()
            found = terminal_values(self.terminal_value, observations)
            values[rows] = torch.as_tensor(found, device=last.device)
        return values

    @staticmethod
    def _chunks(n: int, threads: int) -> list[slice]:
        """The candidates' chunks: one per thread, none under :data:`MIN_CHUNK` candidates."""
        count = max(1, min(threads, n // MIN_CHUNK))
        bounds = np.linspace(0, n, count + 1).round().astype(int)
        return [slice(a, b) for a, b in pairwise(bounds)]

    def _map(self, function, chunks):
        if len(chunks) == 1:
            return [function(chunks[0])]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max(self.threads.options), "world-model-rollout")
        return self._executor.map(function, chunks)

    def _picks(self, horizon: int, n: int) -> torch.Tensor | None:
        """ts1: the member of every particle at every step ``(H, slots, N)``, drawn before the
        rollout (so the chunks' threads draw nothing); other propagations: None."""
        if self.propagation != "ts1":
            return None
        shape = (horizon, self._slots, n)
        return torch.randint(
            self.model.ensemble_size, shape, generator=self.generator, device=self.model.device
        )

    def _apply_rules(self, states, plan, rewards, valid):
        """The task's rules on a rolled-out trajectory, ``states (H + 1, R, O)`` by ``plan (H,
        R, A)``: ``rewards (H, R)`` replaced by ``reward_fn``'s and less ``cost_fn``'s (a row
        where either is not finite is invalid), and ``alive (H + 1, R)``: whether a row has not
        terminated before step t (``alive[H]``: within the horizon)."""
        alive = torch.ones(len(states), states.shape[1], dtype=torch.bool, device=states.device)
        if self.reward_fn is None and self.cost_fn is None and self.terminated_fn is None:
            return rewards, valid, alive
        rows = states.shape[1]
        flat_states, flat_actions = (
            x.reshape(-1, x.shape[-1]).double().cpu().numpy() for x in (states, plan)
        )
        before, after = flat_states[:-rows], flat_states[rows:]
        for rule, replaces in ((self.reward_fn, True), (self.cost_fn, False)):
            if rule is None:
                continue
            value = np.asarray(rule(before, flat_actions, after), dtype=np.float64)
            value = torch.as_tensor(value, device=states.device).view(rewards.shape)
            rewards = value if replaces else rewards - value
            valid = valid & torch.isfinite(value)
        if self.terminated_fn is not None:
            ended = np.asarray(self.terminated_fn(after), dtype=bool)
            ended = torch.as_tensor(ended, device=states.device).view(valid.shape)
            alive[1:] = torch.cumprod(~ended, dim=0).bool()
        return rewards, valid, alive

    def _members_mean(self, predict, obs, action, pick):
        """``"mean"`` in fewer ops while every member is finite (a step's small ops cost as
        much as its arithmetic, and hold the GIL that the rollout threads share); ``valid`` is
        then a plain True."""
        out = predict.outputs(obs, action)
        mean = out.mean(dim=0)
        if not all_finite(mean):  # a non-finite member makes the mean so
            return self._every_member(predict, obs, action, pick, out)
        return obs + mean[:, :-1], mean[:, -1], True

    def _every_member(self, predict, obs, action, pick, out=None):
        out = predict.outputs(obs, action) if out is None else out
        next_all, reward_all = obs + out[..., :-1], out[..., -1]
        finite = torch.isfinite(next_all).all(dim=-1) & torch.isfinite(reward_all)
        if pick is None:
            next_obs, reward, valid = finite_mean(next_all, reward_all, finite)
        else:
            rows = torch.arange(len(pick), device=pick.device)
            next_obs, reward, valid = (x[pick, rows] for x in (next_all, reward_all, finite))
        if self.disagreement_penalty:
            reward = reward - self.disagreement_penalty * self._disagreement(next_all, finite)
        return next_obs, reward, valid

    def _own_member(self, predict, obs, action, pick):
        """``"tsinf"``: block e of the rows on member e. While every prediction is finite,
        ``valid`` is a plain True, in fewer ops, as :meth:`_members_mean`'s."""
        members = self.model.ensemble_size
        out = predict.outputs(
            obs.reshape(members, -1, obs.shape[-1]), action.reshape(members, -1, action.shape[-1])
        ).reshape(len(obs), -1)
        next_obs, reward = obs + out[:, :-1], out[:, -1]
        if all_finite(out):
            return next_obs, reward, True
        return next_obs, reward, torch.isfinite(next_obs).all(dim=-1) & torch.isfinite(reward)

    def _all_slots(self) -> torch.Tensor:
        return torch.ones(self._slots, dtype=torch.bool, device=self.model.device)

    def _tsinf_slots(self) -> torch.Tensor:
        """Which of the E x ceil(P/E) slots hold a particle this call: slot (e, q) holds
        particle ``q E + (e - o) mod E`` for the call's offset o, if that is below P."""
        device, members = self.model.device, self.model.ensemble_size
        offset = torch.randint(members, (1,), generator=self.generator, device=device)
        member = torch.arange(members, device=device)[:, None]
        block = torch.arange(self._slots // members, device=device)[None, :]
        particle = block * members + (member - offset) % members
        return (particle < self.particles).reshape(-1)

    def _disagreement(self, next_all: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
        scale = self.model.target_normalizer.scale[:-1]
        spread = torch.where(finite[..., None], next_all / scale, torch.nan)
        std = torch.nan_to_num(spread.std(dim=0, correction=0), nan=0.0)
        return std.mean(dim=-1)

    def _check(self, observation: Any, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        obs_dim, action_dim = self.model.config.obs_dim, self.model.config.action_dim
        observation = np.asarray(observation, dtype=np.float64)
        if observation.shape != (obs_dim,) or not np.isfinite(observation).all():
            raise ValueError(
                f"the world model plans from one finite observation of shape ({obs_dim},), got "
                f"shape {observation.shape}; pass the env's current observation (plan from the "
                "observation, not the simulator state)"
            )
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 3 or actions.shape[2] != action_dim or 0 in actions.shape[:2]:
            raise ValueError(
                f"actions must be (N, H, {action_dim}) normalised actions, got shape "
                f"{actions.shape}"
            )
        if not np.isfinite(actions).all():
            raise ValueError("actions must be finite; got NaN or inf entries")
        return observation, np.clip(actions, -1.0, 1.0)


def all_finite(values: torch.Tensor) -> bool:
    """Whether every entry of ``values`` is finite, read from their sum: one reduction and one
    number instead of a mask (on one thread, 2 us against 17 for ``isfinite(...).all()`` on a
    320 x 18 step; a rollout asks at every step). A NaN or an infinity makes the sum so; a sum
    of finite entries that overflows reads as False, which only sends the caller to its exact
    per-row path."""
    return math.isfinite(values.sum().item())


def finite_mean(
    next_all: torch.Tensor, reward_all: torch.Tensor, finite: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean over the members whose prediction is finite.

    Args:
        next_all: (E, N, O). reward_all: (E, N). finite: (E, N), which members to average.

    Returns:
        next observations (N, O), rewards (N,) and valid (N,): whether any member was finite
        (where none was, the mean is 0 and must not be used).
    """
    if bool(finite.all()):
        return next_all.mean(dim=0), reward_all.mean(dim=0), finite[0]
    count = finite.sum(dim=0)
    next_obs = torch.where(finite[..., None], next_all, 0.0).sum(dim=0)
    reward = torch.where(finite, reward_all, 0.0).sum(dim=0)
    scale = 1 / count.clamp(min=1)
    return next_obs * scale[:, None], reward * scale, count > 0


def k_step_errors(model: WorldModel, *recorded: np.ndarray, **options: Any) -> dict[int, float]:
    """Open-loop k-step prediction error on recorded episodes (ensemble-mean propagation): the
    root mean square over observation dimensions of :func:`k_step_errors_by_dimension`, that is
    over starts and dimensions of ``(predicted - recorded observation after k steps) / scale``.
    Takes its arguments: the recorded observations, actions, next observations and episode
    index, and ``ks`` and ``obs_scale``."""
    found = k_step_errors_by_dimension(model, *recorded, **options)
    return {k: over_dimensions(v) for k, v in found.items()}


def over_dimensions(errors: np.ndarray) -> float:
    """The root mean square of per-dimension errors ``(O,)`` (:func:`k_step_errors_by_dimension`):
    the error over all dimensions, as :func:`k_step_errors` gives it; NaN if any is."""
    return float(np.sqrt(np.mean(np.square(errors))))


@torch.no_grad()
def k_step_errors_by_dimension(
    model: WorldModel,
    observations: np.ndarray,
    actions: np.ndarray,
    next_observations: np.ndarray,
    episode_index: np.ndarray,
    ks: tuple[int, ...] = (1, 5, 10, 20),
    obs_scale: np.ndarray | None = None,
) -> dict[int, np.ndarray]:
    """Open-loop k-step prediction error on recorded episodes, per observation dimension.

    From every step t of every episode with at least k steps left, the model rolls forward on
    the recorded actions ``t .. t+k-1`` alone (ensemble-mean propagation); a dimension's error is
    the root mean square over starts of ``(predicted - recorded observation after k steps) /
    scale``, with ``scale (O,)`` per dimension (default: the recorded observations' std).
    Non-finite predictions count as errors of 1e6. A dimension of small spread weighs heavily in
    the mean over dimensions: that is what this breakdown shows.

    Args:
        observations, next_observations: (M, O). actions: (M, A). episode_index: (M,), episodes
            stored one after another.

    Returns:
        ``{k: (O,) errors}``; all NaN where no episode has k steps.
    """
    obs = torch.as_tensor(observations, dtype=torch.float32, device=model.device)
    act = torch.as_tensor(actions, dtype=torch.float32, device=model.device)
    nxt = torch.as_tensor(next_observations, dtype=torch.float64, device=model.device)
    if obs_scale is None:
        obs_scale = np.maximum(np.std(observations, axis=0), 1e-6)
    scale = torch.as_tensor(obs_scale, dtype=torch.float64, device=model.device)
    episode_index = np.asarray(episode_index)
    ends = np.flatnonzero(np.append(np.diff(episode_index) != 0, True))  # last row of each
    last_row = ends[np.searchsorted(ends, np.arange(len(episode_index)))]
    predict = model.predictor()  # the weights are fixed: fold the normalisers once
    errors = {}
    for k in ks:
        starts = np.flatnonzero(last_row - np.arange(len(episode_index)) >= k - 1)
        if len(starts) == 0:
            errors[k] = np.full(model.config.obs_dim, math.nan)
            continue
        rows = torch.as_tensor(starts, device=model.device)
        state = obs[rows]
        for step in range(k):
            next_all, reward_all = predict(state, act[rows + step])
            finite = torch.isfinite(next_all).all(dim=-1) & torch.isfinite(reward_all)
            mean, _, valid = finite_mean(next_all, reward_all, finite)
            state = torch.where(valid[:, None], mean, torch.nan)
        diff = (state.double() - nxt[rows + k - 1]) / scale
        diff = torch.nan_to_num(diff, nan=1e6, posinf=1e6, neginf=1e6)
        errors[k] = diff.square().mean(dim=0).sqrt().cpu().numpy()
    return errors
