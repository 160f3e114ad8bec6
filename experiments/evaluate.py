"""Compare planners on the same seeds and budgets: the harness behind every published number.

    python experiments/evaluate.py --suite quick --out runs/quick      # under 2 minutes
    python experiments/evaluate.py --suite full --out results/full     # the README's numbers
    python experiments/evaluate.py --envs reacher --planners de,cem,sac --budgets 16x2 --episodes 5

A *row* is one (task, planner, budget); every row of a task runs on the same episode seeds,
and each (row, seed) episode is one unit of work, its planner seeded with the episode's seed.
A budget ``NxT`` gives every planner N candidates x T iterations per control step; an agent
(``sac``, ``ppo``) has no budget and gets one row per task. ``--warm-starts`` adds one DE row
per warm-start mode.

``--rewards simulator,world-model`` adds one row per reward: candidates scored in the simulator
or by the task's learned world model from the observation (``--world-model``, default
checkpoints/<env>-world-model.pt); the return is always the env's own. ``--propagation`` and
``--particles`` choose how every world-model row rolls the ensemble out (one grid per
propagation; compare_runs.py pairs grids).

``--out DIR`` receives ``grid.json`` (the grid), ``episodes.csv`` (one line per episode, written
as it ends), ``results.md`` (means and 95% intervals per row, DE against each baseline on the
same seeds, command and machine) and the plots ``main_metric.png`` and ``control_rate.png``.
Rerunning the same command with the same ``--out`` resumes: finished episodes are kept, the
rest run; a folder holding another grid is refused.

Suites fix the grid (``--envs``, ``--planners``, ``--budgets``, ``--episodes`` and ``--seed``
are refused with ``--suite``); the other flags still apply and are recorded in grid.json:

- ``quick`` (75 episodes, 80 s on 2 shared cores): unicycle-goal, unicycle-obstacles and
  reacher; every planner (de, cem, icem, mppi, random) at 16x2; 5 seeds.
- ``full`` (520 episodes, about an hour of one core, hopper at 64x3 half of it): unicycle-goal
  and unicycle-obstacles with every planner at 4x2, 16x2, 64x4 on 10 seeds; reacher (10 seeds),
  half-cheetah and hopper (5 seeds, 200 steps) with every planner at 16x2 and 64x3, and the
  SAC agent.

``--workers`` runs episodes in parallel processes, ``--ray-address`` as Ray tasks on a cluster
(``local``: a private one of ``--workers`` CPUs on this machine; ``auto`` or ``HOST:PORT``: a
running one, README "Running on a cluster"): results do not change, episode for episode, but
control rates then share the cores, so rows run with more than one episode at a time report
none ("not comparable"). A worker that dies has its episode rerun by Ray; each episode is logged
once, as it finishes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from envs.mujoco_rewards import COSTS_SYNTAX, parse_costs
from envs.registry import default_values, get_task, make_env, task_names
from envs.world_model_rules import cost_fn
from experiments.harness.cli import (
    REPO_ROOT,
    ScriptArgs,
    UsageError,
    arg,
    command_line,
    parse_budget,
    run_main,
    write_json,
)
from experiments.harness.distributed import ray_address_arg
from experiments.harness.grid import (
    EpisodeLog,
    GridSettings,
    Row,
    describe_grid,
    grid_difference,
    row_setup,
    run_grid,
)
from experiments.harness.report import write_report
from experiments.harness.world_models import particles_arg, propagation_arg
from planner.knots import INTERPOLATIONS
from planner.mpc import WARM_STARTS
from planner.world_model import check_particles, check_pessimism
from policies.planners import PLANNERS
from policies.setup import AGENTS, CONTROLLERS, DECODERS, REWARDS, agent_path, load_agent


@dataclass(frozen=True)
class Block:
    """Part of a grid: tasks x controllers x budgets, every row on the same ``episodes`` seeds."""

    envs: tuple[str, ...]
    planners: tuple[str, ...]
    budgets: tuple[str, ...]
    episodes: int


MUJOCO_ROWS = (*PLANNERS, "sac")  # SAC: the agent whose data trained the shipped priors
SUITES: dict[str, tuple[Block, ...]] = {
    "quick": (Block(("unicycle-goal", "unicycle-obstacles", "reacher"), PLANNERS, ("16x2",), 5),),
    "full": (
        Block(("unicycle-goal", "unicycle-obstacles"), PLANNERS, ("4x2", "16x2", "64x4"), 10),
        Block(("reacher",), MUJOCO_ROWS, ("16x2", "64x3"), 10),
        Block(("half-cheetah", "hopper"), MUJOCO_ROWS, ("16x2", "64x3"), 5),
    ),
}
"""Named grids; ``full`` is the one the README's tables come from."""

