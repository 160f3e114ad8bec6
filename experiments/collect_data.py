"""Collect episodes from an agent, a planner or smooth random actions; write transitions and chunks.

    python experiments/collect_data.py --env reacher --source sac --episodes 50 --horizon 16
    python experiments/collect_data.py --env half-cheetah --source random --max-steps 300
    python experiments/collect_data.py --env reacher --source cem --population 32 --iterations 2
    python experiments/collect_data.py --env hopper --source de --reward world-model --max-steps 200

``--source de``: Diffusion Elites over the task's shipped prior (``--prior``), scoring candidates in
the simulator or, with ``--reward world-model``, with a learned world model from the observation
(``--world-model``): the data-aggregation round of PETS (collect with the model's planner, add
the transitions to the training data, retrain with experiments/train_world_model.py).

``--candidates K`` (a planner source): also keep K random candidates of every population the
planner scores, each replayed in the simulator from the state the planner planned from (for a
world model's planner, the env's state at that step), as an episode of its own of up to H
transitions (:class:`~experiments.harness.collection.CandidateRecorder`): the candidates a world
model's planner must tell apart, from the states the planner visits. They go to ``<out
stem>.candidates.npz`` (the transition arrays, and per candidate ``candidate_episode`` and
``candidate_step``, the episode and the step it was scored at), for train_world_model.py beside
``<out>``. Replaying needs the simulator's state: a real robot cannot give this data.

Writes ``<out>`` (default ``data/<env>-<source>.npz``, the name train_prior.py and
train_world_model.py commands read; ``data/`` is never shipped) compressed and atomically; a file
that exists is refused unless ``--overwrite`` is given. It holds

- transitions, one row per env step (M in all): ``observations (M, O)``, ``actions (M, A)``
  normalised to [-1, 1] (exactly the actions executed: the env got ``low + (a + 1) / 2 *
  (high - low)``), ``rewards (M,)``, ``next_observations (M, O)``, ``terminated (M,)``,
  ``episode_index (M,)``;
- action chunks for priors (K in all): ``chunk_actions (K, H, A)``, every window of H consecutive
  actions inside one episode (every ``stride``-th start), ``chunk_observations (K, O)``, the
  observation at each window's first step, and ``chunk_start (K,)``, that step's transition row;
- ``metadata``: a JSON string (``json.loads(str(archive["metadata"]))``): env, source, seed,
  sizes, returns per episode, the exact command, ...

Episode i is collected on its own, every generator seeded with seed+i, so ``--workers`` (local
processes) and ``--ray-address`` (one Ray task per episode: ``local``, ``auto`` or ``HOST:PORT``,
see evaluate.py) collect exactly the same file.

Train a prior on it with ``experiments/train_prior.py --env <env> --data <out>``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from envs.datasets import action_chunks
from envs.registry import TaskSpec, get_task, make_env, task_names
from envs.world_model_rules import check_world_model_task
from experiments.harness.cli import (
    REPO_ROOT,
    ScriptArgs,
    arg,
    command_line,
    run_main,
)
from experiments.harness.collection import (
    AgentSource,
    CandidateRecorder,
    PlannerSource,
    SmoothRandomSource,
    collect_episode,
    transitions,
)
from experiments.harness.distributed import map_unordered, ray_address_arg
from experiments.harness.outputs import check_output, overwrite_arg
from experiments.harness.world_models import propagation_arg
from planner.files import atomic_write
from policies.planners import PLANNERS
from policies.setup import AGENTS, REWARDS, PlanningSetup, agent_path, load_agent

CANDIDATES_SUFFIX = ".candidates.npz"
"""``--candidates``' file: ``<out stem>`` with this suffix."""
CANDIDATE_STREAM = 1
"""The candidates kept are drawn from ``default_rng([seed, CANDIDATE_STREAM])``, a stream of
their own: the planner's episode is the same with or without them."""

# The planner "random" (random shooting) is left out: the name is taken by smooth random actions.
PLANNER_SOURCES = tuple(p for p in PLANNERS if p != "random")
SOURCES = (*AGENTS, "random", *PLANNER_SOURCES)


