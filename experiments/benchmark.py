"""Benchmarks that print tables: `python experiments/benchmark.py {control,decode,rollout}`.

Each subcommand measures one thing side by side in a single run on the current machine and
prints a table with the machine facts (torch version, thread count); ``--out`` also writes the
rows as JSON (``control`` also a markdown table beside it).

    python experiments/benchmark.py control --out results/speed/control.json
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import subprocess
import sys
import time
from functools import partial

import mujoco
import numpy as np
import torch
from tqdm import tqdm

from envs.mujoco_tasks import TASKS, make_task
from envs.registry import task_names
from experiments.harness.cli import (
    UsageError,
    at_least,
    benchmark_parser,
    command_line,
    device_type,
    print_table,
    run_benchmark,
)
from experiments.harness.control_speed import THREAD_CONFIGS, markdown_table, measure_control
from experiments.harness.raw_physics import compile_raw_rollouts, raw_arguments
from planner.denoiser import DenoiserConfig
from planner.normalizer import Normalizer
from planner.prior import DiffusionPrior
from planner.threads import available_cores
from policies.planners import PLANNERS


def machine_facts() -> dict:
    """What a reader needs to compare two benchmark tables."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }


def bench_decode(args: argparse.Namespace) -> list[dict]:
    """DDIM decode latency and throughput of a freshly initialised prior, per N and S.

    The denoiser is ``DenoiserConfig(kind, horizon, channels)`` at its default sizes (the
    unicycle action prior's shape by default); weights do not change the cost, so no training
    is needed. Each figure is the best of ``--repeats`` timed ``prior.decode(z (N, H, C), S)``
    calls after one warm-up call, the one least disturbed by other processes.
    """
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = DenoiserConfig(kind=args.kind, horizon=args.horizon, channels=args.channels)
    bounds = torch.ones(args.channels)
    normalizer = Normalizer(torch.zeros_like(bounds), bounds, -bounds, bounds)  # actions in [-1, 1]
    torch.manual_seed(0)
    prior = DiffusionPrior(config, normalizer, device=args.device)
    params = sum(p.numel() for p in prior.model.parameters())
    sync = torch.cuda.synchronize if prior.device.type == "cuda" else lambda: None

    print(" ".join(f"{key}={value}" for key, value in machine_facts().items()))
    print(
        f"kind={args.kind} H={args.horizon} C={args.channels} params={params:,} "
        f"device={prior.device} best of {args.repeats} calls"
    )
    print(f"{'N':>6}{'S':>4}{'ms_per_decode':>15}{'trajectories_per_s':>20}")
    rows = []
    for n in (64, 256, 1024):
        latents = torch.randn(n, *prior.latent_shape, generator=torch.Generator().manual_seed(n))
        latents = latents.to(prior.device)
        for steps in (1, 2, 5, 10):
            prior.decode(latents, steps)
            best = float("inf")
            for _ in range(args.repeats):
                sync()
                start = time.perf_counter()
                prior.decode(latents, steps)
                sync()
                best = min(best, time.perf_counter() - start)
            row = {
                "kind": args.kind,
                "n": n,
                "steps": steps,
                "ms_per_decode": 1e3 * best,
                "trajectories_per_s": n / best,
                "params": params,
            }
            rows.append(row)
            print(
                f"{n:>6}{steps:>4}{row['ms_per_decode']:>15.2f}{row['trajectories_per_s']:>20,.0f}"
            )
    return rows


