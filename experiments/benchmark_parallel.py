"""Where Ray pays: `python experiments/benchmark_parallel.py {evaluator,islands} [--out PATH]`.

``evaluator``: the cost of scoring N candidates through :class:`planner.parallel.RayEvaluator`
(1 and 2 actors on a private local cluster) against the objective called in this process, for
the MuJoCo half-cheetah reward (H = 16; N = 64, 256, 1024) and for a synthetic reward that
busy-waits a set time per candidate, to find the reward cost at which the actors break even.
Each figure is the best of ``--repeats`` calls after one warm-up call, the one least disturbed
by other processes; the three ways take turns call by call.

``islands``: K Diffusion Elites islands with ring migration against one population, at equal
reward evaluations, on a reward with two optima over paths decoded by the shipped unicycle path
prior (``checkpoints/unicycle-state.pt``, (64, 2) x-y paths): a wide basin around the end point
(0.45, -0.08), peak 0.8, and a narrow one around (0.45, 0.08), peak 1. A search succeeds when
its best reward exceeds 0.8, the peak of the worse optimum; success rates over ``--seeds`` seeds
with 95% Wilson intervals. Both run in this process (islands on Ray actors give the same
results for the same seeds, tests/planner/test_parallel.py).

Both print markdown tables with the machine and the command.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from envs.mujoco_tasks import make_task
from experiments.harness.cli import (
    REPO_ROOT,
    at_least,
    benchmark_parser,
    command_line,
    run_benchmark,
)
from experiments.harness.report import machine
from experiments.harness.statistics import proportion_interval
from planner.elites import DiffusionElites, ElitesConfig
from planner.islands import IslandConfig, search_islands
from planner.parallel import RayEvaluator, connect_ray
from planner.prior import DiffusionPrior

PATH_PRIOR = REPO_ROOT / "checkpoints" / "unicycle-state.pt"
BETTER_END, WORSE_END = (0.45, 0.08), (0.45, -0.08)
"""End points of the two optima of the islands' reward (the prior ends paths near (0.45, 0))."""
WORSE_PEAK = 0.8


class BusyObjective:
    """A synthetic reward that busy-waits ``seconds`` per candidate; rewards ``(N,)`` = 0."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, state: Any, actions: np.ndarray) -> np.ndarray:
        """Zeros ``(N,)`` for ``actions (N, H, A)``, after ``N * seconds`` of busy CPU."""
        deadline = time.perf_counter() + self.seconds * len(actions)
        while time.perf_counter() < deadline:
            pass
        return np.zeros(len(actions))


def cheetah_objective() -> Any:
    """The half-cheetah planning reward on one thread (what each actor builds once)."""
    return make_task("half-cheetah").objective(threads=1)


def best_ms(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Milliseconds of the fastest of ``repeats`` calls of each, after one warm-up call each;
    the calls take turns, so a change in the load of the machine disturbs them alike."""
    for call in calls.values():
        call()
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: 1e3 * seconds for name, seconds in best.items()}


def bench_evaluator(args: argparse.Namespace) -> list[dict]:
    """In-process objective vs RayEvaluator with 1 and 2 actors (module docstring)."""
    task = make_task("half-cheetah")
    task.env.reset(seed=0)
    state = task.snapshot()
    rng = np.random.default_rng(0)
    cheetah = [
        ("half-cheetah H=16", n, rng.uniform(-1, 1, (n, 16, task.action_dim)))
        for n in args.populations
    ]
    busy = [
        (functools.partial(BusyObjective, cost * 1e-6), f"busy {cost:g} us/candidate")
        for cost in args.busy_costs
    ]
    groups = [(cheetah_objective, cheetah)]
    groups += [(make, [(name, args.busy_population, np.zeros((args.busy_population, 1, 1)))])
               for make, name in busy]  # fmt: skip
    # 3 CPUs for the 1-actor and the 2-actor evaluator side by side, so that their calls can
    # take turns with the in-process ones; only one evaluator computes at any time
    ray, opened = connect_ray(num_cpus=3)
    times = {}
    for make, problems in groups:
        objective, one, two = make(), RayEvaluator(make, 1), RayEvaluator(make, 2)
        for name, n, actions in problems:
            calls = {"in_ms": objective, "ray_1_ms": one, "ray_2_ms": two}
            times[name, n] = best_ms(
                {key: functools.partial(call, state, actions) for key, call in calls.items()},
                args.repeats,
            )
            print(name, n, times[name, n], flush=True)
        one.close()
        two.close()
    if opened:
        ray.shutdown()
    rows = [{"reward": name, "n": n, **row} for (name, n), row in times.items()]
    lines = [
        "| reward | N | in-process ms | 1 actor ms (overhead) | 2 actors ms | 2 actors speed-up |",
        "| --- " * 6 + "|",
    ]
    for row in rows:
        inside, one, two = row["in_ms"], row["ray_1_ms"], row["ray_2_ms"]
        lines.append(
            f"| {row['reward']} | {row['n']} | {inside:.2f} | {one:.2f} ({one - inside:+.2f}) "
            f"| {two:.2f} | {inside / two:.2f}x |"
        )
    print_markdown(lines, f"best of {args.repeats} calls; actors on the 2 cores of this machine")
    return rows


