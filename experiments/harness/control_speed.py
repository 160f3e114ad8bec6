"""Where a control step's time goes, per thread configuration, against the physics floor.

One measurement: a task's planner at its default budget (the setup of ``run_mpc.py``) runs the
same seeded episode of ``steps`` control steps once per thread configuration, in interleaved
rounds, so that a disturbance of the machine hits every configuration alike. Per step it
reports the planner's own split (``PlanResult.timing``: decode, reward, other), the whole
``predict`` call, the control rate (planning and env steps, as ``run_mpc.py`` counts it)
against the task's real-time rate ``1 / dt``, and for MuJoCo tasks the physics floor: the same
rollouts (the planner's own calls, recorded once and replayed) stepped by MuJoCo in C on the
same number of threads (:mod:`experiments.harness.raw_physics`). With ``reward="world-model"``
the task's shipped world model scores the candidates (no physics floor): its rollouts run on
one thread or in chunks on the pool's threads, whichever its first calls timed faster (a row
says which it kept; :mod:`planner.threads`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from envs.registry import make_env
from experiments.harness.episodes import run_episode
from experiments.harness.raw_physics import raw_seconds
from planner.objective import bind_state
from planner.threads import FastestThreads, use_planning_threads
from policies.setup import Planning, PlanningSetup

THREAD_CONFIGS = {
    "policy": "torch on 1 thread, rollout pool on every core (planner.threads: the default)",
    "torch-all": "torch on every core, rollout pool on every core (torch's own default)",
    "pool-1": "torch on 1 thread, rollout pool on 1 thread",
}


def thread_counts(config: str, cores: int) -> tuple[int, int]:
    """(torch threads, rollout pool threads) of a configuration of ``THREAD_CONFIGS``."""
    return {"policy": (1, cores), "torch-all": (cores, cores), "pool-1": (1, 1)}[config]


class StepTimes:
    """A recorder for :func:`run_episode`: each control step's ``PlanResult.timing``."""

    def __init__(self) -> None:
        self.timings: list[dict[str, float]] = []

    def add(self, env: Any, state: Any, result: Any) -> None:
        """Keep the timing of one control step."""
        self.timings.append(result.timing)


class RecordingObjective:
    """An objective that keeps every call's ``(state, actions)`` for a replay on the floor."""

    def __init__(self, objective: Any) -> None:
        self.objective = objective
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, state: Any, actions: np.ndarray) -> np.ndarray:
        """Score as the objective does, and keep the call."""
        return self.bind(state)(actions)

    def bind(self, state: Any):
        """The objective bound to ``state``, recording each call."""
        score = bind_state(self.objective, state)

        def record(actions: np.ndarray) -> np.ndarray:
            self.calls.append((np.array(state), np.array(actions)))
            return score(actions)

        return record


def measure_control(
    task: str,
    planner: str,
    configs: list[str],
    cores: int,
    steps: int,
    rounds: int,
    seed: int,
    reward: str = "simulator",
) -> list[dict[str, Any]]:
    """One row per configuration of ``configs`` for ``planner`` on ``task``, its candidates
    scored by ``reward`` (``"simulator"`` or ``"world-model"``; see module)."""
    env = make_env(task)
    setup = PlanningSetup(task, planner, seed=seed, reward=reward)
    policies, objectives = {}, {}
    for config in configs:
        _, pool = thread_counts(config, cores)
        use_planning_threads(pool)  # the objective's pool is sized when it is built
        resolved = setup.resolve(env)
        policies[config], objectives[config] = resolved.policy(), resolved.objective
    measured: dict[str, list[dict[str, float]]] = {config: [] for config in configs}
    for _ in range(rounds):
        for config in configs:
            torch.set_num_threads(thread_counts(config, cores)[0])
            times = StepTimes()
            episode = run_episode(env, policies[config], seed, steps, times)
            measured[config].append(
                {
                    **{
                        phase: 1e3 * np.mean([t.get(phase, 0.0) for t in times.timings])
                        for phase in ("decode", "reward", "other")
                    },
                    "step": float(np.mean(episode["plan_ms"])),
                    "control_hz": episode["steps"] / episode["seconds"],
                    "steps": episode["steps"],
                    "evaluations": float(np.mean(episode["reward_evaluations"])),
                }
            )
    use_planning_threads(cores)
    planning = setup.resolve(env)
    budget = planning.budget
    floors = _physics_floors(planning, steps, {thread_counts(c, cores)[1] for c in configs})
    dt = float(getattr(env.unwrapped, "dt", None) or env.unwrapped.config.dt)
    rows = []
    for config in configs:
        torch_threads, pool = thread_counts(config, cores)
        median = {
            key: float(np.median([m[key] for m in measured[config]])) for key in measured[config][0]
        }
        floor = floors.get(pool)
        rows.append(
            {
                "task": task,
                "planner": planner,
                "reward": reward,
                "propagation": setup.propagation if reward == "world-model" else None,
                "config": config,
                "torch_threads": torch_threads,
                "pool_threads": pool,
                **_model_threads(objectives[config]),
                "decoder": _decoder_name(planning.decoder, planning.final_decoder),
                "budget": f"{budget.population}x{budget.iterations}",
                "horizon": budget.horizon,
                "horizon_s": budget.horizon * dt,
                "evaluations_per_step": median["evaluations"],
                "decode_ms": median["decode"],
                "reward_ms": median["reward"],
                "other_ms": median["other"],
                "step_ms": median["step"],
                "physics_ms": floor,
                "step_over_physics": None if floor is None else median["step"] / floor,
                "control_hz": median["control_hz"],
                "realtime_hz": 1.0 / dt,
                "realtime_ratio": median["control_hz"] * dt,
                "steps": int(median["steps"]),
                "rounds": rounds,
            }
        )
    env.close()
    return rows