@dataclass
class CollectArgs(ScriptArgs):
    """Arguments of collect_data.py (None: the task's default)."""

    env: str = arg("reacher", "task short name", tuple(task_names()))
    source: str = arg("sac", "who acts: an SB3 agent, smooth random actions or a planner", SOURCES)
    episodes: int = arg(50, "episodes to collect", minimum=1)
    horizon: int | None = arg(
        None, "H, steps per action chunk (default: the task's horizon)", minimum=1
    )
    stride: int = arg(1, "steps between the starts of consecutive chunks", minimum=1)
    pad_ends: bool = arg(
        False, "also keep windows crossing an episode end, repeating its last action"
    )
    max_steps: int | None = arg(
        None, "cut episodes after this many steps (default: env's limit)", minimum=1
    )
    seed: int = arg(0, "episode i seeds everything (env reset, noise, agent, planner) with seed+i")
    agent: str | None = arg(None, "SB3 zip (default: checkpoints/agents/<env>-<source>.zip)")
    deterministic: bool = arg(False, "agent sources: act with the policy's mode, not a sample")
    action_noise: float = arg(
        0.0, "std of Gaussian noise added to every normalised action", minimum=0.0
    )
    segment_steps: float = arg(16.0, "random source: mean steps between action-level switches")
    population: int | None = arg(None, "planner sources: N candidates per iteration", minimum=1)
    iterations: int | None = arg(None, "planner sources: T iterations per control step", minimum=1)
    prior: str | None = arg(None, "de source: prior checkpoint (default: the task's shipped one)")
    reward: str = arg(
        "simulator", "planner sources: score candidates in the simulator or a world model", REWARDS
    )
    world_model: str | None = arg(None, "world model (default: checkpoints/<env>-world-model.pt)")
    propagation: str | None = propagation_arg()
    candidates: int = arg(
        0,
        "planner sources: also keep K candidates of every population, replayed in the "
        "simulator, in <out stem>.candidates.npz",
        minimum=0,
    )
    threads: int = arg(1, "torch CPU threads of each process (agent networks)", minimum=1)
    workers: int = arg(1, "episodes collected at once, in local processes or Ray tasks", minimum=1)
    ray_address: str | None = ray_address_arg()
    out: str | None = arg(None, "npz path (default: data/<env>-<source>.npz)")
    overwrite: bool = overwrite_arg()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.segment_steps > 0:
            raise ValueError(f"--segment-steps must be > 0, got {self.segment_steps}")
        if self.candidates and self.source not in PLANNER_SOURCES:
            raise ValueError(
                f"--candidates keeps a planner's candidates: it needs a planner source "
                f"({', '.join(PLANNER_SOURCES)}), got --source {self.source}"
            )
        if self.candidates:
            try:
                check_world_model_task(self.env)
            except ValueError as exc:
                raise ValueError(f"--candidates makes a world model's data: {exc}") from None


def make_source(
    args: CollectArgs, spec: TaskSpec, env: gym.Env, rng: np.random.Generator, seed: int
) -> tuple[Any, dict[str, Any]]:
    """The source named by ``args.source`` (``begin``/``act``) and its settings for the record;
    a planner and its world model are seeded with ``seed``."""
    action_dim = env.action_space.shape[0]
    if args.source in AGENTS:
        model = load_agent(spec, env, args.source, args.agent)
        path = agent_path(spec, args.source, args.agent)
        return AgentSource(model, args.deterministic, env.action_space), {"agent": str(path)}
    if args.source == "random":
        return SmoothRandomSource(action_dim, args.segment_steps, rng), {}
    setup = PlanningSetup(
        task=spec.name,
        planner=args.source,
        population=args.population,
        iterations=args.iterations,
        prior=args.prior,
        reward=args.reward,
        world_model=args.world_model,
        propagation=args.propagation,
        seed=seed,
    )
    planning = setup.resolve(env)
    if args.candidates:
        rng = np.random.default_rng([seed, CANDIDATE_STREAM])
        recorder = CandidateRecorder(
            planning.objective, make_env(spec.name), args.candidates, rng, acting=env
        )
        planning = planning.with_objective(recorder)
    source = PlannerSource(planning)
    info = {"planner_budget": asdict(planning.budget), "reward": args.reward}
    if args.reward == "world-model":
        info["propagation"] = setup.propagation
    return source, info


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a compressed npz atomically."""
    with atomic_write(path) as file:
        np.savez_compressed(file, **arrays)


def collect_job(job: tuple[CollectArgs, int]) -> dict[str, Any]:
    """Episode ``index`` of the collection ``args``, on its own: a fresh env and source, and
    every generator (the env's reset, noise, random actions, planner, SB3's sampling) seeded
    with ``args.seed + index``, so it is the same episode in any process, in any order.

    Returns its transitions (:func:`collect_episode`) and ``index``; with ``--candidates``
    also ``candidates``, the replayed candidates' transitions, and ``candidate_step``, the
    step each was scored at.
    """
    args, index = job
    torch.set_num_threads(args.threads)
    spec = get_task(args.env)
    env = make_env(spec.name)
    seed = args.seed + index
    rng = np.random.default_rng(seed)
    # SB3 samples stochastic actions from torch's global generator: seed it, then restore it
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        source, _ = make_source(args, spec, env, rng, seed)
        episode = collect_episode(env, source, seed, args.max_steps, args.action_noise, rng)
    env.close()
    if args.candidates:
        recorder = source.objective
        episode = {
            **episode,
            "candidates": recorder.episodes,
            "candidate_step": np.asarray(recorder.steps),
        }
    return {**episode, "index": index}


def candidate_arrays(episodes: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The ``--candidates`` file's arrays: every replayed candidate's transitions, one episode
    each (:func:`~experiments.harness.collection.transitions`), and per candidate the episode it
    came from (``candidate_episode``) and the step it was scored at (``candidate_step``)."""
    replays = [replay for episode in episodes for replay in episode["candidates"]]
    counts = [len(episode["candidates"]) for episode in episodes]
    return {
        **transitions(replays),
        "candidate_episode": np.repeat(np.arange(len(episodes)), counts),
        "candidate_step": np.concatenate([e["candidate_step"] for e in episodes]),
    }


