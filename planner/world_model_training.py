"""Train a :class:`~planner.world_model.WorldModel` on recorded transitions.

Gaussian negative log-likelihood of each member on the normalised targets, plus a small push of
the learned log-variance bounds towards each other (PETS), AdamW, a held-out validation split
scored by the mean-prediction squared error, early stopping on it (the best epoch's weights are
returned) and a tqdm progress bar. Each member sees the training transitions in its own order
(and starts from its own initialisation), which is what makes the members disagree away from the
data. One seed drives the split, the initialisation and the batches.

With ``rollout_steps`` k > 1 a second stage follows: each member is fine-tuned on its own k-step
open-loop rollouts (its mean prediction fed back as the next input, along the recorded actions),
the loss being the per-step squared error of the predicted observation and reward, each divided
by the target's scale. That is the error a planner meets: one-step training never sees a member's
own mistakes as inputs. Windows of k consecutive transitions never cross an episode (a row
continues the one before it when its observation is that row's next observation); a share of the
episodes is held out whole and chooses the stage's best epoch. On half-cheetah, k = 8 lowered
the 16-step error by 7-35% in every round of improve_world_model.py, but planned no better on
validation seeds (-24 +- 129 over 15 pairs; +87 +- 39 on one model), so it is off by default
(results/world-model-loop/).

Training can also continue from a trained model (``start``): its weights and normalisers are the
starting point, and with ``epochs = 0`` only the rollout stage runs, a fine-tune that costs a
fraction of training anew.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from planner.normalizer import Normalizer
from planner.validation import check_count
from planner.world_model import GaussianEnsemble, WorldModel, WorldModelConfig, network_inputs


@dataclass(frozen=True)
class WorldModelTraining:
    """How to train the ensemble; defaults suit ten thousand transitions on a CPU."""

    epochs: int = 1000
    """Most passes over the training transitions, a cap: early stopping (``patience``) ends
    training. At batch 256 a few thousand transitions make few steps per epoch; 200 epochs
    stopped half-cheetah's first models of improve_world_model.py still improving (validation
    error 0.048, converged 0.040 after 461 epochs). 0: no first stage, only when continuing
    from a trained model."""
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 5e-5
    val_fraction: float = 0.1
    """Share of transitions held out for validation and early stopping."""
    patience: int = 15
    """Stop after this many epochs without a lower validation error."""
    logvar_bound_weight: float = 0.01
    """Weight of ``sum(max_logvar) - sum(min_logvar)`` in the loss."""
    rollout_steps: int = 1
    """k of the rollout stage that follows (1: none); see the module's doc."""
    rollout_learning_rate: float = 1e-4
    """Adam's learning rate in the rollout stage: a fine-tune, ten times below the first's. A
    model trained long on much data wants less: on half-cheetah's shipped model (a million
    transitions, 60 epochs) 1e-4 raised the held-out 16-step rollout loss (0.714 -> 0.85-0.93)
    and 1e-5 lowered it (-> 0.562, results/world-model-candidates/rollout/)."""
    rollout_epochs: int = 100
    """Most passes over the rollout stage's windows (early stopping ends it first)."""
    rollout_patience: int = 5
    """Stop the rollout stage after this many epochs without a lower held-out rollout loss."""
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_count("epochs", self.epochs, minimum=0)
        counts = ("batch_size", "patience", "rollout_steps", "rollout_epochs", "rollout_patience")
        for name in counts:
            check_count(name, getattr(self, name))
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not self.learning_rate > 0 or not self.weight_decay >= 0:
            raise ValueError(
                f"learning_rate must be > 0 and weight_decay >= 0, got {self.learning_rate} "
                f"and {self.weight_decay}"
            )
        if not self.rollout_learning_rate > 0:
            raise ValueError(f"rollout_learning_rate must be > 0, got {self.rollout_learning_rate}")


