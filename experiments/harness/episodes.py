"""The episode loop of every script, and the summary of a run's episodes."""

from __future__ import annotations

import time

import numpy as np

from envs.planning_state import read_planning_state
from planner.action_scaling import ActionScaling
from planner.planning import Budget
from policies.diffusion_elites import DiffusionElitesPolicy


def run_episode(env, policy, seed, max_steps, recorder) -> dict:
    """One seeded episode; returns its metrics and the visited planning states."""
    observation, info = env.reset(seed=seed)
    scaling = ActionScaling(env.action_space.low, env.action_space.high)
    episode_start = np.ones(1, dtype=bool)
    total, steps, success, collision = 0.0, 0, False, False
    actions, rewards, plan_ms, evaluations, states = [], [], [], [], []
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
        else:
            evaluations.append(0)
            actions.append(scaling.to_normalised(action[0]))
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
        "states": np.asarray(states).tolist(),
    }


def summarise(episodes: list[dict], budget: Budget) -> dict:
    """The summary block of results.json."""
    plan_ms = np.concatenate([e["plan_ms"] for e in episodes])
    successes = [e for e in episodes if e["success"]]
    steps = sum(e["steps"] for e in episodes)
    return {
        "episodes": len(episodes),
        "success_rate": float(np.mean([e["success"] for e in episodes])),
        "mean_return": float(np.mean([e["return"] for e in episodes])),
        "mean_steps": float(np.mean([e["steps"] for e in episodes])),
        "collision_rate": float(np.mean([e["collision"] for e in episodes])),
        "control_hz": steps / sum(e["seconds"] for e in episodes),
        "plan_ms_p50": float(np.percentile(plan_ms, 50)),
        "plan_ms_p95": float(np.percentile(plan_ms, 95)),
        "reward_evals_per_step": float(
            np.mean(np.concatenate([e["reward_evaluations"] for e in episodes]))
        ),
        "mean_steps_to_success": (
            float(np.mean([e["steps"] for e in successes])) if successes else None
        ),
        "mean_abs_action_change": float(np.mean([e["mean_abs_action_change"] for e in episodes])),
        "population": budget.population,
        "iterations": budget.iterations,
        "horizon": budget.horizon,
    }
