"""The planner teaches its own prior: expert iteration on the true simulator.

    python experiments/improve_prior.py --env half-cheetah --rounds 3
    python experiments/improve_prior.py --env hopper --rounds 2 --first-teacher cem
    python experiments/improve_prior.py --env reacher --start shipped --out runs/reacher-from-sac
    python experiments/improve_prior.py --env half-cheetah --ray-address auto  # on a Ray cluster

Round 0 is the starting prior: by default one trained on smooth random actions, so no RL agent
or dataset is needed (``--start shipped`` starts from the task's shipped prior, ``--start PATH``
from any prior of the task). Each round r >= 1 then

1. runs a teacher for ``--episodes`` seeded episodes in the simulator: Diffusion Elites over
   round r-1's prior at the teacher budget (``--teacher-budget``, larger than the default);
   round 1 may instead be taught by action-space CEM at that budget (``--first-teacher cem``);
2. records every step's executed action and chosen plan (with its predicted return);
3. keeps the best ``--keep`` fraction of the round's episodes by return (filtered imitation);
4. trains a new prior on everything kept so far (every window of H executed actions, and every
   plan);
5. evaluates it: DE at the default budget (``--eval-budget``) on held-out seeds, next to
   action-space CEM at the same budget on the same seeds (CEM is run once).

Writes into ``--out`` (default ``runs/improve-<env>``): ``round-<r>/`` with the prior
(``prior.pt``, its record ``prior.json``, ``prior.loss.png``), the teacher's episodes
(``teacher/seed-<s>.npz``) and the evaluation's ``eval.csv``; ``cem-eval.csv``; ``rounds.json``
(round-by-round results) and ``rounds.png`` (return against round, CEM's level as a line). Every
file is written when its piece of work ends, so a stopped run, started again with the same
flags, continues where it stopped and repeats nothing; ``--rounds`` may grow between runs. A
folder of a run with other flags, or of files of no run, is refused (its files would pass for
finished work).
Episodes (the teacher's and the evaluations') run ``--workers`` at a time in local processes, or
as Ray tasks with ``--ray-address`` (experiments/harness/distributed.py); each is seeded by its
own seed, so the results do not depend on where it ran.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from envs.datasets import smooth_random_actions
from envs.mujoco_rewards import COSTS_SYNTAX, CostTerm, format_costs, parse_costs
from envs.registry import get_task, make_env, task_names
from experiments.harness.cli import (
    REPO_ROOT,
    ScriptArgs,
    UsageError,
    arg,
    check_device,
    command_line,
    parse_budget,
    print_table,
    run_main,
    write_json,
)
from experiments.harness.distributed import map_unordered, ray_address_arg, ray_session
from experiments.harness.grid import EpisodeLog, GridSettings, Row, run_grid
from experiments.harness.imitation import (
    TeacherJob,
    imitation_set,
    keep_best,
    load_episode,
    save_episode,
    teacher_episode,
)
from experiments.harness.outputs import claim_run_folder
from experiments.harness.plots import plot_losses
from experiments.harness.statistics import interval_record
from planner.denoiser import DenoiserConfig
from planner.knots import INTERPOLATIONS, KnotSchedule
from planner.training import TrainingConfig, train_prior
from policies.setup import PlanningSetup, SetupError, read_prior

TEACHER_SEED = 10_000
"""Teacher episodes of round r use seeds TEACHER_SEED + 1000 r + i: never an evaluation seed."""
RUN_FLAGS = ("device", "threads", "rounds", "out", "workers", "ray_address")
"""Flags a resumed run may change; every other flag must match the folder's config.json."""