CUSTOM = Block(("unicycle-goal", "unicycle-obstacles"), PLANNERS, ("16x2", "64x4"), 10)
"""The grid of flags left out without ``--suite``."""

GRID_FLAGS = ("envs", "planners", "budgets", "episodes", "seed")
"""The flags that choose rows and seeds: a suite fixes them."""


@dataclass
class EvalArgs(ScriptArgs):
    """Arguments of evaluate.py (comma-separated lists)."""

    suite: str | None = arg(None, "a named grid (fixes the next five flags)", tuple(SUITES))
    envs: str | None = arg(None, f"tasks (without --suite: {','.join(CUSTOM.envs)})")
    planners: str | None = arg(
        None,
        f"planners and agents: {','.join(CONTROLLERS)} (de = Diffusion Elites; without "
        f"--suite: {','.join(CUSTOM.planners)})",
    )
    budgets: str | None = arg(
        None,
        f"budgets NxT: population x iterations per step (without --suite: "
        f"{','.join(CUSTOM.budgets)})",
    )
    episodes: int | None = arg(
        None,
        f"seeds per row; episode i uses seed seed+i (without --suite: {CUSTOM.episodes})",
        minimum=1,
    )
    seed: int | None = arg(None, "first episode seed (without --suite: 0)")
    warm_starts: str = arg("", "DE warm-start modes, one DE row each (default: the task's)")
    decoders: str = arg(
        "",
        "DE decoders SEARCH[:FINAL], each ddim or student (student:ddim searches with the "
        "student and decodes the executed plan by DDIM), one DE row each (default: the task's)",
    )
    max_steps: int | None = arg(
        None, "cut episodes after this many steps (default: the task's)", minimum=1
    )
    search_steps: int | None = arg(
        None, "DE: DDIM steps while searching (default: the task's)", minimum=1
    )
    final_steps: int | None = arg(
        None, "DE: DDIM steps of the executed plan (default: the task's)", minimum=1
    )
    prior: str | None = arg(None, "DE prior checkpoint (default: each task's shipped prior)")
    force_prior: bool = arg(False, "use --prior even if it was trained for another task")
    student: str | None = arg(None, "DE student checkpoint (default: each task's shipped one)")
    rewards: str = arg("simulator", "planning rewards, one row each: simulator, world-model")
    world_model: str | None = arg(None, "world model (default: each task's shipped one)")
    propagation: str | None = propagation_arg()
    particles: int | None = particles_arg()
    pessimism: float = arg(
        0.0, "world model rows, ts1/tsinf: score mean - k std over a candidate's particles"
    )
    horizon: int | None = arg(
        None, "H of planners without a prior (default: the task's; DE: its prior's)", minimum=1
    )
    horizon_seconds: float | None = arg(None, "H in seconds instead of steps (DE: its prior's)")
    knots: int | None = arg(
        None,
        "K knots per plan, every planner alike (default: one per step; DE: its prior's)",
        minimum=1,
    )
    interpolation: str | None = arg(
        None,
        "how K knots become H actions (default: hold; DE: its prior's)",
        INTERPOLATIONS,
    )
    costs: str | None = arg(
        None,
        "planning-only cost terms of every planner row, simulator or world model (default: each "
        "task's declared ones; "
        f"none: no terms): {COSTS_SYNTAX} (terms: run_mpc.py --help)",
        check=parse_costs,
    )
    value_agent: str | None = arg(
        None,
        "a SAC agent zip whose critic values the horizon's end of every planner row "
        f"(default: the task's: {default_values()}; none: no value)",
    )
    value_weight: float | None = arg(None, "the value is multiplied by it (default: the task's)")
    workers: int = arg(
        1, "parallel processes (control rates are only comparable with 1)", minimum=1
    )
    ray_address: str | None = ray_address_arg()
    out: str | None = arg(
        None, "folder of the results; the same folder again resumes (default: a new one in runs/)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.suite is not None:
            given = [name for name in GRID_FLAGS if getattr(self, name) is not None]
            if given:
                flags = ", ".join("--" + name for name in given)
                raise ValueError(
                    f"--suite {self.suite} fixes {flags}: drop them, or drop --suite for a "
                    "custom grid"
                )
        lists = {
            "envs": task_names(),
            "planners": CONTROLLERS,
            "warm_starts": WARM_STARTS,
            "rewards": REWARDS,
        }
        decoders = [part for entry in _split(self.decoders) for part in entry.split(":")]
        if any(part not in DECODERS for part in decoders) or any(
            entry.count(":") > 1 for entry in _split(self.decoders)
        ):
            raise ValueError(
                f"--decoders: {self.decoders!r} must list SEARCH or SEARCH:FINAL, each one of "
                f"{', '.join(DECODERS)} (e.g. ddim,student,student:ddim)"
            )
        for name, known in lists.items():
            unknown = [item for item in _split(getattr(self, name) or "") if item not in known]
            if unknown:
                raise ValueError(
                    f"--{name.replace('_', '-')}: unknown {unknown}; pick from {', '.join(known)}"
                )
        for block in self.blocks():
            if not block.envs or not block.planners:
                raise ValueError("--envs and --planners each need at least one name")
            _budgets(block.budgets)
        for propagation in self.propagations():
            check_particles(propagation, self.particles)
            check_pessimism(propagation, self.pessimism)

    def propagations(self) -> set[str]:
        """The propagations the grid's world-model rows would plan with: ``--propagation``,
        else each of its tasks' defaults."""
        if self.propagation is not None:
            return {self.propagation}
        envs = {env for block in self.blocks() for env in block.envs}
        return {get_task(env).world_model_propagation for env in envs}

    def blocks(self) -> tuple[Block, ...]:
        """The grid's blocks: the suite's, or one from the flags (CUSTOM fills the others)."""
        if self.suite is not None:
            return SUITES[self.suite]
        return (
            Block(
                tuple(_split(self.envs)) if self.envs is not None else CUSTOM.envs,
                tuple(_split(self.planners)) if self.planners is not None else CUSTOM.planners,
                tuple(_split(self.budgets)) if self.budgets is not None else CUSTOM.budgets,
                self.episodes if self.episodes is not None else CUSTOM.episodes,
            ),
        )

    def settings(self) -> GridSettings:
        """What every row shares."""
        return GridSettings(
            max_steps=self.max_steps,
            search_steps=self.search_steps,
            final_steps=self.final_steps,
            prior=self.prior,
            force_prior=self.force_prior,
            student=self.student,
            world_model=self.world_model,
            propagation=self.propagation,
            particles=self.particles,
            pessimism=self.pessimism,
            horizon=self.horizon,
            horizon_seconds=self.horizon_seconds,
            knots=self.knots,
            interpolation=self.interpolation,
            costs=None if self.costs is None else parse_costs(self.costs),
            value_agent=self.value_agent,
            value_weight=self.value_weight,
        )


def plan_episodes(args: EvalArgs) -> list[tuple[Row, int]]:
    """Every (row, seed) of the grid: planners at each budget (DE once per warm-start mode),
    then one row per agent; all rows of a block on its seeds."""
    first_seed = args.seed or 0
    episodes = []
    for block in args.blocks():
        seeds = range(first_seed, first_seed + block.episodes)
        for env in block.envs:
            rows = []
            for population, iterations in _budgets(block.budgets):
                for planner in (p for p in block.planners if p not in AGENTS):
                    modes = _split(args.warm_starts) if planner == "de" else []
                    decoders = _split(args.decoders) if planner == "de" else []
                    rows += [
                        Row(env, planner, population, iterations, mode, reward=reward, decoder=d)
                        for reward in _split(args.rewards)
                        for mode in modes or [""]
                        for d in decoders or [""]
                    ]
            rows += [Row(env, agent) for agent in block.planners if agent in AGENTS]
            episodes += [(row, seed) for row in rows for seed in seeds]
    return episodes


def check_files(rows: list[Row], settings: GridSettings) -> None:
    """Refuse a missing or foreign prior or agent now, not after the rows before it have run."""
    distinct = {(row.env, row.planner, row.decoder): row for row in rows}
    for row in distinct.values():
        env, planner, spec = row.env, row.planner, get_task(row.env)
        if planner == "de":
            row_setup(row, settings).decoders()
        elif planner in AGENTS:
            if not agent_path(spec, planner).is_file():
                raise UsageError(
                    f"{env} has no {planner.upper()} agent at {agent_path(spec, planner)}: drop "
                    f"{planner} from --planners or {env} from --envs, or train one with "
                    f"experiments/train_agent.py --env {env} --algo {planner}"
                )
            agent_env = make_env(env)
            load_agent(spec, agent_env, planner)
            agent_env.close()
    check_costs(rows, settings)


def check_costs(rows: list[Row], settings: GridSettings) -> None:
    """Refuse cost terms that a row's task or reward cannot charge now, not mid-grid."""
    if not settings.costs:
        return
    for env, reward in dict.fromkeys((r.env, r.reward) for r in rows if r.planner not in AGENTS):
        task_env = make_env(env)
        try:
            if reward == "simulator":
                get_task(env).make_objective(task_env, settings.costs)
            else:  # charged on the world model's predicted observations
                cost_fn(task_env, settings.costs)
        except ValueError as exc:
            raise UsageError(f"--costs: {exc}; drop {env} from --envs") from None
        finally:
            task_env.close()


def claim_folder(folder: Path, grid: dict) -> str:
    """Record ``grid`` in ``folder/grid.json``, or check that the folder holds this grid.

    Returns the command that started the grid (this one for a new folder).

    Raises:
        UsageError: the folder holds another grid, or files but no grid.json.
    """
    record = folder / "grid.json"
    if record.exists():
        recorded = json.loads(record.read_text())
        difference = grid_difference(recorded, grid)
        if difference is not None:
            raise UsageError(
                f"{folder} holds another grid ({difference}): resume it with its own command "
                f"({recorded.get('command')}) or pass a new --out folder"
            )
        return recorded.get("command", command_line())
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} holds files but no grid.json: pass a new or empty --out")
    folder.mkdir(parents=True, exist_ok=True)
    write_json(record, {**grid, "command": command_line()})
    return command_line()


