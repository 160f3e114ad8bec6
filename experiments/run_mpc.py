"""The main job: receding-horizon planning episodes on a task, a summary table, a run folder.

    python experiments/run_mpc.py --env unicycle-goal
    python experiments/run_mpc.py --env unicycle-obstacles --planner icem --episodes 50

Writes ``runs/<env>__<planner>__s<seed>__<time>/`` with ``config.json``, ``results.json``
(``summary`` + per-episode list), ``trajectories.png`` and ``episode.gif`` (the first episode:
population, elites and executed plan at each step); ``--out PATH`` also writes the results JSON.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from envs.registry import CHECKPOINTS, get_task, make_env, task_names
from envs.visuals import EpisodeRecorder, plot_episodes
from planner.mpc import EXECUTE, WARM_STARTS, PlannerConfig
from planner.prior import DiffusionPrior
from policies.baselines import load_sb3_agent
from policies.diffusion_elites import DiffusionElitesPolicy
from policies.planners import PLANNERS, Budget, build_planner
from script_support import REPO_ROOT, arg, parse_args, print_table, run_folder, write_json

AGENTS = ("sac", "ppo")
CONTROLLERS = PLANNERS + AGENTS


@dataclass
class RunArgs:
    """Arguments of run_mpc.py (None: the task's default)."""

    env: str = arg("unicycle-goal", "task short name", choices=tuple(task_names()))
    planner: str = arg(
        "de", "Diffusion Elites, an action-space baseline or a trained SB3 agent", CONTROLLERS
    )
    agent: str | None = arg(None, "SB3 agent zip (default: checkpoints/agents/<env>-<algo>.zip)")
    episodes: int | None = arg(None, "episodes to run (default: the task's)")
    seed: int = arg(0, "episode i uses env seed seed+i; planners are seeded from it too")
    out: str | None = arg(None, "also write the results JSON to this path")
    population: int | None = arg(None, "N candidates per iteration")
    iterations: int | None = arg(None, "T iterations per control step")
    search_steps: int | None = arg(None, "DDIM steps while searching (de)")
    final_steps: int | None = arg(None, "DDIM steps of the executed plan (de)")
    warm_start: str | None = arg(
        None, "warm start between control steps (de; default: the task's)", WARM_STARTS
    )
    execute: str = arg("best", "execute the best sample or the decoded elite mean (de)", EXECUTE)
    prior: str | None = arg(None, "prior checkpoint (default: the task's shipped one)")
    max_steps: int | None = arg(None, "cut episodes after this many steps")
    device: str = arg("cpu", "torch device of the prior (cpu, cuda, ...)")
    threads: int | None = arg(None, "torch CPU threads (default: torch's choice)")
    no_render: bool = arg(False, "skip the PNG and GIF")
    runs_dir: str = arg(str(REPO_ROOT / "runs"), "where run folders are created")


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


def run(args: RunArgs) -> dict:
    """Run the episodes and write the run folder; return the results dict."""
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = get_task(args.env)
    prior = load_prior(args.planner, spec, args.prior, args.device)
    render = not args.no_render
    env = make_env(spec.name, render_mode="rgb_array" if render else None)
    objective = spec.make_objective(env)
    budget = make_budget(spec, env, prior, args.population, args.iterations)
    settings = planner_settings(spec, args.search_steps, args.final_steps, args.warm_start)
    settings = replace(settings, execute=args.execute)

    policy = make_policy(
        env,
        spec,
        args.planner,
        objective,
        budget,
        args.seed,
        prior,
        settings,
        args.device,
        record=render,
        agent=args.agent,
    )
    folder = run_folder(Path(args.runs_dir), [spec.name, args.planner, f"s{args.seed}"], args)
    recorder = EpisodeRecorder(env, objective) if render else None
    max_steps = args.max_steps or spec.max_steps
    episodes = []
    for episode in tqdm(range(args.episodes or spec.episodes), desc=f"{spec.name} {args.planner}"):
        record = recorder if episode == 0 else None  # the GIF shows the first episode
        episodes.append(run_episode(env, policy, args.seed + episode, max_steps, record))
    env.close()
    summary = summarise(episodes, budget)
    results = {"env": spec.name, "planner": args.planner, "summary": summary, "episodes": episodes}
    write_json(folder / "results.json", results)
    if args.out:
        write_json(Path(args.out), results)
    if render:
        plot_episodes(env, episodes, folder / "trajectories.png")
        recorder.save_gif(folder / "episode.gif")
    print_table([summary], list(summary))
    print(f"run folder: {folder}")
    return results


def planner_settings(spec, search_steps=None, final_steps=None, warm_start=None):
    """PlannerConfig for DE and CEM from the task's defaults and the command line."""
    defaults = spec.planner
    return PlannerConfig(
        search_steps=search_steps or defaults.get("search_steps", 2),
        final_steps=final_steps or defaults.get("final_steps", 5),
        warm_start=warm_start or defaults.get("warm_start", "shift"),
        fill_action=defaults.get("fill_action"),
    )


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
    return DiffusionElitesPolicy.for_env(env, make_planner, condition_on_observation=conditioned)


def run_episode(env, policy, seed, max_steps, recorder) -> dict:
    """One seeded episode; returns its metrics and the visited planning states."""
    observation, info = env.reset(seed=seed)
    episode_start = np.ones(1, dtype=bool)
    total, steps, success, collision = 0.0, 0, False, False
    actions, rewards, plan_ms, evaluations, states = [], [], [], [], []
    seconds = 0.0  # planning and simulation only: drawing video frames is not control time
    while True:
        tic = time.perf_counter()
        state = env.get_wrapper_attr("planning_state")()
        action, _ = policy.predict(observation[None], episode_start=episode_start)
        plan_ms.append(1e3 * (time.perf_counter() - tic))
        episode_start[:] = False
        result = policy.last_results[0] if hasattr(policy, "last_results") else None
        evaluations.append(0 if result is None else result.reward_evaluations)
        actions.append(normalised(env.action_space, action[0]))
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
    states.append(np.asarray(env.get_wrapper_attr("planning_state")()))
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


def normalised(space, action: np.ndarray) -> np.ndarray:
    """An env action mapped back to [-1, 1] by the inverse of the planners' affine scaling."""
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    return np.clip(2.0 * (np.asarray(action, dtype=np.float64) - low) / (high - low) - 1.0, -1, 1)


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


if __name__ == "__main__":
    run(parse_args(RunArgs, __doc__))