def path_problem(steps: int) -> tuple[Callable, Callable]:
    """``(decode, reward)`` of the islands' benchmark (module docstring); rewards ``(M,)``."""
    torch.set_num_threads(1)
    prior = DiffusionPrior.load(PATH_PRIOR)
    better, worse = torch.tensor(BETTER_END), torch.tensor(WORSE_END)

    def decode(latents: torch.Tensor) -> torch.Tensor:
        return prior.decode(latents, steps)

    def reward(paths: torch.Tensor) -> np.ndarray:
        end = paths[:, -1]
        narrow = 1.0 - ((end - better) ** 2).sum(1) / 0.03**2
        wide = WORSE_PEAK - ((end - worse) ** 2).sum(1) / 0.12**2
        return torch.maximum(narrow, wide).double().numpy()

    return decode, reward


def bench_islands(args: argparse.Namespace) -> list[dict]:
    """Success rates of one population and of islands at equal evaluations (module docstring)."""
    make_problem = functools.partial(path_problem, args.steps)
    decode, reward = make_problem()
    shape = DiffusionPrior.load(PATH_PRIOR).latent_shape
    total, k = args.population, args.islands
    config = ElitesConfig(population=total, elite_fraction=args.elite_fraction)
    island_config = ElitesConfig(population=total // k, elite_fraction=args.elite_fraction)
    searches = {
        f"one population N={total}": lambda seed: DiffusionElites(shape, config, seed).optimize(
            decode, reward, args.iterations
        ).reward,
        f"{k} islands N={total // k}, migration every {args.interval}": lambda seed: (
            search_islands(make_problem, shape, args.iterations, island_config,
                           IslandConfig(k, args.interval, args.migrants), seed).reward
        ),
        f"{k} islands N={total // k}, no migration": lambda seed: (
            search_islands(make_problem, shape, args.iterations, island_config,
                           IslandConfig(k, args.iterations, args.migrants), seed).reward
        ),
    }  # fmt: skip
    rows = []
    for name, search in searches.items():
        best = np.array([search(seed) for seed in range(args.seeds)])
        rate = proportion_interval(best > WORSE_PEAK)
        rows.append({"search": name, "success": rate.mean, "low": rate.low, "high": rate.high,
                     "best_rewards": best.tolist()})  # fmt: skip
        print(f"{name}: {rate}", flush=True)
    evaluations = total * args.iterations
    lines = [
        "| search | reward evaluations | success rate [95% Wilson] | seeds |",
        "| --- " * 4 + "|",
    ]
    lines += [
        f"| {row['search']} | {evaluations} | {row['success']:.2f} [{row['low']:.2f}, "
        f"{row['high']:.2f}] | {args.seeds} |"
        for row in rows
    ]
    print_markdown(lines, f"T={args.iterations} iterations, {args.steps} DDIM steps")
    return rows


def print_markdown(lines: list[str], note: str) -> None:
    """Print a table with the machine, the command and ``note`` under it."""
    print("\n".join(lines))
    print(f"\n{note}; machine: {machine()}; command: `{command_line()}`")


def main() -> None:
    """Parse the subcommand and its flags, run the benchmark, write the rows."""
    parser, add = benchmark_parser(__doc__)
    evaluator = add("evaluator", "RayEvaluator vs in-process")
    evaluator.add_argument(
        "--populations", type=at_least(1), nargs="+", default=[64, 256, 1024], help="N values"
    )
    evaluator.add_argument(
        "--busy-costs", type=at_least(0.0, float), nargs="+", default=[0, 10, 30, 100, 300],
        help="synthetic reward's microseconds per candidate",
    )  # fmt: skip
    evaluator.add_argument("--busy-population", type=at_least(1), default=256, help="its N")
    evaluator.add_argument("--repeats", type=at_least(1), default=10, help="timed calls per row")
    islands = add("islands", "islands vs one population")
    islands.add_argument("--seeds", type=at_least(1), default=20, help="searches per method")
    islands.add_argument("--population", type=at_least(2), default=64, help="N in all")
    islands.add_argument("--islands", type=at_least(1), default=4, help="K")
    islands.add_argument("--interval", type=at_least(1), default=2, help="M")
    islands.add_argument("--migrants", type=at_least(1), default=1, help="per migration")
    islands.add_argument("--iterations", type=at_least(1), default=8, help="T")
    islands.add_argument("--elite-fraction", type=float, default=0.25, help="rho, everywhere")
    islands.add_argument("--steps", type=at_least(1), default=3, help="DDIM steps per decode")
    run_benchmark(parser, {"evaluator": bench_evaluator, "islands": bench_islands})


if __name__ == "__main__":
    main()
