"""Train a stable-baselines3 agent on a task: the data source of a prior and a baseline to beat.

    python experiments/train_agent.py --env reacher --algo sac --timesteps 30000

Writes ``<out>`` (SB3's own format; default ``<env>-<algo>.zip`` in a new run folder,
``runs/train_agent__<env>-<algo>__<time>/``, never a shipped agent) and a ``.json`` record beside
it (command, seed, timesteps, wall time, evaluation return). An existing ``--out`` is refused
unless ``--overwrite`` is given.

``--resume ZIP`` trains a saved agent further: its networks and optimiser states go on from
where they stopped, for ``--timesteps`` more steps (the zip holds no replay buffer, so that
starts empty). The record counts all steps, and names the zip it resumed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from tqdm import tqdm

from envs.registry import get_task, make_env, task_names
from experiments.harness.cli import (
    ScriptArgs,
    arg,
    check_device,
    command_line,
    run_main,
    write_json,
)
from experiments.harness.outputs import check_output, new_run_file, overwrite_arg
from planner.checkpoint import CheckpointError
from policies.sb3_agents import load_sb3_agent

ALGORITHMS = {"sac": SAC, "ppo": PPO}


def sb3_device(name: str) -> None:
    """``check_device``, plus SB3's own ``auto`` (CUDA when there is one, else CPU)."""
    if name != "auto":
        check_device(name)


@dataclass
class AgentArgs(ScriptArgs):
    """Arguments of train_agent.py."""

    env: str = arg("reacher", "task short name", tuple(task_names()))
    algo: str = arg("sac", "SB3 algorithm", tuple(ALGORITHMS))
    timesteps: int = arg(30000, "environment steps of training", minimum=1)
    max_seconds: float | None = arg(None, "stop training after this wall time (then save)")
    seed: int = arg(0, "seed of the agent and the env")
    eval_episodes: int = arg(10, "episodes of the final evaluation", minimum=1)
    threads: int = arg(1, "torch CPU threads", minimum=1)
    device: str = arg("cpu", "torch device of the agent (or auto: SB3 picks)", check=sb3_device)
    resume: str | None = arg(None, "an agent's zip to train further (default: a new agent)")
    out: str | None = arg(None, "zip path (default: <env>-<algo>.zip in a new folder of runs/)")
    overwrite: bool = overwrite_arg()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"--max-seconds must be > 0, got {self.max_seconds}")


class ProgressBar(BaseCallback):
    """A tqdm bar over training steps (SB3's own needs the rich package), with a time limit."""

    def __init__(self, total: int, label: str, max_seconds: float | None = None) -> None:
        super().__init__()
        self.bar = tqdm(total=total, desc=label, mininterval=5.0)
        self.deadline = None if max_seconds is None else time.perf_counter() + max_seconds

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return self.deadline is None or time.perf_counter() < self.deadline

    def _on_training_end(self) -> None:
        self.bar.close()


def check_resumed(model: Any, env: Any, args: AgentArgs) -> None:
    """Refuse to resume an agent that acts on another task (its spaces differ from the env's)."""
    for name in ("observation_space", "action_space"):
        if getattr(model, name).shape != getattr(env, name).shape:
            raise CheckpointError(
                f"--resume {args.resume}: its {name} {getattr(model, name).shape} is not "
                f"{args.env}'s {getattr(env, name).shape}: pass an agent trained on {args.env}"
            )


def output_path(args: AgentArgs) -> Path:
    """``--out``, or ``<env>-<algo>.zip`` in a new run folder."""
    name = f"{get_task(args.env).name}-{args.algo}.zip"
    return Path(args.out) if args.out else new_run_file("train_agent", name)


def main(args: AgentArgs) -> Path:
    """Train the agent, save it, evaluate it and write its record; return the zip path."""
    out = output_path(args)
    check_output(out, args.overwrite, (".json",))
    torch.set_num_threads(args.threads)
    spec = get_task(args.env)
    env = make_env(spec.name)
    if args.resume is None:
        model = ALGORITHMS[args.algo]("MlpPolicy", env, seed=args.seed, device=args.device)
    else:
        model = load_sb3_agent(args.resume, args.algo, args.device)
        check_resumed(model, env, args)
        model.set_env(env)
        model.set_random_seed(args.seed)
    started = time.perf_counter()
    bar = ProgressBar(args.timesteps, f"{spec.name} {args.algo}", args.max_seconds)
    model.learn(args.timesteps, callback=bar, reset_num_timesteps=args.resume is None)
    seconds = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    eval_env = make_env(spec.name)
    eval_env.reset(seed=args.seed + 10_000)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, warn=False)
    record = {
        "command": command_line(),
        "arguments": asdict(args),
        "train_seconds": seconds,
        "timesteps_trained": int(model.num_timesteps),
        "eval_return_mean": float(mean),
        "eval_return_std": float(std),
        "torch": torch.__version__,
    }
    if args.resume is not None:
        record["resumed_from"] = args.resume
    write_json(out.with_suffix(".json"), record)
    print(f"wrote {out}: return {mean:.1f} +- {std:.1f} over {args.eval_episodes} episodes")
    return out


if __name__ == "__main__":
    run_main(main, AgentArgs, __doc__)