def _physics_floors(planning: Planning, steps: int, pools: set[int]) -> dict[int, float]:
    """Milliseconds per control step of the raw physics of the planner's own rollouts, per
    pool size (best of three replays); empty for tasks without MuJoCo."""
    task = getattr(planning.objective, "task", None)
    if task is None:
        return {}
    recording = RecordingObjective(planning.objective)
    policy = planning.with_objective(recording).policy()
    seed = planning.setup.seed
    episode = run_episode(planning.env, policy, seed, steps, None)
    floors = {}
    for pool in sorted(pools):
        replays = [
            sum(raw_seconds(task, state, actions, pool) for state, actions in recording.calls)
            for _ in range(3)
        ]
        floors[pool] = 1e3 * min(replays) / episode["steps"]
    return floors


def markdown_table(rows: list[dict[str, Any]], machine: str, command: str) -> str:
    """The rows as a markdown report: the machine and command, then one line per row."""
    header = (
        "| task | load | planner | scored by | decoder | threads (torch / pool) | budget "
        "| decode ms | reward ms | other ms | whole step ms | physics ms | step / physics "
        "| control Hz | real-time Hz |"
    )
    lines = [
        f"Machine: {machine}. Command: `{command}`.",
        "",
        header,
        "|" + " --- |" * (header.count("|") - 1),
    ]
    for row in rows:
        physics = "-" if row["physics_ms"] is None else f"{row['physics_ms']:.1f}"
        ratio = "-" if row["step_over_physics"] is None else f"{row['step_over_physics']:.2f}"
        lines.append(
            f"| {row['task']} | {row['load']} | {row['planner']} | {_scored_by(row)} | "
            f"{row['decoder']} | "
            f"{row['config']} "
            f"({row['torch_threads']} / {row['pool_threads']}{_kept(row)}) | {row['budget']} | "
            f"{row['decode_ms']:.1f} | "
            f"{row['reward_ms']:.1f} | {row['other_ms']:.1f} | {row['step_ms']:.1f} | {physics} | "
            f"{ratio} | {row['control_hz']:.1f} | {row['realtime_hz']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _model_threads(objective: Any) -> dict[str, Any]:
    """A world model's rollout threads: the count its objective kept (``model_threads``) and
    each count's median milliseconds per candidate while it timed them
    (``model_ms_per_candidate``); both None for the simulator, whose pool is fixed."""
    timed = getattr(objective, "threads", None)
    if not isinstance(timed, FastestThreads):
        return {"model_threads": None, "model_ms_per_candidate": None}
    return {
        "model_threads": timed.chosen,
        "model_ms_per_candidate": {
            count: 1e3 * float(np.median(seconds)) if seconds else None
            for count, seconds in timed.seconds.items()
        },
    }


def _kept(row: dict[str, Any]) -> str:
    """A world model's row: the rollout threads its objective timed and kept
    (:class:`planner.threads.FastestThreads`); other rows: nothing."""
    kept = row.get("model_threads")
    return "" if kept is None else f", model kept {kept}"


def _scored_by(row: dict[str, Any]) -> str:
    """What scored a row's candidates: the simulator, or the world model with its propagation
    (a task's default may change between releases; the row says which one ran)."""
    propagation = row.get("propagation")
    return row["reward"] if propagation is None else f"{row['reward']} ({propagation})"


def _decoder_name(search: Any, final: Any) -> str:
    """``SEARCH[:FINAL]`` of DE's decoders (``-`` for planners without a prior)."""
    if search is None:
        return "-"
    names = ["student" if decoder.decodes_in_one_call else "ddim" for decoder in (search, final)]
    return names[0] if names[0] == names[1] and search is final else ":".join(names)