def train_world_model(
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    next_observations: np.ndarray,
    config: WorldModelConfig,
    training: WorldModelTraining = WorldModelTraining(),
    task: str | None = None,
    progress: bool = True,
    start: WorldModel | None = None,
) -> tuple[WorldModel, dict]:
    """Fit the ensemble to M transitions.

    Args:
        observations, next_observations: (M, O). actions: (M, A) in [-1, 1]. rewards: (M,).
        config: the ensemble's shape (its obs_dim and action_dim must match the data).
        training: optimisation settings.
        task: recorded in the model (and its checkpoints).
        progress: show a tqdm bar.
        start: a trained model of shape ``config`` to continue from: a copy of its weights and
            its normalisers (not refitted: the weights are tied to them) are the starting point;
            ``start`` itself is left as it is. None: a fresh ensemble, seeded.

    Returns:
        the model with the best validation epoch's weights, and the history: per epoch
        ``train_loss`` (NLL), ``val_mse`` (normalised targets, mean prediction of each member),
        and ``initial_val_mse`` (before training), ``best_epoch``, ``best_val_mse``,
        ``stopped_early``; with ``training.rollout_steps`` > 1 also ``rollout``, the rollout
        stage's own (:func:`_rollout_stage`).

    Raises:
        ValueError: mismatched or non-finite transitions; with ``rollout_steps`` k > 1, data
            without two episodes of at least k transitions (one trains, one is held out); a
            ``start`` of another shape than ``config``; ``epochs = 0`` without ``start``.
    """
    _check_start(start, config, training)
    inputs, targets = _transitions(observations, actions, rewards, next_observations, config)
    if training.rollout_steps > 1:  # refused before the first stage spends its minutes
        windows = _rollout_windows(observations, next_observations, training)
    device = torch.device(training.device)
    rng = np.random.default_rng(training.seed)
    order = rng.permutation(len(inputs))
    n_val = max(1, round(training.val_fraction * len(inputs)))
    val_rows, train_rows = order[:n_val], order[n_val:]
    if start is None:
        input_normalizer = Normalizer.fit(inputs[train_rows])
        target_normalizer = Normalizer.fit(targets[train_rows])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(training.seed)
            network = GaussianEnsemble(config).to(device)
    else:
        input_normalizer = start.input_normalizer.to("cpu")
        target_normalizer = start.target_normalizer.to("cpu")
        network = copy.deepcopy(start.network).to(device).train()
    x = input_normalizer.normalize(torch.as_tensor(inputs)).to(device)
    y = target_normalizer.normalize(torch.as_tensor(targets)).to(device)
    x_train, y_train, x_val, y_val = x[train_rows], y[train_rows], x[val_rows], y[val_rows]

    generator = torch.Generator(device="cpu").manual_seed(training.seed)
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay
    )

    members = config.ensemble_size
    history = _early_stopping(
        network,
        lambda: _train_epoch(network, members, optimizer, x_train, y_train, generator, training),
        lambda: _validation_mse(network, members, x_val, y_val),
        training.epochs,
        training.patience,
        "val_mse",
        "world model" if progress and training.epochs else None,
    )
    history["stopped_early"] = len(history["epoch"]) < training.epochs
    model = WorldModel(config, input_normalizer, target_normalizer, network, task, device)
    if training.rollout_steps > 1:
        recorded = (observations, actions, rewards, next_observations)
        history["rollout"] = _rollout_stage(model, recorded, windows, training, progress)
    return model, history


def _check_start(
    start: WorldModel | None, config: WorldModelConfig, training: WorldModelTraining
) -> None:
    """Raise ValueError for a ``start`` model of another shape than ``config``, or for
    ``training.epochs = 0`` with no ``start`` (nothing would be trained)."""
    if start is None and training.epochs == 0:
        raise ValueError("epochs = 0 trains nothing: give a start model, or epochs >= 1")
    if start is not None and start.config != config:
        raise ValueError(
            f"the start model's shape {start.config} differs from the one asked for, {config}: "
            "ask for the start model's ensemble size, hidden units and depth"
        )