@dataclass
class ImproveArgs(ScriptArgs):
    """Arguments of improve_prior.py."""

    env: str = arg("half-cheetah", "task", tuple(task_names()))
    rounds: int = arg(3, "teaching rounds after round 0 (the starting prior)", minimum=1)
    start: str = arg(
        "random", "round 0's prior: random (smooth random actions), shipped, or a path"
    )
    first_teacher: str = arg("de", "who teaches round 1 (later rounds: always de)", ("de", "cem"))
    teacher_budget: str = arg("128x4", "teacher's N x T per control step")
    episodes: int = arg(8, "teacher episodes per round", minimum=1)
    keep: float = arg(0.5, "fraction of each round's teacher episodes kept, best by return")
    max_steps: int = arg(200, "steps per teacher and evaluation episode", minimum=1)
    eval_budget: str = arg("64x3", "N x T of the evaluation (DE and CEM)")
    eval_episodes: int = arg(5, "held-out evaluation episodes per round", minimum=1)
    eval_seed: int = arg(500, "first held-out evaluation seed")
    horizon: int | None = arg(
        None, "H env steps of a random start prior (default: the task's)", minimum=1
    )
    horizon_seconds: float | None = arg(None, "H of a random start prior in seconds instead")
    knots: int | None = arg(
        None, "K knots of a random start prior (default: one per step)", minimum=1
    )
    interpolation: str | None = arg(
        None,
        "how a random start prior's K knots become H actions (default: hold)",
        INTERPOLATIONS,
    )
    costs: str | None = arg(
        None,
        f"planning cost terms of teachers and evaluations (default: the task's; none: no "
        f"terms): {COSTS_SYNTAX}",
        check=parse_costs,
    )
    speed_targets: str | None = arg(
        None,
        "a curriculum: round r's teacher tracks the r-th target x speed in m/s (the last one "
        "thereafter) instead of maximising the forward reward: the costs plus "
        "speed=SPEED_WEIGHT@TARGET,forward=1 (e.g. 0,0.5,1,1.5: stand first, then go faster); "
        "evaluations keep --costs",
        check=lambda text: _speed_targets(text),
    )
    speed_weight: float = arg(10.0, "weight of the curriculum's speed term", minimum=0)
    random_samples: int = arg(20000, "smooth random action chunks of a random start", minimum=2)
    train_steps: int = arg(6000, "optimizer steps per prior", minimum=1)
    denoiser: str = arg("mlp", "denoiser network of the trained priors", ("mlp", "unet"))
    seed: int = arg(0, "seed of training (round r trains with seed + r)")
    device: str = arg(
        "cpu", "torch device for training and the teacher's decoding", check=check_device
    )
    threads: int | None = arg(1, "torch CPU threads (None: torch's choice)", minimum=1)
    workers: int = arg(1, "episodes run at once in local processes (or Ray CPUs)", minimum=1)
    ray_address: str | None = ray_address_arg()
    out: str | None = arg(
        None, "run folder; the same folder again resumes (default: runs/improve-<env>)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.keep <= 1:
            raise ValueError(f"--keep must be in (0, 1], got {self.keep}")
        for name in ("teacher_budget", "eval_budget"):
            parse_budget(getattr(self, name), "--" + name.replace("_", "-"))

    def teacher_costs(self, index: int) -> tuple[CostTerm, ...] | None:
        """Round ``index``'s teacher costs: ``--costs``, with the curriculum's speed target."""
        if self.speed_targets is None:
            return None if self.costs is None else parse_costs(self.costs)
        targets = _speed_targets(self.speed_targets)
        target = targets[min(index, len(targets)) - 1]
        base = get_task(self.env).costs if self.costs is None else parse_costs(self.costs)
        kept = tuple(term for term in base if term.name not in ("speed", "forward"))
        return (*kept, CostTerm("speed", self.speed_weight, target), CostTerm("forward", 1.0))

    def planning(self, **fields: Any) -> PlanningSetup:
        """The run's horizon, knots, interpolation and costs as a setup of its task."""
        return PlanningSetup.from_fields(self, **{"task": self.env, "planner": "cem", **fields})


def _speed_targets(text: str) -> tuple[float, ...]:
    """``"0,0.5,1"`` -> the curriculum's target speeds, or ValueError."""
    try:
        targets = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--speed-targets: {text!r} must be numbers separated by commas") from None
    return targets


class Run:
    """The run folder of one improvement run: paths, config check, and the records."""

    def __init__(self, args: ImproveArgs) -> None:
        self.args = args
        self.spec = get_task(args.env)
        default = REPO_ROOT / "runs" / f"improve-{self.spec.name}"
        self.folder = Path(args.out) if args.out else default
        claim_run_folder(self.folder, {k: v for k, v in asdict(args).items() if k not in RUN_FLAGS})

    def round_dir(self, index: int) -> Path:
        return self.folder / f"round-{index:02d}"

    def prior_path(self, index: int) -> Path:
        return self.round_dir(index) / "prior.pt"


def start_prior(run: Run) -> Path:
    """Round 0's prior, made (random start) or copied into the folder once.

        A random start is trained on smooth random actions of H steps fitted to the run's K knots
        (``--horizon`` / ``--horizon-seconds``, ``--knots``, ``--interpolation``; else the task's H,
    a knot per step).
    """
    args, path = run.args, run.prior_path(0)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.start == "random":
        env = make_env(run.spec.name)
        budget = args.planning().budget(env)
        env.close()
        schedule = budget.schedule
        actions = smooth_random_actions(
            args.random_samples, schedule.horizon, budget.action_dim, seed=args.seed
        )
        data = schedule.fit(actions)
        source = {"source": "smooth random actions fitted to knots", "samples": len(data)}
        train(run, data, path, source, schedule)
        return path
    source = run.spec.prior_path if args.start == "shipped" else Path(args.start)
    if source is None or not source.is_file():
        raise UsageError(f"--start {args.start}: no prior file at {source}")
    prior = read_prior(source, run.spec.family)  # refuses a prior of another task
    env = make_env(run.spec.name)
    try:  # refuses a horizon, knots or interpolation other than the prior's
        args.planning(planner="de", prior=str(source)).budget(env, prior)
    except SetupError as exc:
        raise UsageError(f"--start {source}: {exc}") from None
    finally:
        env.close()
    # Its record too, where it has one, and first: the prior's file is what marks round 0 done.
    record = source.with_suffix(".json")
    if record.is_file():
        shutil.copyfile(record, path.with_suffix(".json"))
    shutil.copyfile(source, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return path


def chunks_trained_on(prior: Path) -> int | None:
    """How many chunks ``prior`` was trained on, read from its record; None for a started-from
    prior that came without one."""
    record = prior.with_suffix(".json")
    if not record.is_file():
        return None
    shape = json.loads(record.read_text()).get("dataset_shape")
    return None if shape is None else shape[0]


def train(
    run: Run,
    data: np.ndarray,
    path: Path,
    source: dict,
    schedule: KnotSchedule,
    seed_offset: int = 0,
) -> None:
    """Train a prior on plans ``data (M, K, A)`` of ``schedule``'s knots; write it, its loss plot
    and its record."""
    args = run.args
    denoiser = DenoiserConfig(kind=args.denoiser, horizon=data.shape[1], channels=data.shape[2])
    training = TrainingConfig(
        steps=args.train_steps,
        learning_rate=2e-3,
        seed=args.seed + seed_offset,
        device=args.device,
    )
    prior, history = train_prior(data, denoiser, training)
    prior.task = run.spec.family
    prior.knot_schedule = schedule
    prior.save(path)
    plot_losses(history, path.with_suffix(".loss.png"))
    record = {
        "command": command_line(),
        "arguments": {**asdict(args), "kind": "action"},
        "dataset_shape": list(data.shape),
        "data": source,
        "denoiser": asdict(denoiser),
        "training": asdict(training),
        "final_val_loss": history["val_loss"][-1],
        "task": run.spec.family,
        "knot_schedule": asdict(schedule),
    }
    write_json(path.with_suffix(".json"), record)


def teach(run: Run, index: int, schedule: KnotSchedule) -> list[dict[str, Any]]:
    """Round ``index``'s teacher episodes: those not yet saved are run (in parallel with
    ``--workers`` or on Ray) and each is saved as it ends; returns them all, in seed order.
    ``schedule``: the knots of the run's priors, which every teacher plans with."""
    args = run.args
    folder = run.round_dir(index) / "teacher"
    folder.mkdir(parents=True, exist_ok=True)
    planner = args.first_teacher if index == 1 else "de"
    prior_path = run.prior_path(index - 1)
    population, iterations = parse_budget(args.teacher_budget, "--teacher-budget")
    seeds = [TEACHER_SEED + 1000 * index + i for i in range(args.episodes)]
    paths = {seed: folder / f"seed-{seed}.npz" for seed in seeds}
    jobs = [
        TeacherJob(
            run.spec.name,
            planner,
            str(prior_path) if planner == "de" else None,
            population,
            iterations,
            schedule,
            seed,
            args.max_steps,
            args.device,
            args.teacher_costs(index),
        )
        for seed in seeds
        if not paths[seed].exists()
    ]
    description = f"round {index} teacher ({planner} {args.teacher_budget})"
    with tqdm(total=len(seeds), initial=len(seeds) - len(jobs), desc=description) as bar:
        for episode in map_unordered(teacher_episode, jobs, args.ray_address, args.workers):
            save_episode(paths[episode["seed"]], episode)
            bar.update()
            bar.set_postfix(ret=f"{episode['return']:.1f}")
    return [load_episode(paths[seed]) for seed in seeds]


def kept_episodes(run: Run, index: int) -> list[dict[str, Any]]:
    """The kept teacher episodes of rounds 1..index (each round filtered on its own)."""
    kept = []
    for earlier in range(1, index + 1):
        folder = run.round_dir(earlier) / "teacher"
        episodes = [load_episode(path) for path in sorted(folder.glob("seed-*.npz"))]
        kept += [episodes[i] for i in keep_best([e["return"] for e in episodes], run.args.keep)]
    return kept


def evaluate(
    run: Run, planner: str, log_path: Path, prior: Path | None, schedule: KnotSchedule
) -> np.ndarray:
    """Held-out returns of ``planner`` at the evaluation budget, planning with ``schedule``'s
    knots (episodes logged, resumable)."""
    args = run.args
    population, iterations = parse_budget(args.eval_budget, "--eval-budget")
    row = Row(run.spec.name, planner, population, iterations)
    seeds = range(args.eval_seed, args.eval_seed + args.eval_episodes)
    settings = GridSettings(
        max_steps=args.max_steps,
        prior=None if prior is None else str(prior),
        horizon=schedule.horizon,
        knots=schedule.knots,
        interpolation=schedule.interpolation,
        costs=None if args.costs is None else parse_costs(args.costs),
    )
    log = EpisodeLog(log_path)
    episodes = [(row, seed) for seed in seeds]
    records = run_grid(episodes, settings, log, args.workers, args.ray_address)
    return np.array([record["return"] for record in records])


def plot_rounds(records: list[dict], cem: dict, path: Path, env: str) -> None:
    """DE's held-out return against round, with its interval, the teachers' mean and CEM."""
    figure = Figure(figsize=(6, 4), dpi=90)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    rounds = [r["round"] for r in records]
    means = np.array([r["de"]["mean"] for r in records])
    errors = np.array(
        [[r["de"]["mean"] - r["de"]["low"], r["de"]["high"] - r["de"]["mean"]] for r in records]
    ).T
    ax.errorbar(rounds, means, yerr=errors, marker="o", capsize=3, label="DE (held-out seeds)")
    taught = [r for r in records if r["teacher"] is not None]
    ax.plot(
        [r["round"] for r in taught],
        [r["teacher"]["mean_return"] for r in taught],
        "s--",
        color="grey",
        label="teacher episodes",
    )
    ax.axhline(cem["mean"], color="C3", label="action-space CEM, same budget and seeds")
    ax.axhspan(cem["low"], cem["high"], color="C3", alpha=0.1)
    ax.set_xticks(rounds)
    ax.set_xlabel("round")
    ax.set_ylabel("episode return")
    ax.set_title(f"{env}: a prior taught by its own planner")
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def run_rounds(run: Run) -> list[dict]:
    """Round 0 and every teaching round not yet done; returns the round-by-round records."""
    args = run.args
    records = []
    # Every round plans with round 0's knots, and CEM is evaluated with them too.
    schedule = read_prior(start_prior(run), run.spec.family).knot_schedule
    cem = interval_record(evaluate(run, "cem", run.folder / "cem-eval.csv", None, schedule))
    for index in tqdm(range(args.rounds + 1), desc="rounds", unit="round"):
        teacher = None
        if index > 0:
            episodes = teach(run, index, schedule)  # runs the missing ones, loads the saved ones
            if not run.prior_path(index).exists():
                kept = kept_episodes(run, index)
                data = imitation_set(kept, schedule)
                source = {"kept_episodes": len(kept), "rounds": list(range(1, index + 1))}
                train(run, data, run.prior_path(index), source, schedule, seed_offset=index)
            returns = [e["return"] for e in episodes]
            costs = args.teacher_costs(index)
            teacher = {
                "planner": args.first_teacher if index == 1 else "de",
                "budget": args.teacher_budget,
                "mean_return": float(np.mean(returns)),
                "returns": returns,
                "steps": [e["steps"] for e in episodes],
                "kept": len(keep_best(returns, args.keep)),
                "costs": None if costs is None else format_costs(costs),
            }
        prior = run.prior_path(index)
        de = evaluate(run, "de", run.round_dir(index) / "eval.csv", prior, schedule)
        records.append(
            {
                "round": index,
                "teacher": teacher,
                "dataset": chunks_trained_on(prior),
                "de": interval_record(de),
                "de_returns": de.tolist(),
                "cem": cem,
                "prior": str(prior),
            }
        )
        write_json(run.folder / "rounds.json", {"command": command_line(), "rounds": records})
        plot_rounds(records, cem, run.folder / "rounds.png", run.spec.name)
    return records


def main(args: ImproveArgs) -> list[dict]:
    """Run the rounds not yet done; write and print the round-by-round results."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    run = Run(args)
    with ray_session(args.ray_address, args.workers):  # one Ray session for every round
        records = run_rounds(run)
    print_table(
        [
            {
                "round": r["round"],
                "teacher": "-" if r["teacher"] is None else r["teacher"]["planner"],
                "teacher return": None if r["teacher"] is None else r["teacher"]["mean_return"],
                "trained on": r["dataset"],
                f"DE {args.eval_budget}": r["de"]["text"],
                f"CEM {args.eval_budget}": r["cem"]["text"],
            }
            for r in records
        ],
        [
            "round",
            "teacher",
            "teacher return",
            "trained on",
            f"DE {args.eval_budget}",
            f"CEM {args.eval_budget}",
        ],
        {"teacher return": ".1f"},
    )
    print(f"wrote {run.folder}/rounds.json and rounds.png")
    return records


if __name__ == "__main__":
    run_main(main, ImproveArgs, __doc__)
