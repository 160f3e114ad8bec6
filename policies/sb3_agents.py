"""Trained stable-baselines3 agents as controllers to compare against (they have ``predict``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
