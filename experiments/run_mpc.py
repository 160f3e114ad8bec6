"""The main job: receding-horizon planning episodes on a task, a summary table, a run folder.

    python experiments/run_mpc.py --env unicycle-goal
    python experiments/run_mpc.py --env unicycle-obstacles --planner icem --episodes 50
    python experiments/run_mpc.py --env half-cheetah --reward world-model --no-render

``--reward world-model`` scores candidates with a learned world model from the current
observation (checkpoints/<env>-world-model.pt, experiments/train_world_model.py) instead of the
simulator; the reported return is still the env's own. ``--costs height=10@1.3,upright=3`` adds
planning-only cost terms (envs/mujoco_rewards.py) to the planning reward, the simulator's or the
world model's (on its predicted observations), which shape the search but not the reported
return; ``--costs none`` drops the terms a task declares.
``--propagation tsinf --particles P`` rolls each candidate out as P particles, each on one
ensemble member (PETS' TS-inf).

Writes ``runs/<env>__<planner>__s<seed>__<time>/`` with ``config.json``, ``results.json``
(``summary``, the per-episode list, and ``value``: the critic it planned with, if any),
``trajectories.png`` (unicycle: each episode's path; MuJoCo: returns, each step's plan,
predicted against realised, and the body's path) and ``episode.gif`` (the first episode:
population, elites and executed plan at each step); ``--out PATH`` also writes the results JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from envs.mujoco_rewards import COST_TERMS, COSTS_SYNTAX, parse_costs
from envs.registry import default_values, make_env, task_names
from experiments.harness.cli import (
    REPO_ROOT,
    ScriptArgs,
    arg,
    check_device,
    run_folder,
    run_main,
    write_json,
)
from experiments.harness.drawing import EpisodeRecorder, plot_episodes
from experiments.harness.episodes import print_summary, run_episodes, summarise
from experiments.harness.grid import planned_with
from experiments.harness.world_models import particles_arg, propagation_arg, world_model_reward_arg
from planner.knots import INTERPOLATIONS
from planner.mpc import EXECUTE, WARM_STARTS
from planner.threads import use_planning_threads
from policies.setup import CONTROLLERS, DECODERS, REWARDS, PlanningSetup


@dataclass
class RunArgs(ScriptArgs):
    """Arguments of run_mpc.py (None: the task's default)."""

    env: str = arg("unicycle-goal", "task short name", choices=tuple(task_names()))
    planner: str = arg(
        "de", "Diffusion Elites, an action-space baseline or a trained SB3 agent", CONTROLLERS
    )
    agent: str | None = arg(None, "SB3 agent zip (default: checkpoints/agents/<env>-<algo>.zip)")
    episodes: int | None = arg(None, "episodes to run (default: the task's)", minimum=1)
    seed: int = arg(0, "episode i uses env seed seed+i; planners are seeded from it too")
    out: str | None = arg(None, "also write the results JSON to this path")
    population: int | None = arg(
        None, "N candidates per iteration (default: the task's)", minimum=1
    )
    iterations: int | None = arg(
        None, "T iterations per control step (default: the task's)", minimum=1
    )
    horizon: int | None = arg(
        None,
        "H env steps of planners without a prior (default: the task's; de: its prior's)",
        minimum=1,
    )
    horizon_seconds: float | None = arg(
        None, "H in seconds instead of steps: round(seconds / env dt) steps"
    )
    knots: int | None = arg(
        None,
        "K knots per plan, interpolated to H actions, every planner alike (default: one per "
        "step; de: its prior's)",
        minimum=1,
    )
    interpolation: str | None = arg(
        None,
        "how K knots become H actions (default: hold; de: its prior's)",
        INTERPOLATIONS,
    )
    search_steps: int | None = arg(
        None, "DDIM steps while searching (de; default: the task's)", minimum=1
    )
    final_steps: int | None = arg(
        None, "DDIM steps of the executed plan (de; default: the task's)", minimum=1
    )
    warm_start: str | None = arg(
        None, "warm start between control steps (de; default: the task's)", WARM_STARTS
    )
    execute: str = arg("best", "execute the best sample or the decoded elite mean (de)", EXECUTE)
    prior: str | None = arg(None, "prior checkpoint (default: the task's shipped one)")
    decoder: str | None = arg(
        None,
        "what DE searches with: the prior's DDIM decode or its one-call student (default: "
        "student where the task ships one for its prior, else ddim)",
        DECODERS,
    )
    final_decoder: str | None = arg(
        None, "what decodes DE's executed plan (default: as --decoder)", DECODERS
    )
    student: str | None = arg(None, "student checkpoint (default: the task's shipped one)")
    reward: str = arg("simulator", "score candidates in the simulator or a world model", REWARDS)
    world_model: str | None = arg(
        None, "world model checkpoint (default: checkpoints/<env>-world-model.pt)"
    )
    propagation: str | None = propagation_arg()
    particles: int | None = particles_arg()
    pessimism: float = arg(
        0.0,
        "world model, ts1/tsinf: score a candidate k standard deviations of its particles' "
        "returns below their mean (0: the mean)",
    )
    costs: str | None = arg(
        None,
        f"planning-only cost terms of the planning reward, simulator or world model (default: "
        f"the task's declared "
        f"ones; none: no terms): {COSTS_SYNTAX}. Terms: "
        + "; ".join(f"{name}: {meaning}" for name, meaning in COST_TERMS.items()),
        check=parse_costs,
    )
    world_model_reward: str | None = world_model_reward_arg()
    value_agent: str | None = arg(
        None,
        "a SAC agent zip whose critic values each candidate's state at the horizon's end, "
        "simulated or predicted by the world model, added to the planning reward of those that "
        "do not fall (default: the task's: "
        f"{default_values()}; none: no value)",
    )
    value_weight: float | None = arg(None, "the value is multiplied by it (default: the task's)")
    force_prior: bool = arg(False, "use --prior even if it was trained for another task")
    max_steps: int | None = arg(
        None, "cut episodes after this many steps (default: the task's)", minimum=1
    )
    device: str = arg("cpu", "torch device of the prior (cpu, cuda, ...)", check=check_device)
    threads: int | None = arg(
        None,
        "CPU cores planning may use: the rollout pool's threads; torch decodes on one "
        "(default: every core this process may use)",
        minimum=1,
    )
    no_render: bool = arg(False, "skip the PNG and GIF")
    runs_dir: str = arg(str(REPO_ROOT / "runs"), "where run folders are created")


def run(args: RunArgs) -> dict:
    """Run the episodes and write the run folder; return the results dict."""
    use_planning_threads(args.threads)
    render = not args.no_render
    setup = PlanningSetup.from_fields(args, task=args.env, record=render)
    spec = setup.spec
    env = make_env(spec.name, render_mode="rgb_array" if render else None)
    planning = setup.resolve(env)
    policy = planning.policy()
    objective, budget = planning.objective, planning.budget
    folder = run_folder(Path(args.runs_dir), [spec.name, args.planner, f"s{args.seed}"], args)
    recorder = EpisodeRecorder(env, objective) if render else None
    max_steps = spec.max_steps if args.max_steps is None else args.max_steps
    count = spec.episodes if args.episodes is None else args.episodes
    seeds = list(range(args.seed, args.seed + count))
    episodes = run_episodes(env, policy, seeds, max_steps, recorder, f"{spec.name} {args.planner}")
    env.close()
    summary = summarise(spec.name, episodes, budget)
    results = {
        "env": spec.name,
        "planner": args.planner,
        "setup": asdict(setup),
        **planned_with(setup),
        "summary": summary,
        "episodes": episodes,
    }
    write_json(folder / "results.json", results)
    if args.out:
        write_json(Path(args.out), results)
    if render:
        plot_episodes(env, episodes, folder / "trajectories.png", budget and budget.horizon)
        recorder.save_gif(folder / "episode.gif")
    print_summary(spec.name, summary)
    print(f"run folder: {folder}")
    return results


if __name__ == "__main__":
    run_main(run, RunArgs, __doc__)
