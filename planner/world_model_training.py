"""Train a :class:`~planner.world_model.WorldModel` on recorded transitions.

Gaussian negative log-likelihood of each member on the normalised targets, plus a small push of
the learned log-variance bounds towards each other (PETS), AdamW, a held-out validation split
scored by the mean-prediction squared error, early stopping on it (the best epoch's weights are
returned) and a tqdm progress bar. Each member sees the training transitions in its own order
(and starts from its own initialisation), which is what makes the members disagree away from the
data. One seed drives the split, the initialisation and the batches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from planner.normalizer import Normalizer
from planner.validation import check_count
from planner.world_model import GaussianEnsemble, WorldModel, WorldModelConfig


@dataclass(frozen=True)
class WorldModelTraining:
    """How to train the ensemble; defaults suit ten thousand transitions on a CPU."""

    epochs: int = 1000
    """Most passes over the training transitions, a cap: early stopping (``patience``) ends
    training. At batch 256 a few thousand transitions make few steps per epoch; 200 epochs
    stopped half-cheetah's first models of improve_world_model.py still improving (validation
    error 0.048, converged 0.040 after 461 epochs)."""
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 5e-5
    val_fraction: float = 0.1
    """Share of transitions held out for validation and early stopping."""
    patience: int = 15
    """Stop after this many epochs without a lower validation error."""
    logvar_bound_weight: float = 0.01
    """Weight of ``sum(max_logvar) - sum(min_logvar)`` in the loss."""
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            check_count(name, getattr(self, name))
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not self.learning_rate > 0 or not self.weight_decay >= 0:
            raise ValueError(
                f"learning_rate must be > 0 and weight_decay >= 0, got {self.learning_rate} "
                f"and {self.weight_decay}"
            )


def train_world_model(
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    next_observations: np.ndarray,
    config: WorldModelConfig,
    training: WorldModelTraining = WorldModelTraining(),
    task: str | None = None,
    progress: bool = True,
) -> tuple[WorldModel, dict]:
    """Fit the ensemble to M transitions.

    Args:
        observations, next_observations: (M, O). actions: (M, A) in [-1, 1]. rewards: (M,).
        config: the ensemble's shape (its obs_dim and action_dim must match the data).
        training: optimisation settings.
        task: recorded in the model (and its checkpoints).
        progress: show a tqdm bar.

    Returns:
        the model with the best validation epoch's weights, and the history: per epoch
        ``train_loss`` (NLL), ``val_mse`` (normalised targets, mean prediction of each member),
        and ``initial_val_mse`` (before training), ``best_epoch``, ``best_val_mse``,
        ``stopped_early``.
    """
    inputs, targets = _transitions(observations, actions, rewards, next_observations, config)
    device = torch.device(training.device)
    rng = np.random.default_rng(training.seed)
    order = rng.permutation(len(inputs))
    n_val = max(1, round(training.val_fraction * len(inputs)))
    val_rows, train_rows = order[:n_val], order[n_val:]
    input_normalizer = Normalizer.fit(inputs[train_rows])
    target_normalizer = Normalizer.fit(targets[train_rows])
    x = input_normalizer.normalize(torch.as_tensor(inputs)).to(device)
    y = target_normalizer.normalize(torch.as_tensor(targets)).to(device)
    x_train, y_train, x_val, y_val = x[train_rows], y[train_rows], x[val_rows], y[val_rows]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(training.seed)
        network = GaussianEnsemble(config).to(device)
    generator = torch.Generator(device="cpu").manual_seed(training.seed)
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay
    )

    members = config.ensemble_size
    history: dict = {"epoch": [], "train_loss": [], "val_mse": []}
    initial_val_mse = _validation_mse(network, members, x_val, y_val)
    best = (initial_val_mse, 0, copy.deepcopy(network.state_dict()))
    bar = tqdm(range(1, training.epochs + 1), desc="world model", disable=not progress)
    for epoch in bar:
        loss = _train_epoch(network, members, optimizer, x_train, y_train, generator, training)
        score = _validation_mse(network, members, x_val, y_val)
        history["epoch"].append(epoch)
        history["train_loss"].append(loss)
        history["val_mse"].append(score)
        bar.set_postfix(loss=f"{loss:.3f}", val=f"{score:.4f}")
        if score < best[0]:
            best = (score, epoch, copy.deepcopy(network.state_dict()))
        elif epoch - best[1] >= training.patience:
            break
    network.load_state_dict(best[2])
    history |= {
        "initial_val_mse": initial_val_mse,
        "best_epoch": best[1],
        "best_val_mse": best[0],
        "stopped_early": history["epoch"][-1] < training.epochs,
    }
    model = WorldModel(config, input_normalizer, target_normalizer, network, task, device)
    return model, history


def _transitions(
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    next_observations: np.ndarray,
    config: WorldModelConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """The network's inputs ``(M, O + A)`` (observation, action) and targets ``(M, O + 1)``
    (change of observation, reward), checked against ``config``'s sizes and for finiteness."""
    inputs = np.concatenate([observations, actions], axis=1).astype(np.float32)
    targets = np.concatenate(
        [next_observations - observations, np.asarray(rewards).reshape(-1, 1)], axis=1
    ).astype(np.float32)
    expected = config.obs_dim + config.action_dim
    if inputs.shape[1] != expected or len(targets) != len(inputs) or len(inputs) < 2:
        raise ValueError(
            f"need M >= 2 transitions of O={config.obs_dim} observations and A="
            f"{config.action_dim} actions; got inputs {inputs.shape}, targets {targets.shape}"
        )
    if not (np.isfinite(inputs).all() and np.isfinite(targets).all()):
        raise ValueError("transitions must be finite; drop rows with NaN or inf first")
    return inputs, targets


def _train_epoch(
    network: GaussianEnsemble,
    members: int,
    optimizer: torch.optim.Optimizer,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    generator: torch.Generator,
    training: WorldModelTraining,
) -> float:
    """One pass over the training transitions ``x_train (M, O + A)``, ``y_train (M, O + 1)``,
    each of the E ``members`` in its own order drawn from ``generator``; the mean of the
    batches' losses."""
    shuffles = torch.argsort(torch.rand(members, len(x_train), generator=generator), dim=1)
    losses = []
    for begin in range(0, len(x_train), training.batch_size):
        rows = shuffles[:, begin : begin + training.batch_size].to(x_train.device)
        mean, logvar = network(x_train[rows])
        nll = ((mean - y_train[rows]).square() * torch.exp(-logvar) + logvar).mean()
        bounds = network.max_logvar.sum() - network.min_logvar.sum()
        loss = nll + training.logvar_bound_weight * bounds
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def _validation_mse(
    network: GaussianEnsemble, members: int, x_val: torch.Tensor, y_val: torch.Tensor
) -> float:
    """The squared error of each of the E ``members``' mean prediction on the held-out
    transitions, averaged (normalised targets); the network is left in training mode."""
    network.eval()
    with torch.no_grad():
        mean, _ = network(x_val.expand(members, *x_val.shape))
    network.train()
    return float((mean - y_val).square().mean())
