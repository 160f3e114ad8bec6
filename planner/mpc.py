"""Receding-horizon planning with Diffusion Elites.

At every control step the planner searches latents of an action-trajectory decoder from the
current simulator state, executes the first action of the chosen plan, and warm-starts the next
search from the previous one (see ARCHITECTURE.md, "Data flow of one control step")::

    decode = decoder.decoding(S_search, cond);  score = bind_state(objective, state)
    repeat T times:  z = elites.ask()     (N, K, A) latents
                     k = decode(z)        (N, K, A) knots in [-1, 1]
                     r = score(k)         (N,)     the objective over the H actions k become
                     elites.tell(z, r)
    plan = final_decoder.decoding(S_final, cond)(chosen latent);  action = plan's first action

Arguments are checked once per control step (state, conditioning, DDIM steps); inside the loop
the planner calls the decoder and the objective unchecked, on latents and actions it made.
The decoder is a :class:`~planner.prior.DiffusionPrior` over action chunks, its distilled
one-call student, or any object with the same ``latent_shape`` / ``decoding`` / ``encode``
(an identity decoder turns the same loop into action-space CEM). A plan is K knots that a
:class:`~planner.knots.KnotSchedule` turns into H actions (K = H by default: the plan is its
actions).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from planner.elites import DiffusionElites, ElitesConfig
from planner.knots import KnotClock, KnotSchedule, over_knots
from planner.objective import Objective, Score, bind_state, score_candidates, top_indices
from planner.planning import Budget, PhaseTimer, PlanResult, commit_best
from planner.safeguards import PlanMemory, Safeguards
from planner.validation import check_count
from planner.warm_start import WARM_START_FUNCTIONS, WARM_STARTS, WarmStartSettings

EXECUTE = ("best", "mean")


class TrajectoryDecoder(Protocol):
    """What the planner needs of a prior: latents (N, K, A) <-> plans of K knots (N, K, A)."""

    latent_shape: tuple[int, int]
    decodes_in_one_call: bool
    """True when ``steps`` changes nothing (a distilled student, the identity of CEM)."""

    def decode(self, latents: torch.Tensor, steps: int, cond: Any = None) -> torch.Tensor:
        """Latents (N, K, A) -> normalised knots (N, K, A) in [-1, 1], deterministically."""
        ...

    def decoding(self, steps: int, cond: Any = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """``decode`` at ``steps`` with conditioning ``cond (K,)`` for one planning call, its
        arguments checked once: the returned function takes the search's latents unchecked."""
        ...

    def encode(self, trajectories: torch.Tensor, steps: int, cond: Any = None) -> torch.Tensor:
        """Knots (N, K, A) -> latents (N, K, A) that decode back to them (DDIM inversion)."""
        ...


