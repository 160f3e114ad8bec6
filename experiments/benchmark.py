"""Benchmarks that print tables: `python experiments/benchmark.py {decode,rollout} [--out PATH]`.

Each subcommand measures one thing side by side in a single run on the current machine and
prints a table with the machine facts (torch version, thread count); ``--out`` also writes the
rows as JSON.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path

import mujoco
import numpy as np
import torch

from envs.mujoco_tasks import TASKS, make_task
from experiments.harness.cli import (
    UsageError,
    at_least,
    benchmark_parser,
    device_type,
    run_benchmark,
)
from planner.denoiser import DenoiserConfig
from planner.normalizer import Normalizer
from planner.prior import DiffusionPrior


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
    c_source = r"""
    #include <pthread.h>
    #include <time.h>
    #include <mujoco/mujoco.h>
    typedef struct { const mjModel* m; mjData* d; const mjtNum *state, *ctrl;
                     int n, nstep, first, stride; } job_t;
    static void* run(void* arg) {
      job_t* j = (job_t*)arg;
      for (int i = j->first; i < j->n; i += j->stride) {
        mj_setState(j->m, j->d, j->state, mjSTATE_INTEGRATION);
        for (int t = 0; t < j->nstep; t++) {
          mju_copy(j->d->ctrl, j->ctrl + ((size_t)i * j->nstep + t) * j->m->nu, j->m->nu);
          mj_step(j->m, j->d);
        }
      }
      return NULL;
    }
    /* n rollouts of nstep substeps from one state on nthread (<= 64) threads */
    void raw_rollouts(const mjModel* m, const mjtNum* state, const mjtNum* ctrl, int n,
                      int nstep, int nthread) {
      job_t jobs[64]; pthread_t threads[64];
      for (int k = 0; k < nthread; k++)
        jobs[k] = (job_t){m, mj_makeData(m), state, ctrl, n, nstep, k, nthread};
      for (int k = 1; k < nthread; k++) pthread_create(&threads[k], NULL, run, &jobs[k]);
      run(&jobs[0]);
      for (int k = 1; k < nthread; k++) pthread_join(threads[k], NULL);
      for (int k = 0; k < nthread; k++) mj_deleteData(jobs[k].d);
    }
    """
    if max(args.threads) > 64:
        raise UsageError(f"--threads are at most 64 for the C baseline, got {args.threads}")
    mujoco_dir = Path(mujoco.__file__).parent
    library = next(mujoco_dir.glob("libmujoco.so*"), None)
    if library is None or not (mujoco_dir / "include" / "mujoco" / "mujoco.h").is_file():
        raise RuntimeError(
            f"the raw baseline needs the MuJoCo wheel's library and headers in {mujoco_dir}"
        )
    build = Path(tempfile.mkdtemp(prefix="raw_mj_step_"))
    (build / "raw.c").write_text(c_source)
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", f"-I{mujoco_dir / 'include'}", str(build / "raw.c"),
         "-o", str(build / "raw.so"), f"-L{mujoco_dir}", f"-l:{library.name}",
         f"-Wl,-rpath,{mujoco_dir}", "-lpthread"],
        check=True,
    )  # fmt: skip
    raw_rollouts = ctypes.CDLL(str(build / "raw.so")).raw_rollouts
    raw_rollouts.restype = None

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
        c_args = [ctypes.c_void_p(task.model._address)]
        c_args += [array.ctypes.data_as(ctypes.c_void_p) for array in (state, control)]
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
    run_benchmark(parser, {"decode": bench_decode, "rollout": bench_rollout})


if __name__ == "__main__":
    main()