def bench_rollout(args: argparse.Namespace) -> list[dict]:
    """Batched MuJoCo reward throughput vs raw ``mj_step`` in C, per task and thread count.

    Ours: wall time of ``MujocoObjective(state, actions (N, H, A))``: action scaling, the batched
    rollout on its persistent pool, recording what the reward reads, and the reward itself.
    Physics steps counted: N * H * frame_skip per call.

    Raw: a C loop of ``mj_step`` compiled here with gcc against the MuJoCo wheel's own shared
    library and headers, run on the same ``MjModel`` (by address), the same thread count (the
    caller plus pthreads, one ``mjData`` each), start state and per-substep controls: per
    candidate ``mj_setState``, then ``mj_step`` per substep, recording and scoring nothing. That
    is the floor any batched reward pays; ``mujoco.rollout`` is itself a wrapper of such a loop
    (a C++ pool copying states out every step), so it is not the baseline.

    Both run interleaved in rounds, each repeating calls for at least ``--min-time`` seconds;
    each figure is its best round, the one least disturbed by other processes. ``ratio`` is raw
    over ours in wall time (the target: >= 0.9); ``cpu_ratio`` the same in CPU seconds of all
    the process's threads, the work overhead alone, which other processes on a shared machine
    disturb far less than wall time.
    """
    if max(args.threads) > 64:
        raise UsageError(f"--threads are at most 64 for the C baseline, got {args.threads}")
    raw_rollouts = compile_raw_rollouts()

    def best_seconds_per_call(calls: dict) -> dict:
        best = {(key, clock): float("inf") for key in calls for clock in ("wall", "cpu")}
        for _ in range(args.rounds):
            for key, call in calls.items():
                count, wall, cpu = 0, time.perf_counter(), time.process_time()
                while (elapsed := time.perf_counter() - wall) < args.min_time or count == 0:
                    call()
                    count += 1
                best[key, "wall"] = min(best[key, "wall"], elapsed / count)
                best[key, "cpu"] = min(best[key, "cpu"], (time.process_time() - cpu) / count)
        return best

    facts = {**machine_facts(), "mujoco": mujoco.__version__, "cpu_count": os.cpu_count()}
    print(" ".join(f"{key}={value}" for key, value in facts.items()))
    print(f"N={args.population} candidates, best of {args.rounds} rounds of >= {args.min_time}s")
    print(
        f"{'env':<22}{'threads':>8}{'H':>4}{'steps/s':>14}{'raw steps/s':>14}{'ratio':>8}"
        f"{'cpu ratio':>11}"
    )
    rows = []
    for name in args.tasks:
        task = make_task(name)
        task.env.reset(seed=args.seed)
        state = task.snapshot()
        horizon = args.horizon or task.default_horizon
        rng = np.random.default_rng(args.seed)
        actions = rng.uniform(-1, 1, (args.population, horizon, task.action_dim))
        control = np.repeat(task.scale_actions(actions), task.frame_skip, axis=1)
        nstep = horizon * task.frame_skip
        c_args = raw_arguments(task.model, state, control)
        for threads in args.threads:
            objective = task.objective(threads=threads)
            seconds = best_seconds_per_call(
                {
                    "ours": partial(objective, state, actions),
                    "raw": partial(raw_rollouts, *c_args, args.population, nstep, threads),
                }
            )
            objective.close()
            steps = args.population * nstep
            row = {
                "env": task.env_id,
                "threads": threads,
                "horizon": horizon,
                "population": args.population,
                "physics_steps_per_s": steps / seconds["ours", "wall"],
                "raw_physics_steps_per_s": steps / seconds["raw", "wall"],
                "ratio": seconds["raw", "wall"] / seconds["ours", "wall"],
                "cpu_ratio": seconds["raw", "cpu"] / seconds["ours", "cpu"],
            }
            rows.append(row)
            print(
                f"{row['env']:<22}{threads:>8}{horizon:>4}{row['physics_steps_per_s']:>14,.0f}"
                f"{row['raw_physics_steps_per_s']:>14,.0f}{row['ratio']:>8.3f}"
                f"{row['cpu_ratio']:>11.3f}"
            )
    return rows


