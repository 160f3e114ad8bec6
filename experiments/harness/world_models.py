"""The flags of world-model training that scripts share, and the configs they make.

train_world_model.py trains one model; improve_world_model.py trains one a round. Both take the
ensemble's shape and the training settings under the same flags, declared once here: a script's
arguments derive from :class:`WorldModelArgs` (its flags come first in ``--help``), and their
``--env`` is :func:`world_model_task_arg`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envs.registry import default_propagations, make_env
from envs.world_model_rules import check_world_model_task, winding_angles
from experiments.harness.cli import ScriptArgs, arg
from planner.world_model import PROPAGATIONS, TS1_PARTICLES, WorldModelConfig
from planner.world_model_training import WorldModelTraining
from policies.setup import WORLD_MODEL_REWARDS


def propagation_arg() -> Any:
    """The ``--propagation`` of a script that plans with a world model (None: the task's)."""
    return arg(
        None,
        "world model: ensemble mean, or PETS' trajectory sampling TS-1 (a member drawn anew "
        "every step) or TS-inf (one member per particle for the whole horizon) (default: the "
        f"task's: {default_propagations()})",
        PROPAGATIONS,
    )


def particles_arg() -> Any:
    """The ``--particles`` of a script that plans with a world model (None: the
    propagation's)."""
    return arg(
        None,
        f"world model: particles per candidate of ts1/tsinf (default: {TS1_PARTICLES} for ts1, "
        "the ensemble size for tsinf); a candidate counts once in the budget whatever the "
        "particles",
        minimum=1,
    )


def world_model_reward_arg() -> Any:
    """The ``--world-model-reward`` of a script that plans with a world model (None: the
    task's)."""
    return arg(
        None,
        "world model: the task's reward rule on predicted observations, or the model's learned "
        "reward head (default: the task's, envs/registry.py)",
        WORLD_MODEL_REWARDS,
    )


def world_model_task_arg(default: str) -> Any:
    """The ``--env`` of a world model's script: a task a world model can plan on
    (:func:`envs.world_model_rules.world_model_tasks`), another refused saying why."""
    return arg(
        default,
        "task the model is for: one whose termination its observation shows "
        "(envs/world_model_rules.py)",
        check=check_world_model_task,
    )


TRAINING = WorldModelTraining()
"""The training defaults, declared once (planner/world_model_training.py)."""


@dataclass
class WorldModelArgs(ScriptArgs):
    """The ensemble's shape and its training (planner/world_model_training.py)."""

    ensemble: int = arg(5, "E, ensemble members", minimum=1)
    hidden: int = arg(200, "hidden units per layer", minimum=1)
    depth: int = arg(3, "hidden layers", minimum=1)
    epochs: int = arg(
        TRAINING.epochs,
        "most epochs (early stopping on the validation split); 0: none, when continuing from a "
        "trained model",
        minimum=0,
    )
    patience: int = arg(
        TRAINING.patience, "epochs without a better validation error before stopping", minimum=1
    )
    batch_size: int = arg(TRAINING.batch_size, "batch size", minimum=1)
    learning_rate: float = arg(TRAINING.learning_rate, "AdamW learning rate")
    rollout_steps: int = arg(
        TRAINING.rollout_steps,
        "k: then fine-tune on the members' own k-step rollouts (1: no such stage)",
        minimum=1,
    )
    rollout_learning_rate: float = arg(
        TRAINING.rollout_learning_rate,
        "Adam learning rate of the rollout stage (fine-tuning a long-trained model wants less)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.world_model_training(0, "cpu")  # refuses a bad learning rate here, in one line

    def world_model_config(self, obs_dim: int, action_dim: int, task: str) -> WorldModelConfig:
        """The ensemble for task ``task``'s observations of O = ``obs_dim`` and actions of A =
        ``action_dim``, reading its winding angles on the circle
        (:func:`envs.world_model_rules.winding_angles`)."""
        env = make_env(task)
        try:
            periodic = winding_angles(env)
        finally:
            env.close()
        return WorldModelConfig(
            obs_dim=obs_dim,
            action_dim=action_dim,
            ensemble_size=self.ensemble,
            hidden=self.hidden,
            depth=self.depth,
            periodic=periodic,
        )

    def world_model_training(self, seed: int, device: str) -> WorldModelTraining:
        """The training settings, seeded with ``seed``, on ``device``."""
        return WorldModelTraining(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            rollout_steps=self.rollout_steps,
            rollout_learning_rate=self.rollout_learning_rate,
            seed=seed,
            device=device,
        )
