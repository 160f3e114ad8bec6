"""Data from the planner that will use the model: a world model improved by its own planner.

    python experiments/improve_world_model.py --env half-cheetah --rounds 3
    python experiments/improve_world_model.py --env hopper --episodes 8 --propagation tsinf
    python experiments/improve_world_model.py --env walker2d --planner cem
    python experiments/improve_world_model.py --env hopper --agent-episodes 30 --max-steps 1000
    python experiments/improve_world_model.py --env hopper --prior runs/hopper/prior.pt
    python experiments/improve_world_model.py --env half-cheetah --ray-address auto  # on Ray

Every episode plans with ``--planner`` at the task's budget (``--population``, ``--iterations``):
Diffusion Elites with the task's shipped prior (``--prior``: another), the best planner
available, or action-space CEM, which needs none (for a task that ships no prior). Round 0's
data are its episodes on the true simulator and ``--random-episodes`` episodes of smooth random
actions (as PETS starts: states a planner alone never visits; on half-cheetah neither kind
alone made a first model that plans forward, results/world-model-loop/), and, with
``--agent-episodes N``, N episodes of an SAC agent (``--agent``) on its mean action and N with
``--agent-noise``: a gait to learn from where the planner is slow on the simulator (hopper's
shipped model learned from one, results/world-model-value/). Every round r then

1. trains a world model (probabilistic ensemble, planner/world_model_training.py; its flags as
   train_world_model.py's) on every data episode of rounds 0..r, with seed ``--seed`` + r;
2. validates it: the planner with that model (``--propagation``, ``--particles``,
   ``--world-model-reward``) in the real env on the validation seeds (``--validation-seeds``,
   never a test seed 0-9), and scores the model's open-loop k-step error (k = 1, 5, 10, 16) on
   those very episodes: the planner's own states, which no model is ever trained on (the same
   error on the simulator planner's validation episodes, the states good plans visit, is recorded
   beside it). Errors are normalised per observation dimension by round 0's data, one scale for
   every round;
3. and round r + 1's data are the episodes of the planner with round r's model in the real env,
   on fresh data seeds (PETS' data aggregation).

Data episodes of round r use seeds DATA_SEED + 1000 r + i, which no evaluation uses. The planner
runs once on the simulator on the validation seeds too: the level a world model is measured
against; and so does action-space CEM at the same N x T (over the task's horizon, as every
baseline plans), the baseline (with ``--planner cem`` that is the same run, done once).

Writes into ``--out`` (default ``runs/improve-world-model-<env>``): ``simulator-validation/`` (the
planner's validation episodes on the simulator); ``cem-validation/`` (CEM's, unless the planner is
CEM); ``round-<r>/`` with ``data/seed-<s>.npz`` (that round's data episodes: transitions, return;
round 0's random ones in ``random/``, its agent's in ``agent/``), ``world-model.pt`` and its
record ``world-model.json`` (data, configs, losses), ``validation/seed-<s>.npz`` and
``kstep.json``; ``rounds.json`` (the round
table, the simulator lines' levels, the best round), ``rounds.png`` (validation return against
training transitions, the planner's and CEM's on the simulator as lines with their intervals) and
``best.pt``, a copy of the model of the round with the best mean validation return (the candidate
to ship: copy it to ``checkpoints/<env>-world-model.pt`` by hand; this script never writes there).
Every file is written when its piece of work ends, so a stopped run, started again with the same
flags, continues where it stopped and repeats nothing; ``--rounds`` may grow between runs, and a
folder written before a flag existed resumes as what its run did (``BEFORE_FLAGS``). A folder
of a run with other flags, or of files of no run, is refused (its files would pass for finished
work). Episodes run
``--workers`` at a time in local processes, or as Ray tasks with ``--ray-address``
(experiments/harness/distributed.py); each is seeded by its own seed, so the results do not depend
on where it ran."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter
from tqdm import tqdm

from envs.registry import get_task, make_env
from experiments.harness.cli import (
    REPO_ROOT,
    arg,
    check_device,
    command_line,
    print_table,
    run_main,
    write_json,
)
from experiments.harness.collection import (
    TRANSITION_FIELDS,
    AgentEpisode,
    PlannerEpisode,
    RandomEpisode,
    agent_episode,
    planner_episode,
    random_episode,
    transitions,
)
from experiments.harness.distributed import map_unordered, ray_address_arg, ray_session
from experiments.harness.imitation import load_episode, save_episode
from experiments.harness.outputs import claim_run_folder
from experiments.harness.statistics import interval_record
from experiments.harness.world_models import (
    WorldModelArgs,
    particles_arg,
    propagation_arg,
    world_model_reward_arg,
    world_model_task_arg,
)
from planner.threads import available_cores
from planner.world_model import WorldModel, k_step_errors
from planner.world_model_training import train_world_model
from policies.setup import PlanningSetup, agent_path, load_agent

DATA_SEED = 20_000
"""Data episodes of round r use seeds DATA_SEED + 1000 r + i: never an evaluation seed."""
RANDOM_SEED = 30_000
"""Round 0's random episodes use seeds RANDOM_SEED + i."""
AGENT_SEED, NOISY_AGENT_SEED = 40_000, 50_000
"""Round 0's agent episodes use seeds AGENT_SEED + i (its mean action) and NOISY_AGENT_SEED + i
(with ``--agent-noise``)."""
BEFORE_FLAGS = {"random_episodes": 0, "agent_episodes": 0, "agent": None, "agent_noise": 0.2}
"""What a run did before a flag existed: a folder whose config.json lacks it reads so."""
TEST_SEEDS = range(10)
"""The seeds results are reported on: never used to choose a model."""
KS = (1, 5, 10, 16)
"""Open-loop steps of the k-step error (16: the H of the shipped priors)."""
RUN_FLAGS = ("device", "threads", "rounds", "out", "workers", "ray_address")
"""Flags a resumed run may change; every other flag must match the folder's config.json."""
PLANNERS = ("de", "cem")
"""What plans every episode: Diffusion Elites over its prior, or action-space CEM (no prior)."""
BASELINE = "cem"
"""The planner drawn on the simulator beside the run's own: action-space CEM."""


