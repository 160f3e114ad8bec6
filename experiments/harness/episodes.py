"""The episode loop of every script, and the summary of a run's episodes."""

from __future__ import annotations

import math
import time
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from envs.planning_state import read_planning_state
from envs.registry import get_task
from envs.unicycle import UnicycleEnv
from experiments.harness.cli import print_table
from planner.action_scaling import ActionScaling
from planner.planning import Budget
from policies.diffusion_elites import DiffusionElitesPolicy


def has_goal(env: str) -> bool:
    """Whether ``env`` ends in success or failure (the unicycle tasks), not only a return."""
    return get_task(env).family == "unicycle"


def run_episode(env, policy, seed, max_steps, recorder, progress: Any = None) -> dict:
    """One seeded episode; returns its metrics and the visited planning states.

    ``progress``: anything with ``update(n)`` (a tqdm bar), advanced by one per control step.
    Each step's ``predicted_rewards`` entry is the executed plan's predicted return over its
    horizon, as the planner scored it (None for an agent, or a step without a fresh plan).
    """
    observation, info = env.reset(seed=seed)
    scaling = ActionScaling(env.action_space.low, env.action_space.high)
    episode_start = np.ones(1, dtype=bool)
    total, steps, success, collision = 0.0, 0, False, False
    actions, rewards, plan_ms, evaluations, states, predicted = [], [], [], [], [], []
    seconds = 0.0  # planning and simulation only: drawing video frames is not control time
    planner = isinstance(policy, DiffusionElitesPolicy)
    # the simulator's state as the policy read it, unless it plans from observations
    reads_state = planner and policy.read_states is not None
    while True:
        tic = time.perf_counter()
        # An SB3 agent acts on its mean action, as SB3's evaluate_policy does: a sampled one
        # would draw from torch's global generator, so an episode would not repeat.
        action, _ = policy.predict(
            observation[None], episode_start=episode_start, deterministic=True
        )
        plan_ms.append(1e3 * (time.perf_counter() - tic))
        episode_start[:] = False
        state = policy.last_states[0] if reads_state else read_planning_state(env)
        result = policy.last_results[0] if planner else None
        if result is not None:  # its action before scaling, as the planner chose it
            evaluations.append(result.reward_evaluations)
            actions.append(np.clip(result.action, -1.0, 1.0))
            predicted.append(result.predicted_reward)
        else:
            evaluations.append(0)
            actions.append(scaling.to_normalised(action[0]))
            predicted.append(math.nan)
        states.append(np.asarray(state))
        if recorder is not None and result is not None:
            recorder.add(env, state, result)
        tic = time.perf_counter()
        observation, reward, terminated, truncated, info = env.step(action[0])
        seconds += time.perf_counter() - tic + plan_ms[-1] / 1e3
        rewards.append(float(reward))
        total += float(reward)
        steps += 1
        success = success or bool(info.get("success", False))
        collision = collision or bool(info.get("collision", False))
        if progress is not None:
            progress.update(1)
        if terminated or truncated or (max_steps is not None and steps >= max_steps):
            break
    states.append(np.asarray(read_planning_state(env)))
    changes = np.abs(np.diff(np.asarray(actions), axis=0))
    return {
        "seed": seed,
        "return": total,
        "steps": steps,
        "success": success,
        "collision": collision,
        "seconds": seconds,
        "plan_ms": plan_ms,
        "reward_evaluations": evaluations,
        "mean_abs_action_change": float(changes.mean()) if len(changes) else 0.0,
        "rewards": rewards,
        "predicted_rewards": [float(p) if math.isfinite(p) else None for p in predicted],
        "states": np.asarray(states).tolist(),
    }


def step_limit(env: gym.Env, max_steps: int | None) -> int | None:
    """The most control steps an episode of ``env`` cut at ``max_steps`` (None: not cut) runs:
    the smaller of ``max_steps`` and the env's own limit; None when neither is known."""
    if isinstance(env.unwrapped, UnicycleEnv):
        own = env.unwrapped.config.max_episode_steps
    else:
        own = env.spec.max_episode_steps if env.spec is not None else None
    limits = [limit for limit in (max_steps, own) if limit is not None]
    return min(limits) if limits else None