@dataclass(frozen=True)
class PlannerConfig:
    """Settings of :class:`RecedingHorizonPlanner` (H and A come from the decoder).

    Attributes:
        population: N candidates per iteration.
        elite_fraction: rho; E = max(1, ceil(rho * N)) elites refit the search distribution.
        iterations: T Diffusion Elites iterations per planning call.
        search_steps: DDIM steps while searching (2-3 suffice; 1 decodes nearly the same
            trajectory whatever the latent, so the search stalls).
        final_steps: DDIM steps for the executed plan.
        execute: ``"best"`` executes the best candidate seen; ``"mean"`` the decoded elite mean.
        replan_every: k; search every k control steps and execute the cached plan in between
            (k <= H, checked by the planner, which knows H).
        warm_start: where each replan's search begins, one of ``WARM_STARTS``
            (:mod:`planner.warm_start`): ``"none"`` restarts from the prior; ``"shift"`` moves
            the latent mean k steps along time (whole knots) and refills the tail from the prior;
            ``"shift-mix"`` is ``"shift"`` with half of the first population from the prior;
            ``"inversion"`` DDIM-inverts the previous plan shifted k steps. Which wins depends
            on the task (see the module).
        shift_std_scale: with ``"shift"`` / ``"shift-mix"``: None resets the std to
            ``init_std``; a number multiplies the shifted std (inflation) before clamping to
            ``[min_std, init_std]``.
        init_std, min_std, jitter, elite_carryover, distribution, latent_bounds: forwarded to
            :class:`~planner.elites.ElitesConfig` (``latent_bounds=(-1, 1)`` makes action-space
            CEM refit to the clipped actions it scores).
        record: keep the last iteration's decoded population and elite indices in PlanResult
            (for plots and videos; off in timed runs).
    """

    population: int = 64
    elite_fraction: float = 0.1
    iterations: int = 4
    search_steps: int = 2
    final_steps: int = 5
    execute: str = "best"
    replan_every: int = 1
    warm_start: str = "shift"
    shift_std_scale: float | None = None
    init_std: float = 1.0
    min_std: float = 0.05
    jitter: float = 1e-6
    elite_carryover: float = 0.0
    distribution: str = "diagonal"
    latent_bounds: tuple[float, float] | None = None
    record: bool = False

    def __post_init__(self) -> None:
        positive = {
            "population": self.population,
            "iterations": self.iterations,
            "search_steps": self.search_steps,
            "final_steps": self.final_steps,
            "replan_every": self.replan_every,
        }
        for name, value in positive.items():
            check_count(f"PlannerConfig.{name}", value)
        if self.warm_start not in WARM_STARTS:
            raise ValueError(
                f"PlannerConfig.warm_start must be one of {WARM_STARTS}, got {self.warm_start!r}"
            )
        if self.execute not in EXECUTE:
            raise ValueError(
                f"PlannerConfig.execute must be one of {EXECUTE}, got {self.execute!r}"
            )
        if self.shift_std_scale is not None and not self.shift_std_scale > 0:
            raise ValueError(
                f"PlannerConfig.shift_std_scale must be None (reset) or > 0, "
                f"got {self.shift_std_scale!r}"
            )
        # The optimizer validates the rest; building its config here fails early with its message.
        self.elites_config()

    def elites_config(self) -> ElitesConfig:
        """The optimizer's configuration for this planner."""
        return ElitesConfig(
            population=self.population,
            elite_fraction=self.elite_fraction,
            jitter=self.jitter,
            min_std=self.min_std,
            init_std=self.init_std,
            elite_carryover=self.elite_carryover,
            distribution=self.distribution,
            latent_bounds=self.latent_bounds,
        )