def parse_seeds(text: str) -> list[int]:
    """``"1000-1009"`` or ``"1000,1004,1007"`` -> the seeds, or ValueError saying why not
    (malformed, repeated, a test seed of :data:`TEST_SEEDS`, or a data seed)."""
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError("write FIRST-LAST (1000-1009) or a comma list (1000,1003)") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError("give at least one seed, each >= 0 and once")
    if set(seeds) & set(TEST_SEEDS):
        raise ValueError("seeds 0-9 are the test seeds: choose a model on others (1000-1009)")
    if max(seeds) >= DATA_SEED:
        raise ValueError(f"seeds from {DATA_SEED} on are the data episodes'")
    return seeds


@dataclass
class ImproveArgs(WorldModelArgs):
    """Arguments of improve_world_model.py."""

    env: str = world_model_task_arg("half-cheetah")
    rounds: int = arg(
        3, "rounds after round 0 that plan with the last model and retrain", minimum=0
    )
    episodes: int = arg(5, "data episodes per round", minimum=1)
    random_episodes: int = arg(
        10,
        "round 0 also records this many episodes of smooth random actions (PETS starts from "
        "random data): states the planner alone never visits",
        minimum=0,
    )
    agent_episodes: int = arg(
        0,
        "round 0 also records this many episodes of an SAC agent on its mean action, and as many "
        "with --agent-noise: a gait to learn from where the planner is slow on the simulator",
        minimum=0,
    )
    agent: str | None = arg(
        None,
        "SAC agent zip of --agent-episodes (default: the task's value agent, else "
        "checkpoints/agents/<env>-sac.zip)",
    )
    agent_noise: float = arg(
        0.2, "std of the normal noise added to the agent's normalised actions", minimum=0.0
    )
    max_steps: int = arg(200, "steps per data and validation episode", minimum=1)
    validation_seeds: str = arg(
        "1000-1009", "seeds that choose the model: FIRST-LAST or a comma list", check=parse_seeds
    )
    planner: str = arg(
        "de",
        "planner of every episode, on the simulator and with each round's model (cem needs no "
        "prior)",
        PLANNERS,
    )
    population: int | None = arg(None, "planner's N per iteration (default: the task's)", minimum=1)
    iterations: int | None = arg(
        None, "planner's T per control step (default: the task's)", minimum=1
    )
    prior: str | None = arg(
        None, "DE's prior checkpoint (default: the task's shipped one; --planner de only)"
    )
    propagation: str | None = propagation_arg()
    particles: int | None = particles_arg()
    world_model_reward: str | None = world_model_reward_arg()
    seed: int = arg(0, "seed of training (round r trains with seed + r)")
    device: str = arg("cpu", "torch device of training and planning", check=check_device)
    threads: int | None = arg(
        None,
        "CPU cores each episode plans on and torch threads of training (default: this "
        "process's cores / --workers)",
        minimum=1,
    )
    workers: int = arg(1, "episodes run at once in local processes (or Ray CPUs)", minimum=1)
    ray_address: str | None = ray_address_arg()
    out: str | None = arg(
        None, "run folder; the same folder again resumes (default: runs/improve-world-model-<env>)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs == 0:
            raise ValueError("--epochs must be >= 1: every round trains its model anew")
        if self.episodes > 1000:
            raise ValueError(
                f"--episodes must be <= 1000 (a round's data seeds), got {self.episodes}"
            )


class Run:
    """The run folder of one improvement run: paths, config check, setups and episodes."""

    def __init__(self, args: ImproveArgs) -> None:
        self.args = args
        self.spec = get_task(args.env)
        default = REPO_ROOT / "runs" / f"improve-world-model-{self.spec.name}"
        self.folder = Path(args.out) if args.out else default
        self.validation_seeds = parse_seeds(args.validation_seeds)
        self.cores = args.threads or max(1, available_cores() // args.workers)
        check_task(self.simulator_setup())  # before the folder is claimed
        self.agent = self.check_agent() if args.agent_episodes else None
        settings = {k: v for k, v in asdict(args).items() if k not in RUN_FLAGS}
        # as planned: a folder of the mean resumes where the mean is still its task's default
        settings["propagation"] = self.simulator_setup().propagation
        # A flag added later reads, in an older folder, as what that folder's run did.
        defaults = {**{f.name: f.default for f in fields(ImproveArgs)}, **BEFORE_FLAGS}
        claim_run_folder(self.folder, settings, defaults)

    def check_agent(self) -> Path:
        """The agent of ``--agent-episodes``: ``--agent``, else the task's value agent, else its
        shipped SAC agent; a missing or foreign one is refused before any work."""
        spec = self.spec
        path = Path(self.args.agent) if self.args.agent else spec.value_agent_path
        path = agent_path(spec, "sac", None if path is None else str(path))
        env = make_env(spec.name)
        try:
            load_agent(spec, env, "sac", str(path), given_as="agent")
        finally:
            env.close()
        return path

    def round_dir(self, index: int) -> Path:
        return self.folder / f"round-{index:02d}"

    def model_path(self, index: int) -> Path:
        return self.round_dir(index) / "world-model.pt"

    @property
    def planner_name(self) -> str:
        """The planner as the plot and tables name it (``DE``, ``CEM``)."""
        return self.args.planner.upper()

    def simulator_setup(self) -> PlanningSetup:
        """``--planner`` at the budget, scored by the simulator (the task's defaults)."""
        return PlanningSetup.from_fields(self.args, task=self.spec.name)

    def simulator_lines(self) -> dict[str, tuple[Path, PlanningSetup]]:
        """The planners validated on the simulator, by name, each with its episodes' folder:
        ``--planner`` (the level a model is measured against) and :data:`BASELINE` at the same
        budget (the same run when it is the planner)."""
        lines = {self.args.planner: (self.folder / "simulator-validation", self.simulator_setup())}
        baseline = PlanningSetup.from_fields(
            self.args, task=self.spec.name, planner=BASELINE, prior=None
        )
        lines.setdefault(BASELINE, (self.folder / f"{BASELINE}-validation", baseline))
        return lines

    def model_setup(self, index: int) -> PlanningSetup:
        """The same planner, scored by round ``index``'s world model."""
        return PlanningSetup.from_fields(
            self.args,
            task=self.spec.name,
            reward="world-model",
            world_model=str(self.model_path(index)),
        )

    def episodes(
        self, folder: Path, setup: PlanningSetup, seeds: list[int], description: str
    ) -> list[dict[str, Any]]:
        """The episodes of ``setup``'s planner on ``seeds``: those not yet in ``folder`` are run
        (``--workers`` at a time or on Ray) and each is saved as it ends; returns them all, in
        seed order."""
        jobs = [PlannerEpisode(setup, seed, self.args.max_steps, self.cores) for seed in seeds]
        return self.recorded(folder, planner_episode, jobs, description)

    def recorded(
        self, folder: Path, run_episode: Any, jobs: list[Any], description: str
    ) -> list[dict[str, Any]]:
        """The episodes of ``jobs`` (each with a ``seed``) by ``run_episode``: those not yet in
        ``folder`` are run (``--workers`` at a time or on Ray) and each is saved as it ends;
        returns them all, in the jobs' order."""
        paths = {job.seed: folder / f"seed-{job.seed}.npz" for job in jobs}
        missing = [job for job in jobs if not paths[job.seed].exists()]
        args = self.args
        with tqdm(total=len(jobs), initial=len(jobs) - len(missing), desc=description) as bar:
            for episode in map_unordered(run_episode, missing, args.ray_address, args.workers):
                save_episode(paths[episode["seed"]], episode, TRANSITION_FIELDS)
                bar.update()
                bar.set_postfix(ret=f"{episode['return']:.1f}")
        return [load_episode(paths[job.seed], TRANSITION_FIELDS) for job in jobs]


def check_task(setup: PlanningSetup) -> None:
    """Refuse a setup that cannot plan before any work starts: DE's prior is loaded, so a
    missing, foreign or unshipped one is refused (``--env`` refuses a task a world model cannot
    plan on)."""
    env = make_env(setup.task)
    try:
        setup.resolve(env)
    finally:
        env.close()


def data_episodes(run: Run, index: int) -> list[dict[str, Any]]:
    """Round ``index``'s data episodes: the planner's on the simulator (round 0) or with the
    previous round's model, on the round's data seeds."""
    setup = run.simulator_setup() if index == 0 else run.model_setup(index - 1)
    seeds = [DATA_SEED + 1000 * index + i for i in range(run.args.episodes)]
    source = "simulator" if index == 0 else f"model {index - 1}"
    description = f"round {index} data ({run.planner_name}, {source})"
    return run.episodes(run.round_dir(index) / "data", setup, seeds, description)


def random_episodes(run: Run) -> list[dict[str, Any]]:
    """Round 0's ``--random-episodes`` episodes of smooth random actions: those not yet in
    ``round-00/random/`` are run and each is saved as it ends; returns them all, in seed order."""
    folder = run.round_dir(0) / "random"
    seeds = [RANDOM_SEED + i for i in range(run.args.random_episodes)]
    jobs = [RandomEpisode(run.spec.name, seed, run.args.max_steps) for seed in seeds]
    return run.recorded(folder, random_episode, jobs, "round 0 data (smooth random actions)")


def agent_episodes(run: Run) -> list[dict[str, Any]]:
    """Round 0's ``--agent-episodes`` episodes of the agent on its mean action, then as many with
    ``--agent-noise``: those not yet in ``round-00/agent/`` are run and each is saved as it ends;
    returns them all, in that order."""
    args, agent = run.args, str(run.agent)
    count, task = args.agent_episodes, run.spec.name
    jobs = [AgentEpisode(task, agent, AGENT_SEED + i, args.max_steps) for i in range(count)]
    jobs += [
        AgentEpisode(task, agent, NOISY_AGENT_SEED + i, args.max_steps, args.agent_noise)
        for i in range(count)
    ]
    return run.recorded(run.round_dir(0) / "agent", agent_episode, jobs, "round 0 data (agent)")


def train(run: Run, index: int, episodes: list[dict[str, Any]]) -> None:
    """Train round ``index``'s model on ``episodes`` (every data episode of rounds 0..index);
    write its record, then the model (whose file marks the work done)."""
    args = run.args
    data = transitions(episodes)
    obs_dim, action_dim = data["observations"].shape[1], data["actions"].shape[1]
    config = args.world_model_config(obs_dim, action_dim, run.spec.name)
    training = args.world_model_training(args.seed + index, args.device)
    keys = ("observations", "actions", "rewards", "next_observations")
    torch.set_num_threads(run.cores)  # planning in this process left torch on one thread
    model, history = train_world_model(
        *(data[key] for key in keys), config, training, task=run.spec.name
    )
    record = {
        "env": run.spec.name,
        "command": command_line(),
        "round": index,
        "data": {"rounds": list(range(index + 1)), "episodes": len(episodes)},
        "sizes": {"train_transitions": len(data["rewards"])},
        "config": asdict(config),
        "training": asdict(training),
        "history": history,
    }
    path = run.model_path(index)
    write_json(path.with_suffix(".json"), record)
    model.save(path)


def k_step(
    run: Run, index: int, own: list[dict], simulator: list[dict], scale: np.ndarray
) -> dict[str, Any]:
    """Round ``index``'s model's k-step errors on its planner's validation episodes (``own``) and
    on the planner's on the simulator (``simulator``), normalised by ``scale (O,)``; computed once
    and kept in ``kstep.json``."""
    path = run.round_dir(index) / "kstep.json"
    if path.exists():
        return json.loads(path.read_text())
    model = WorldModel.load(run.model_path(index), task=run.spec.name, device=run.args.device)

    def errors(episodes: list[dict]) -> dict[str, float]:
        data = transitions(episodes)
        keys = ("observations", "actions", "next_observations", "episode_index")
        found = k_step_errors(model, *(data[key] for key in keys), ks=KS, obs_scale=scale)
        return {str(k): v for k, v in found.items()}

    record = {"own": errors(own), "simulator": errors(simulator), "scale": "round 0 data std"}
    write_json(path, record)
    return record


def rounds_figure(records: list[dict], levels: dict[str, dict], planner: str, env: str) -> Figure:
    """Validation return of ``planner`` with each round's model against its training
    transitions, with each simulator line's level on the same seeds (``levels``, by planner: the
    mean and its interval) as a line and a band."""
    figure = Figure(figsize=(6, 4), dpi=90)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    sizes = [r["trained_on"] for r in records]
    means = np.array([r["validation"]["mean"] for r in records])
    low, high = (np.array([r["validation"][bound] for r in records]) for bound in ("low", "high"))
    errors = np.nan_to_num(np.stack([means - low, high - means]), posinf=0.0)  # 1 seed: no bar
    label = f"{planner.upper()}, world model"
    ax.errorbar(sizes, means, yerr=errors, marker="o", capsize=3, label=label)
    for record, size, mean in zip(records, sizes, means, strict=True):
        ax.annotate(f"r{record['round']}", (size, mean), textcoords="offset points", xytext=(4, 4))
    for color, (name, level) in zip(("C3", "C2"), levels.items(), strict=False):
        ax.axhline(level["mean"], color=color, label=f"{name.upper()}, simulator")
        ax.axhspan(level["low"], level["high"], color=color, alpha=0.1)
    ax.xaxis.set_major_formatter(EngFormatter())  # 400k, 1.2M: no offset text over the label
    ax.set_xlabel("training transitions (env steps)")
    ax.set_ylabel("episode return, validation seeds")
    ax.set_title(f"{env}: a world model trained on its own planner's data")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def round_record(
    run: Run, index: int, data: list[dict], validation: list[dict], kstep: dict
) -> dict[str, Any]:
    """What rounds.json says of round ``index``: its data, its model and the model's scores."""
    trained = json.loads(run.model_path(index).with_suffix(".json").read_text())
    returns = np.array([e["return"] for e in validation])
    return {
        "round": index,
        "data_from": "simulator" if index == 0 else f"world model of round {index - 1}",
        "random_episodes": run.args.random_episodes if index == 0 else 0,
        "agent_episodes": 2 * run.args.agent_episodes if index == 0 else 0,
        "agent": str(run.agent) if index == 0 and run.agent else None,
        "data_returns": [e["return"] for e in data],
        "data_return": float(np.mean([e["return"] for e in data])),
        "trained_on": trained["sizes"]["train_transitions"],
        "k_step_error": kstep["own"],
        "k_step_error_simulator_states": kstep["simulator"],
        "validation": interval_record(returns),
        "validation_returns": returns.tolist(),
        "world_model": str(run.model_path(index)),
    }


def best_round(records: list[dict]) -> int:
    """The round whose model planned best on the validation seeds (mean return)."""
    return max(records, key=lambda r: r["validation"]["mean"])["round"]


def write_summary(run: Run, records: list[dict], levels: dict[str, dict]) -> int:
    """rounds.json, rounds.png and best.pt (the best round's model by mean validation return),
    with the simulator lines' ``levels`` (by planner); returns the best round."""
    best = best_round(records)
    shutil.copyfile(run.model_path(best), run.folder / "best.tmp")
    (run.folder / "best.tmp").replace(run.folder / "best.pt")
    summary = {
        "command": command_line(),
        "validation_seeds": run.validation_seeds,
        "planner": run.args.planner,
        "simulator": levels[run.args.planner],
        BASELINE: levels[BASELINE],
        "best_round": best,
        "best": str(run.folder / "best.pt"),
        "rounds": records,
    }
    write_json(run.folder / "rounds.json", summary)
    figure = rounds_figure(records, levels, run.args.planner, run.spec.name)
    figure.savefig(run.folder / "rounds.png")
    return best


def run_rounds(run: Run) -> tuple[list[dict], dict[str, dict]]:
    """The simulator lines' validation and every round not yet done; returns the round-by-round
    records and each simulator line's validation return, by planner."""
    seeds = run.validation_seeds
    levels, validated = {}, {}
    for name, (folder, setup) in run.simulator_lines().items():
        description = f"validation ({name.upper()}, simulator)"
        validated[name] = run.episodes(folder, setup, seeds, description)
        levels[name] = interval_record([e["return"] for e in validated[name]])
    simulator = validated[run.args.planner]
    records, data = [], []
    for index in tqdm(range(run.args.rounds + 1), desc="rounds", unit="round"):
        new = data_episodes(run, index)
        data += new
        if index == 0:  # one scale of the k-step error for every round: the simulator's data
            scale = np.maximum(transitions(new)["observations"].std(axis=0), 1e-6)
            data += random_episodes(run)
            if run.args.agent_episodes:
                data += agent_episodes(run)
        if not run.model_path(index).exists():
            train(run, index, data)
        validation = run.episodes(
            run.round_dir(index) / "validation",
            run.model_setup(index),
            seeds,
            f"round {index} validation ({run.planner_name}, model {index})",
        )
        kstep = k_step(run, index, validation, simulator, scale)
        records.append(round_record(run, index, new, validation, kstep))
        write_summary(run, records, levels)
    return records, levels


def round_0_sources(record: dict) -> str:
    """Where round 0's data came from, as the round table says it: ``simulator+random+agent``."""
    extra = [name for name in ("random", "agent") if record.get(f"{name}_episodes")]
    return "+".join(["simulator", *extra])


def main(args: ImproveArgs) -> list[dict]:
    """Run the rounds not yet done; write and print the round-by-round results."""
    run = Run(args)
    with ray_session(args.ray_address, args.workers):  # one Ray session for every round
        records, levels = run_rounds(run)
    error = f"k={KS[-1]} error"
    print_table(
        [
            {
                "round": r["round"],
                "data from": f"model {r['round'] - 1}" if r["round"] else round_0_sources(r),
                "data return": r["data_return"],
                "trained on": r["trained_on"],
                error: r["k_step_error"][str(KS[-1])],
                "validation return": r["validation"]["text"],
            }
            for r in records
        ],
        ["round", "data from", "data return", "trained on", error, "validation return"],
        {"data return": ".1f", error: ".3f"},
    )
    for name, level in levels.items():
        print(f"{name.upper()} on the simulator, same validation seeds: {level['text']}")
    print(f"best: round {best_round(records)} (copied to {run.folder}/best.pt)")
    print(f"wrote {run.folder}/rounds.json and rounds.png")
    return records


if __name__ == "__main__":
    run_main(main, ImproveArgs, __doc__)