def run_episodes(
    env: gym.Env, policy: Any, seeds: list[int], max_steps: int | None, recorder: Any, name: str
) -> list[dict]:
    """:func:`run_episode` on each of ``seeds`` (``recorder`` records the first), under one
    progress bar over all their control steps, named ``name``.

    One bar over control steps rather than one per episode: a single line whose rate is the
    control rate and whose estimate covers the whole run; an episode that ends early takes its
    unused steps off the total, so the bar still ends at 100%.
    """
    limit = step_limit(env, max_steps)
    episodes = []
    with tqdm(total=limit and limit * len(seeds), desc=name, unit="step") as bar:
        for index, seed in enumerate(seeds):
            bar.set_postfix_str(f"episode {index + 1}/{len(seeds)}")
            record = recorder if index == 0 else None
            episodes.append(run_episode(env, policy, seed, max_steps, record, bar))
            if limit is not None:
                bar.total -= limit - episodes[-1]["steps"]
                bar.refresh()
    return episodes


NO_BUDGET = "-"
"""The budget shown for an agent: it acts without planning, so N x T does not apply."""


def summarise(env: str, episodes: list[dict], budget: Budget | None) -> dict:
    """The summary block of results.json: on a goal task (:func:`has_goal`) success, collision
    and steps to success first; then return, steps (survived, on a task that can end early),
    control rate, planning time and budget (:data:`NO_BUDGET` for an agent, which plans nothing):
    N x T, the plan (:func:`plan_shape`) and the env steps simulated per control step."""
    plan_ms = np.concatenate([e["plan_ms"] for e in episodes])
    steps = sum(e["steps"] for e in episodes)
    outcome = {}
    if has_goal(env):
        successes = [e for e in episodes if e["success"]]
        outcome = {
            "success_rate": float(np.mean([e["success"] for e in episodes])),
            "collision_rate": float(np.mean([e["collision"] for e in episodes])),
            "mean_steps_to_success": (
                float(np.mean([e["steps"] for e in successes])) if successes else None
            ),
        }
    return {
        "episodes": len(episodes),
        **outcome,
        "mean_return": float(np.mean([e["return"] for e in episodes])),
        "mean_steps": float(np.mean([e["steps"] for e in episodes])),
        "control_hz": steps / sum(e["seconds"] for e in episodes),
        "plan_ms_p50": float(np.percentile(plan_ms, 50)),
        "plan_ms_p95": float(np.percentile(plan_ms, 95)),
        "reward_evals_per_step": float(
            np.mean(np.concatenate([e["reward_evaluations"] for e in episodes]))
        ),
        "mean_abs_action_change": float(np.mean([e["mean_abs_action_change"] for e in episodes])),
        "budget": NO_BUDGET if budget is None else f"{budget.population}x{budget.iterations}",
        "population": None if budget is None else budget.population,
        "iterations": None if budget is None else budget.iterations,
        "horizon": None if budget is None else budget.horizon,
        "knots": None if budget is None else budget.knots,
        "interpolation": None if budget is None else budget.interpolation,
        "plan": NO_BUDGET if budget is None else plan_shape(budget),
        "env_steps_per_control_step": None if budget is None else budget.env_steps,
    }


def plan_shape(budget: Budget) -> str:
    """What a plan is, in one word of a table: ``"H=16"`` (a knot per step), or
    ``"H=32,K=8,hold"`` (K knots interpolated to H steps)."""
    if budget.knots == budget.horizon:
        return f"H={budget.horizon}"
    return f"H={budget.horizon},K={budget.knots},{budget.interpolation}"


SUMMARY_FORMATS = {
    "success_rate": ".2f",
    "collision_rate": ".2f",
    "mean_steps_to_success": ".1f",
    "mean_return": ".1f",
    "mean_steps": ".1f",
    "control_hz": ".1f",
    "plan_ms_p50": ".1f",
}


def print_summary(env: str, summary: dict) -> str:
    """Print the figures of :func:`summarise` that ``env`` is judged by (success and collisions
    on a goal task, return and steps survived on others), control rate, planning time and
    budget, as a table of at most 8 columns; return it."""
    if has_goal(env):
        judged = ["success_rate", "collision_rate", "mean_steps_to_success"]
    else:
        judged = ["mean_return", "mean_steps"]
    columns = ["episodes", *judged, "control_hz", "plan_ms_p50", "budget", "plan"]
    return print_table([summary], columns, SUMMARY_FORMATS)