def bench_control(args: argparse.Namespace) -> list[dict]:
    """Control-step time per task and thread configuration, against the physics floor.

    See :mod:`experiments.harness.control_speed`. ``--beside-busy-process`` runs one busy
    process (a Python loop) on the machine for the whole measurement, as a user's other work.
    """
    cores = available_cores()
    facts = {**machine_facts(), "mujoco": mujoco.__version__, "cores": cores}
    del facts["torch_threads"]  # each row says its own
    load = "busy" if args.beside_busy_process else "quiet"
    print(" ".join(f"{key}={value}" for key, value in facts.items()) + f" load={load}")
    busy = (
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        if args.beside_busy_process
        else None
    )
    rows = []
    try:
        for task in tqdm(args.tasks, desc="tasks"):
            for planner, reward in itertools.product(args.planners, args.rewards):
                rows += [
                    {**row, "load": load, **facts}
                    for row in measure_control(
                        task,
                        planner,
                        args.configs,
                        cores,
                        args.steps,
                        args.rounds,
                        args.seed,
                        reward,
                    )
                ]
    finally:
        if busy is not None:
            busy.kill()
    columns = ["task", "planner", "reward", "propagation", "config"]
    columns += ["decode_ms", "reward_ms", "other_ms", "step_ms"]
    columns += ["physics_ms", "step_over_physics", "control_hz", "realtime_hz"]
    print_table(rows, columns)
    if args.out is not None:
        machine = f"{facts['processor']}, {cores} cores, torch {facts['torch']}, load {load}"
        report = markdown_table(rows, machine, command_line())
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(report)
        print(f"wrote {args.out.with_suffix('.md')}")
    return rows


def main() -> None:
    """Parse the subcommand and its flags, run the benchmark, write the rows."""
    parser, add = benchmark_parser(__doc__)
    decode = add("decode", "DDIM decode throughput and latency of the default prior")
    decode.add_argument("--kind", choices=["unet", "mlp"], default="unet", help="denoiser kind")
    decode.add_argument("--horizon", type=at_least(1), default=16, help="H, trajectory length")
    decode.add_argument("--channels", type=at_least(1), default=2, help="C, values per step")
    decode.add_argument("--repeats", type=at_least(1), default=5, help="timed calls per N and S")
    decode.add_argument("--device", type=device_type, default="cpu", help="torch device")
    decode.add_argument("--threads", type=at_least(1), default=None, help="torch CPU threads")
    rollout = add("rollout", "batched MuJoCo rollout reward throughput vs raw mj_step")
    rollout.add_argument(
        "--tasks",
        nargs="+",
        default=["inverted-pendulum", "reacher", "half-cheetah", "hopper"],
        choices=sorted(TASKS),
        help="task short names (envs.mujoco_tasks.TASKS)",
    )
    rollout.add_argument(
        "--threads", type=at_least(1), nargs="+", default=[1, 2], help="pool sizes"
    )
    rollout.add_argument(
        "--population", type=at_least(1), default=256, help="candidates N per call"
    )
    rollout.add_argument("--horizon", type=at_least(1), default=None, help="H (default: per task)")
    rollout.add_argument(
        "--rounds", type=at_least(1), default=5, help="interleaved rounds; best is kept"
    )
    rollout.add_argument(
        "--min-time", type=at_least(0.0, float), default=0.4, help="seconds per round and kind"
    )
    rollout.add_argument("--seed", type=int, default=0, help="start state and actions")
    control = add("control", "control-step time split, thread configurations, physics floor")
    control.add_argument(
        "--tasks",
        nargs="+",
        default=["unicycle-goal", "unicycle-obstacles", "reacher", "half-cheetah", "hopper"],
        choices=task_names(),
        help="task short names",
    )
    control.add_argument("--planners", nargs="+", default=["de"], choices=PLANNERS, help="planners")
    control.add_argument(
        "--rewards",
        nargs="+",
        default=["simulator"],
        choices=["simulator", "world-model"],
        help="what scores the candidates: the simulator, the task's shipped world model, or both",
    )
    control.add_argument(
        "--configs",
        nargs="+",
        default=list(THREAD_CONFIGS),
        choices=list(THREAD_CONFIGS),
        help="thread configurations: "
        + "; ".join(f"{name}: {text}" for name, text in THREAD_CONFIGS.items()),
    )
    control.add_argument("--steps", type=at_least(1), default=40, help="control steps an episode")
    control.add_argument(
        "--rounds", type=at_least(1), default=3, help="interleaved rounds; the median is kept"
    )
    control.add_argument("--seed", type=int, default=0, help="episode seed")
    control.add_argument(
        "--beside-busy-process", action="store_true", help="measure beside one busy process"
    )
    run_benchmark(
        parser, {"control": bench_control, "decode": bench_decode, "rollout": bench_rollout}
    )


if __name__ == "__main__":
    main()