def remove_created(paths: list[Path]) -> None:
    """Delete what a failed run made: ``paths``, deepest first (a folder is left if not empty)."""
    for path in paths:
        if path.is_file():
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def main(args: EvalArgs) -> str:
    """Run (or resume) the grid, then write the report; return results.md's text."""
    episodes = plan_episodes(args)
    rows = list(dict.fromkeys(row for row, _ in episodes))
    settings = args.settings()
    check_files(rows, settings)
    name = args.suite or "custom"
    folder = Path(
        args.out or REPO_ROOT / "runs" / f"evaluate__{name}__{time.strftime('%Y%m%d-%H%M%S')}"
    )
    # A JSON round trip, so that the grid compares equal to the one read back from grid.json
    grid = json.loads(json.dumps(describe_grid(args.suite, episodes, settings)))
    made = (folder / "episodes.csv", folder / "grid.json", folder, *folder.parents)
    created = [path for path in made if not path.exists()]  # by this run, deepest first
    commands = list(dict.fromkeys([claim_folder(folder, grid), command_line()]))
    log = EpisodeLog(folder / "episodes.csv")
    left = sum(not log.done(row, seed) for row, seed in episodes)
    if left:
        print(
            f"grid {name}: {len(rows)} rows, {len(episodes)} episodes, {len(episodes) - left} "
            f"already in {folder} (rerun with --out {folder} to resume)"
        )
    else:
        print(f"grid {name}: complete, all {len(episodes)} episodes already in {folder}")
    try:
        records = run_grid(episodes, settings, log, args.workers, args.ray_address)
    except BaseException as exc:
        if not log.records:  # nothing to resume: leave no trace of this run
            remove_created(created)
        if isinstance(exc, KeyboardInterrupt):
            raise SystemExit(
                f"stopped with {len(log.records)} of {len(episodes)} episodes in {folder}: the "
                "same command continues from there"
                if log.records
                else "stopped before the first episode ended: nothing was kept"
            ) from None
        raise
    text = write_report(folder, rows, records, commands, args.suite)
    print(text)
    print(f"results: {folder}")
    return text


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _budgets(budgets: tuple[str, ...]) -> list[tuple[int, int]]:
    """``("8x2", "64x4")`` -> ``[(8, 2), (64, 4)]`` (population, iterations), each at least 1."""
    parsed = [parse_budget(budget, "--budgets") for budget in budgets]
    if not parsed:
        raise ValueError("--budgets needs at least one budget NxT, e.g. 64x4")
    return parsed


if __name__ == "__main__":
    run_main(main, EvalArgs, __doc__)