class RecedingHorizonPlanner:
    """Model-predictive control by Diffusion Elites over action-trajectory latents.

    Args:
        decoder: a prior with ``latent_shape == (K, A)``, ``decoding`` and ``encode``; the
            search decodes with it.
        objective: ``rewards (N,) = objective(state, actions (N, H, A))``; higher is better.
        config: :class:`PlannerConfig`.
        seed: seeds the optimizer's generator; same seed, same plans, bit for bit.
        device: where latents live and the decoder runs.
        safeguards: the fill action, keep-the-previous-plan and safe-plan rules every planner
            shares (:mod:`planner.safeguards`).
        final_decoder: decodes the chosen latent into the executed plan (None: ``decoder``),
            e.g. the teacher of a distilled student that searched; same latent shape.
        schedule: how the decoder's K knots become H actions (None: K = H, the identity).
    """

    def __init__(
        self,
        decoder: TrajectoryDecoder,
        objective: Objective,
        config: PlannerConfig = PlannerConfig(),
        seed: int | None = 0,
        device: str | torch.device = "cpu",
        safeguards: Safeguards = Safeguards(),
        final_decoder: TrajectoryDecoder | None = None,
        schedule: KnotSchedule | None = None,
    ) -> None:
        if not callable(objective):
            raise TypeError(
                f"objective must be callable as objective(state, actions) -> rewards, "
                f"got {type(objective).__name__}"
            )
        self.decoder = decoder
        self.final_decoder = decoder if final_decoder is None else final_decoder
        if tuple(self.final_decoder.latent_shape) != tuple(decoder.latent_shape):
            raise ValueError(
                f"final_decoder decodes latents {tuple(self.final_decoder.latent_shape)} but the "
                f"search decoder {tuple(decoder.latent_shape)}; pass decoders of the same prior"
            )
        knots, self.action_dim = (int(n) for n in decoder.latent_shape)
        self.schedule = KnotSchedule(knots) if schedule is None else schedule
        if self.schedule.knots != knots:
            raise ValueError(
                f"the decoder plans K={knots} knots but the schedule interpolates "
                f"{self.schedule.knots}: pass a schedule of {knots} knots, or a prior over "
                f"{self.schedule.knots}"
            )
        self.horizon = self.schedule.horizon
        self.objective = over_knots(objective, self.schedule)
        self.config = config
        self.device = torch.device(device)
        if config.replan_every > self.horizon:
            raise ValueError(
                f"PlannerConfig.replan_every={config.replan_every} exceeds the decoder's horizon "
                f"H={self.horizon}: the cached plan would run out before the next search. Pass "
                f"replan_every <= {self.horizon}, or a decoder with a longer horizon."
            )
        self.budget = Budget.of(
            self.schedule, self.action_dim, config.population, config.iterations
        )
        self.memory = PlanMemory(self.schedule, self.action_dim, safeguards)
        self._clock = KnotClock(self.schedule)
        # The executed plan is re-scored unless it is exactly a candidate scored by the search:
        # the best latent decoded as the search decoded it.
        self._rescore_final = (
            config.execute == "mean"
            or self.final_decoder is not decoder
            or (config.final_steps != config.search_steps and not decoder.decodes_in_one_call)
        )
        reserved = safeguards.max_candidates + int(self._rescore_final)
        if config.population <= reserved:
            raise ValueError(
                f"PlannerConfig.population={config.population} leaves no candidate for the last "
                f"search iteration: {reserved} of its evaluations go to the executed plan and "
                f"the safeguards' candidates; use a population > {reserved}"
            )
        self.elites = DiffusionElites(
            (knots, self.action_dim), config.elites_config(), seed=seed, device=self.device
        )
        # Warm starts are resolved once; the planning loop calls one function.
        self._warm_start = WARM_START_FUNCTIONS[config.warm_start]
        self._warm_start_settings = WarmStartSettings(
            config.population, config.shift_std_scale, config.search_steps
        )
        self.reset()

    def reset(self) -> None:
        """Forget the previous plan and restart the search from the prior (new episode)."""
        self.elites.reset()
        self.memory.reset()
        self._clock.reset()
        self._steps_since_plan = 0

    def plan(self, state: Any, cond: Any = None) -> PlanResult:
        """Choose the action to execute from ``state``.

        Spends at most N*T reward evaluations: the search's, plus the executed plan's re-score
        and the safeguards' candidates, which come out of the last iteration's population.

        Args:
            state: the objective's planning state (opaque to the planner).
            cond: optional conditioning passed to the decoder (e.g. the observation (O,)).
        """
        timer = PhaseTimer()
        planned = self.memory.plan is not None
        if planned and self._steps_since_plan < self.config.replan_every:
            return self._reuse_plan(timer)
        cond = self._cond(cond)
        if planned:
            steps = self._steps_since_plan
            self._warm_start(
                self.elites, self.memory, self.decoder, self._warm_start_settings,
                steps, self._clock.advance(steps), None if cond is None else cond[None],
            )  # fmt: skip
        result = self._search(bind_state(self.objective, state), state, cond, timer)
        self._steps_since_plan = 1
        return result

    def _search(
        self, score: Score, state: Any, cond: torch.Tensor | None, timer: PhaseTimer
    ) -> PlanResult:
        config = self.config
        decode = self.decoder.decoding(config.search_steps, cond)
        n = config.population
        k = self._steps_since_plan
        extras = self.memory.candidates(k)
        last_population = n - len(extras) - int(self._rescore_final)
        self._evaluations = 0
        iterations = 0
        candidates = candidate_rewards = elite_indices = None
        searched_best, searched_reward = None, -np.inf
        extra_rewards = None  # the safeguards' candidates, scored with the last population
        for iteration in range(config.iterations):
            last = iteration == config.iterations - 1
            size = last_population if last else n
            # Sample
            latents = self.elites.ask()[:size]
            # Decode
            tic = time.perf_counter()
            actions = decode(latents)
            actions_np = actions.detach().cpu().numpy().astype(np.float64)
            timer.add("decode", tic)
            # Score (the last population in one call with the safeguards' candidates)
            tic = time.perf_counter()
            if last and len(extras):
                rewards = self._score(score, np.concatenate([actions_np, extras]))
                rewards, extra_rewards = rewards[:size], rewards[size:]
            else:
                rewards = self._score(score, actions_np)
            timer.add("reward", tic)
            if not np.isfinite(rewards).any():
                break  # nothing to learn from; keep what earlier iterations found
            # Refit
            self.elites.tell(latents, torch.as_tensor(rewards, device=self.device))
            iterations += 1
            top = top_indices(rewards, 1)[0]
            if rewards[top] > searched_reward:
                searched_best, searched_reward = actions_np[top], float(rewards[top])
            if config.record:
                candidates, candidate_rewards = actions_np, rewards
                elite_indices = top_indices(rewards, self.elites.config.num_elites)
        # Choose: the best candidate as scored, the chosen latent decoded with final_steps (when
        # that differs), and the safeguards' candidates; execute the best of them.
        options = list(extras) + ([] if searched_best is None else [searched_best])
        option_rewards = [] if extra_rewards is None else list(extra_rewards)
        scored = list(extras) if extra_rewards is None else []  # the search stopped early
        if searched_best is not None:
            option_rewards.append(searched_reward)
        if self._rescore_final and self.elites.best is not None:
            chosen = self.elites.best.latent if config.execute == "best" else self.elites.mean
            tic = time.perf_counter()
            final = self.final_decoder.decoding(config.final_steps, cond)(chosen[None])
            final_np = final[0].detach().cpu().numpy().astype(np.float64)
            options.insert(0, final_np)
            scored.insert(0, final_np)
            timer.add("decode", tic)
        if scored:
            tic = time.perf_counter()
            option_rewards = list(self._score(score, np.stack(scored))) + option_rewards
            timer.add("reward", tic)
        result = commit_best(
            self.memory, options, option_rewards, state, k, iterations, self._evaluations, timer,
            candidates, candidate_rewards, elite_indices,
        )  # fmt: skip
        if result.fallback:
            self.elites.reset()
            self._clock.reset()
        return result

    def _reuse_plan(self, timer: PhaseTimer) -> PlanResult:
        step = self._steps_since_plan
        self._steps_since_plan += 1
        knots = self.memory.plan
        plan = self.schedule.actions(knots)
        return PlanResult(
            action=plan[step].copy(),
            plan=plan,
            predicted_reward=math.nan,
            iterations=0,
            reward_evaluations=0,
            timing=timer.finish(),
            knots=knots,
        )

    def _score(self, score: Score, actions: np.ndarray) -> np.ndarray:
        """Rewards of plans ``(M, K, A)``; every evaluation of this step is counted here."""
        self._evaluations += len(actions)
        return score_candidates(score, actions)

    def _cond(self, cond: Any) -> torch.Tensor | None:
        """The conditioning vector ``(K,)`` of this step as a tensor on the planner's device."""
        if cond is None:
            return None
        cond = torch.as_tensor(np.asarray(cond), dtype=torch.float32, device=self.device)
        if cond.ndim != 1:
            raise ValueError(
                f"cond must be one vector (K,) for the current state, got shape {tuple(cond.shape)}"
            )
        return cond