def _transitions(
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    next_observations: np.ndarray,
    config: WorldModelConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """The network's inputs ``(M, I)`` (:func:`~planner.world_model.network_inputs` of the
    observation and action) and targets ``(M, O + 1)`` (change of observation, reward), checked
    against ``config``'s sizes and for finiteness."""
    observations, actions = np.asarray(observations), np.asarray(actions)
    targets = np.concatenate(
        [next_observations - observations, np.asarray(rewards).reshape(-1, 1)], axis=1
    ).astype(np.float32)
    sizes = (observations.shape[1:], actions.shape[1:])
    if (
        sizes != ((config.obs_dim,), (config.action_dim,))
        or len(actions) != len(observations)
        or len(targets) != len(observations)
        or len(observations) < 2
    ):
        raise ValueError(
            f"need M >= 2 transitions of O={config.obs_dim} observations and A="
            f"{config.action_dim} actions; got observations {observations.shape}, actions "
            f"{actions.shape}, targets {targets.shape}"
        )
    inputs = (
        network_inputs(
            torch.as_tensor(observations, dtype=torch.float64),
            torch.as_tensor(actions, dtype=torch.float64),
            config.periodic,
        )
        .numpy()
        .astype(np.float32)
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


def _rollout_windows(
    observations: np.ndarray, next_observations: np.ndarray, training: WorldModelTraining
) -> tuple[np.ndarray, np.ndarray]:
    """The first rows of the windows of k = ``training.rollout_steps`` consecutive transitions of
    one episode, split into training and held-out windows by whole episodes (a seeded
    ``val_fraction`` of them, at least one). A row starts a new episode unless its observation
    equals the previous row's next observation."""
    k = training.rollout_steps
    continues = np.all(observations[1:] == next_observations[:-1], axis=1)
    episode = np.concatenate([[0], np.cumsum(~continues)])
    starts = np.flatnonzero(episode[: len(episode) - k + 1] == episode[k - 1 :])
    episodes = np.unique(episode[starts])
    if len(episodes) < 2:
        raise ValueError(
            f"the rollout loss over k = {k} steps needs two episodes of >= {k} transitions in "
            f"a row (one trains, one is held out), found {len(episodes)}: record more episodes "
            "or lower rollout_steps (1: no rollout stage)"
        )
    rng = np.random.default_rng(training.seed)
    n_held = max(1, round(training.val_fraction * len(episodes)))
    held = np.isin(episode[starts], rng.choice(episodes, n_held, replace=False))
    return starts[~held], starts[held]


def _rollout_stage(
    model: WorldModel,
    recorded: tuple[np.ndarray, ...],
    windows: tuple[np.ndarray, np.ndarray],
    training: WorldModelTraining,
    progress: bool,
) -> dict:
    """Fine-tune ``model``'s network in place on its members' k-step rollouts along the
    ``recorded`` (observations, actions, rewards, next observations) from the first rows
    ``windows`` (training, held out), keeping the epoch with the lowest held-out loss. The
    normalisers stay as the first stage fitted them. Returns the stage's history: per epoch
    ``train_loss`` and ``val_loss``, and ``initial_val_loss``, ``best_epoch``, ``best_val_loss``,
    ``windows`` (training, held out)."""
    device = torch.device(training.device)
    tensors = tuple(torch.as_tensor(x, dtype=torch.float32, device=device) for x in recorded)
    train_starts, val_starts = windows
    network = model.network
    optimizer = torch.optim.Adam(network.parameters(), lr=training.rollout_learning_rate)
    rng = np.random.default_rng(training.seed)

    def held_out_loss() -> float:
        network.eval()
        with torch.no_grad():
            loss = _rollout_loss(model, tensors, val_starts, training.rollout_steps)
        network.train()
        return float(loss)

    def train_epoch() -> float:
        order = rng.permutation(train_starts)
        losses = []
        for begin in range(0, len(order), training.batch_size):
            loss = _rollout_loss(
                model, tensors, order[begin : begin + training.batch_size], training.rollout_steps
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return float(np.mean(losses))

    label = f"world model, {training.rollout_steps}-step rollouts"
    history = _early_stopping(
        network,
        train_epoch,
        held_out_loss,
        training.rollout_epochs,
        training.rollout_patience,
        "val_loss",
        label if progress else None,
    )
    network.eval()
    return history | {"windows": [len(train_starts), len(val_starts)]}


def _early_stopping(
    network: torch.nn.Module,
    train_epoch: Callable[[], float],
    validate: Callable[[], float],
    epochs: int,
    patience: int,
    score: str,
    progress: str | None,
) -> dict:
    """Run ``train_epoch`` (returns its mean loss) for at most ``epochs`` epochs, until
    ``validate``'s score has not fallen for ``patience`` epochs, then load the best epoch's
    weights into ``network``; ``progress``: the label of a tqdm bar (None: no bar). Returns per
    epoch ``epoch``, ``train_loss`` and ``score``, and ``initial_<score>`` (before training),
    ``best_epoch``, ``best_<score>``."""
    bar = tqdm(range(1, epochs + 1), desc=progress, disable=progress is None)
    initial = validate()
    best = (initial, 0, copy.deepcopy(network.state_dict()))
    history: dict = {"epoch": [], "train_loss": [], score: []}
    for epoch in bar:
        loss = train_epoch()
        value = validate()
        history["epoch"].append(epoch)
        history["train_loss"].append(loss)
        history[score].append(value)
        bar.set_postfix(loss=f"{loss:.3f}", val=f"{value:.4f}")
        if value < best[0]:
            best = (value, epoch, copy.deepcopy(network.state_dict()))
        elif epoch - best[1] >= patience:
            break
    network.load_state_dict(best[2])
    return history | {f"initial_{score}": initial, "best_epoch": best[1], f"best_{score}": best[0]}


def _rollout_loss(
    model: WorldModel, recorded: tuple[torch.Tensor, ...], starts: np.ndarray, k: int
) -> torch.Tensor:
    """Each member rolls its mean prediction k steps from the recorded observation at every row
    of ``starts`` along the recorded actions; the mean over steps, members and rows of the squared
    errors of the predicted observation and reward, each divided by its target's scale."""
    observations, actions, rewards, next_observations = recorded
    rows = torch.as_tensor(starts, device=observations.device)
    members = model.ensemble_size
    inputs, targets = model.input_normalizer, model.target_normalizer
    state = observations[rows].expand(members, -1, -1)
    total = torch.zeros((), device=observations.device)
    for step in range(k):
        action = actions[rows + step].expand(members, -1, -1)
        x = network_inputs(state, action, model.config.periodic)
        mean, _ = model.network(inputs.normalize(x))
        change = mean * targets.scale + targets.center
        state = state + change[..., :-1]
        state_error = (state - next_observations[rows + step]) / targets.scale[:-1]
        reward_error = (change[..., -1] - rewards[rows + step]) / targets.scale[-1]
        total = total + state_error.square().mean() + reward_error.square().mean()
    return total / k
