"""Trained stable-baselines3 agents: controllers to compare against (they have ``predict``), and
their critics as a planner's value at the horizon's end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from planner.checkpoint import CheckpointError

SB3_ALGORITHMS = ("sac", "ppo", "td3", "a2c", "ddpg")


def load_sb3_agent(path: str | Path, algorithm: str | None = None, device: str = "cpu") -> Any:
    """Load a stable-baselines3 agent saved as a zip; it already has SB3's ``predict`` contract.

    Args:
        path: the ``.zip`` written by ``model.save`` (experiments/train_agent.py).
        algorithm: one of ``SB3_ALGORITHMS``; default: the file name's last ``-`` part
            (``reacher-sac.zip`` -> ``sac``).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not a readable SB3 zip (truncated, corrupted, foreign).
    """
    import stable_baselines3

    path = Path(path)
    algorithm = (algorithm or path.stem.rsplit("-", 1)[-1]).lower()
    if algorithm not in SB3_ALGORITHMS:
        raise ValueError(
            f"cannot tell the SB3 algorithm of {path.name}: pass algorithm= one of {SB3_ALGORITHMS}"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"no SB3 agent at {path}: train one with experiments/train_agent.py --env ENV"
        )
    try:
        return getattr(stable_baselines3, algorithm.upper()).load(path, device=device)
    # SB3 signals a damaged zip with many types (ValueError, BadZipFile, KeyError, EOFError, ...).
    except Exception as exc:
        raise CheckpointError(
            f"{path}: cannot be read as a {algorithm.upper()} agent (truncated or corrupted?): "
            f"{exc}; train it again with experiments/train_agent.py"
        ) from exc


class CriticValue:
    """An SB3 actor-critic agent's value of an observation, ``V(s) = min_i Q_i(s, mu(s))`` with
    ``mu`` its deterministic action: what the agent expects to earn from ``s`` on (discounted
    by its ``gamma``), a terminal value for planning (:data:`planner.objective.TerminalValue`).

    Args:
        agent: a loaded SB3 agent with an actor and a Q critic (SAC, TD3, DDPG).
        weight: the value is multiplied by it (finite: PlanningSetup checks it, and the
            objective refuses a non-finite value).
    """

    def __init__(self, agent: Any, weight: float = 1.0) -> None:
        if not all(hasattr(agent, name) for name in ("actor", "critic")):
            raise ValueError(
                f"{type(agent).__name__} has no actor and Q critic to value a state with: "
                "pass a SAC, TD3 or DDPG agent"
            )
        self.agent, self.weight = agent, float(weight)
        self.obs_dim = int(agent.observation_space.shape[0])

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        """``values (N,)`` of ``observations (N, O)``."""
        observations = np.asarray(observations, dtype=np.float32)
        if observations.ndim != 2 or observations.shape[1] != self.obs_dim:
            raise ValueError(
                f"the agent values observations (N, {self.obs_dim}), got {observations.shape}: "
                "was it trained on another task?"
            )
        policy = self.agent.policy
        with torch.no_grad():
            obs = torch.as_tensor(observations, device=policy.device)
            # the actor's action in the squashed [-1, 1] space the critic was trained on
            q = torch.min(*policy.critic(obs, policy._predict(obs, deterministic=True)))
        return self.weight * q.squeeze(-1).cpu().numpy().astype(np.float64)