def output_path(args: CollectArgs) -> Path:
    """``--out``, or ``data/<env>-<source>.npz``."""
    name = f"{get_task(args.env).name}-{args.source}.npz"
    return Path(args.out) if args.out else REPO_ROOT / "data" / name


def main(args: CollectArgs) -> Path:
    """Collect the episodes, write the npz, print a summary; returns the npz path."""
    spec = get_task(args.env)
    horizon = spec.horizon if args.horizon is None else args.horizon
    # Built here once to refuse a missing or foreign agent or prior before any episode starts,
    # and for the source's settings in the record
    env = make_env(spec.name)
    _, source_info = make_source(args, spec, env, np.random.default_rng(args.seed), args.seed)
    env.close()
    out = output_path(args)
    check_output(out, args.overwrite, (CANDIDATES_SUFFIX,) if args.candidates else ())
    jobs = [(args, index) for index in range(args.episodes)]
    finished = map_unordered(collect_job, jobs, args.ray_address, args.workers)
    episodes: list[dict[str, np.ndarray]] = [{}] * args.episodes
    for episode in (bar := tqdm(finished, f"{spec.name} {args.source}", total=args.episodes)):
        episodes[episode.pop("index")] = episode
        bar.set_postfix(ret=f"{episode['rewards'].sum():.1f}")

    rows = transitions(episodes)
    lengths = [len(e["rewards"]) for e in episodes]
    chunks, starts = action_chunks(
        rows["actions"], rows["episode_index"], horizon, args.stride, args.pad_ends
    )
    returns = [float(e["rewards"].sum()) for e in episodes]
    metadata = {
        "env": spec.name,
        "env_id": spec.env_id,
        "source": args.source,
        "seed": args.seed,
        "episodes": args.episodes,
        "horizon": horizon,
        "returns": returns,
        "episode_lengths": lengths,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "command": command_line(),
        "arguments": asdict(args),
        "sizes": {
            "transitions": len(rows["rewards"]),
            "chunks": len(chunks),
            "obs_dim": rows["observations"].shape[1],
            "action_dim": rows["actions"].shape[1],
        },
        **source_info,
    }
    arrays = {
        **rows,
        "chunk_actions": chunks,
        "chunk_observations": rows["observations"][starts],
        "chunk_start": starts,
        "metadata": np.array(json.dumps(metadata)),
    }
    save_npz(out, arrays)
    print(
        f"wrote {out}: {len(episodes)} episodes, {len(rows['rewards'])} transitions, "
        f"{len(chunks)} chunks of H={horizon}, mean return {metadata['mean_return']:.2f} "
        f"+- {metadata['std_return']:.2f}"
    )
    if args.candidates:
        candidates = candidate_arrays(episodes)
        metadata = {
            **metadata,
            "candidates_per_population": args.candidates,
            "sizes": {
                **metadata["sizes"],
                "candidates": len(candidates["candidate_episode"]),
                "candidate_transitions": len(candidates["rewards"]),
            },
        }
        path = out.with_suffix(CANDIDATES_SUFFIX)
        save_npz(path, {**candidates, "metadata": np.array(json.dumps(metadata))})
        print(
            f"wrote {path}: {len(candidates['candidate_episode'])} replayed candidates, "
            f"{len(candidates['rewards'])} transitions"
        )
    return out


if __name__ == "__main__":
    run_main(main, CollectArgs, __doc__)
