"""DiffusionPrior: a trained denoiser + noise schedule + data normaliser, decoding latents to
trajectories.

``prior.decode(z (N, H, C), steps=S) -> (N, H, C)`` is the map ``f(z)`` the Diffusion Elites
search explores: deterministic DDIM, a pure function of the latent, in data units and clamped
to the range the training data covered. ``save``/``load`` keep everything in one checkpoint file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from planner.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from planner.denoiser import DenoiserConfig, build_denoiser
from planner.diffusion import NoiseSchedule, ddim_decode, ddim_invert, ddim_levels
from planner.knots import KnotSchedule
from planner.normalizer import Normalizer

_CONTENTS = ("denoiser_config", "schedule", "state_dict", "normalizer", "cond_normalizer")


class TrajectoryShape:
    """What a decoder's network fixes, shared by :class:`DiffusionPrior` and its one-call
    student (:class:`~planner.distilled.DistilledPrior`): the architecture, the shape of a
    latent and of a trajectory ``(H, C)``, the device, and the check of a batch of either."""

    _config: DenoiserConfig
    _device: torch.device
    model: nn.Module
    schedule: NoiseSchedule
    normalizer: Normalizer
    _knot_schedule: KnotSchedule | None = None

    @property
    def config(self) -> DenoiserConfig:
        """The denoiser's architecture."""
        return self._config

    @property
    def horizon(self) -> int:
        """Trajectory length: K knots of a plan (H env steps when a knot per step)."""
        return self._config.horizon

    @property
    def knot_schedule(self) -> KnotSchedule:
        """How a decoded trajectory's K knots become H env actions: what the prior was trained
        for, saved with it (a file that records none has a knot per env step)."""
        return self._knot_schedule or KnotSchedule(self.horizon)

    @knot_schedule.setter
    def knot_schedule(self, schedule: KnotSchedule) -> None:
        if schedule.knots != self.horizon:
            raise ValueError(
                f"the prior decodes {self.horizon} knots, the schedule interpolates "
                f"{schedule.knots}: train the prior on knots of that schedule"
            )
        self._knot_schedule = schedule

    @property
    def channels(self) -> int:
        """C, values per step."""
        return self._config.channels

    @property
    def latent_shape(self) -> tuple[int, int]:
        """(H, C): one latent has the shape of one trajectory."""
        return (self.horizon, self.channels)

    @property
    def cond_dim(self) -> int:
        """K, conditioning vector length (0 = unconditioned)."""
        return self._config.cond_dim

    @property
    def device(self) -> torch.device:
        """Where the model runs and results are returned."""
        return self._device

    def _trajectories(self, values: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
        """Check and convert ``values (N, H, C)`` to a float32 tensor on the prior's device."""
        values = torch.as_tensor(values, dtype=torch.float32, device=self._device)
        if values.ndim != 3 or values.shape[1:] != self.latent_shape or values.shape[0] == 0:
            hint = " (add a batch axis: values[None])" if values.shape == self.latent_shape else ""
            raise ValueError(
                f"{name} must be (N, H={self.horizon}, C={self.channels}) with N >= 1, "
                f"got shape {tuple(values.shape)}{hint}"
            )
        if not bool(torch.isfinite(values).all()):
            raise ValueError(f"{name} contain NaN or inf; pass finite values")
        return values

    def _network_contents(self) -> dict:
        """The checkpoint entries of the network: architecture, schedule, weights, normaliser
        (read back by :func:`read_network`)."""
        return {
            "denoiser_config": dataclasses.asdict(self._config),
            "schedule": {"name": self.schedule.name, "train_steps": self.schedule.train_steps},
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "normalizer": self.normalizer.state_dict(),
            "knot_schedule": {
                "horizon": self.knot_schedule.horizon,
                "interpolation": self.knot_schedule.interpolation,
            },
        }

    def _read_knot_schedule(self, payload: dict) -> None:
        """Set :attr:`knot_schedule` from a checkpoint's payload (older files record none)."""
        recorded = payload.get("knot_schedule")
        if recorded is not None:
            self.knot_schedule = KnotSchedule(
                recorded["horizon"], self.horizon, recorded["interpolation"]
            )


def read_network(payload: dict) -> tuple[DenoiserConfig, NoiseSchedule, nn.Module, Normalizer]:
    """Architecture, schedule, network (with its weights) and normaliser from a checkpoint's
    payload written with :meth:`TrajectoryShape._network_contents`.

    Raises KeyError, TypeError, ValueError or RuntimeError on inconsistent contents (the loaders
    turn them into a CheckpointError naming the file).
    """
    config = DenoiserConfig(**payload["denoiser_config"])
    if payload["schedule"]["name"] != NoiseSchedule.name:
        raise ValueError(f"unknown noise schedule {payload['schedule']['name']!r}")
    schedule = NoiseSchedule(payload["schedule"]["train_steps"])
    model = build_denoiser(config)
    model.load_state_dict(payload["state_dict"])
    return config, schedule, model, Normalizer(**payload["normalizer"])


class DiffusionPrior(TrajectoryShape):
    """Denoiser + noise schedule + :class:`Normalizer`: latents <-> trajectories ``(N, H, C)``.

    ``model`` defaults to a fresh ``build_denoiser(denoiser_config)``. ``cond_normalizer`` maps
    the conditioning vector ``(K,)`` to model space when ``cond_dim > 0`` (None = identity).
    ``task`` names the task the prior was trained for (``"reacher"``); it is saved with the
    checkpoint so that loading it for another task can be refused (None: not recorded).
    """

    def __init__(
        self,
        denoiser_config: DenoiserConfig,
        normalizer: Normalizer,
        schedule: NoiseSchedule | None = None,
        model: nn.Module | None = None,
        device: torch.device | str = "cpu",
        cond_normalizer: Normalizer | None = None,
        task: str | None = None,
    ) -> None:
        if not isinstance(denoiser_config, DenoiserConfig):
            raise TypeError(
                f"denoiser_config must be a DenoiserConfig, got {type(denoiser_config).__name__}"
            )
        if normalizer.channels != denoiser_config.channels:
            raise ValueError(
                f"normalizer has {normalizer.channels} channels but the denoiser expects "
                f"C={denoiser_config.channels}; fit the normalizer on the same trajectories"
            )
        if cond_normalizer is not None and cond_normalizer.channels != denoiser_config.cond_dim:
            raise ValueError(
                f"cond_normalizer has {cond_normalizer.channels} channels but cond_dim="
                f"{denoiser_config.cond_dim}"
            )
        self._config = denoiser_config
        self.schedule = schedule if schedule is not None else NoiseSchedule()
        self.model = (model if model is not None else build_denoiser(denoiser_config)).eval()
        self.normalizer = normalizer
        self.cond_normalizer = cond_normalizer
        self.task = task
        self.to(device)

    decodes_in_one_call = False
    """Decoding costs one network call per DDIM step, so ``steps`` changes the trajectory."""

    def to(self, device: torch.device | str) -> DiffusionPrior:
        """Move model and normalisers to ``device`` (in place); returns self."""
        self._device = torch.device(device)
        self.model.to(self._device)
        self.normalizer = self.normalizer.to(self._device)
        if self.cond_normalizer is not None:
            self.cond_normalizer = self.cond_normalizer.to(self._device)
        return self

    def _cond(self, cond: torch.Tensor | np.ndarray | None, batch: int) -> torch.Tensor | None:
        """Check ``cond`` ((K,) shared by all N, or (N, K)) and map it to model space."""
        if self.cond_dim == 0:
            if cond is not None:
                raise ValueError("this prior is unconditioned (cond_dim=0); pass cond=None")
            return None
        if cond is None:
            raise ValueError(
                f"this prior is conditioned: pass cond of shape ({self.cond_dim},) or (N, K)"
            )
        cond = torch.as_tensor(cond, dtype=torch.float32, device=self._device)
        if cond.shape == (self.cond_dim,):
            cond = cond.expand(batch, -1)
        if cond.shape != (batch, self.cond_dim):
            raise ValueError(
                f"cond must be ({self.cond_dim},) or (N={batch}, K={self.cond_dim}), "
                f"got {tuple(cond.shape)}"
            )
        return cond if self.cond_normalizer is None else self.cond_normalizer.normalize(cond)

    def _known(
        self, known: tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray], batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Check ``known = (mask, values)`` and broadcast both to ``(N, H, C)``."""
        if not isinstance(known, tuple) or len(known) != 2:
            raise TypeError(f"known must be a (mask, values) pair, got {type(known).__name__}")
        mask = torch.as_tensor(known[0], device=self._device)
        values = torch.as_tensor(known[1], dtype=torch.float32, device=self._device)
        if mask.dtype != torch.bool:
            raise TypeError(f"known mask must be a bool tensor/array, got dtype {mask.dtype}")
        shape = (batch, *self.latent_shape)
        try:
            mask, values = mask.expand(shape), values.expand(shape)
        except RuntimeError as exc:
            raise ValueError(
                f"known mask {tuple(mask.shape)} and values {tuple(values.shape)} must "
                f"broadcast to (N, H, C) = {shape}, e.g. both (H, C)"
            ) from exc
        if not bool(torch.isfinite(values[mask]).all()):
            raise ValueError("known values contain NaN or inf where the mask is set")
        return mask, values

    @torch.inference_mode()
    def decode(
        self,
        latents: torch.Tensor | np.ndarray,
        steps: int,
        cond: torch.Tensor | np.ndarray | None = None,
        known: tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray] | None = None,
    ) -> torch.Tensor:
        """Latents ``(N, H, C)`` -> trajectories ``(N, H, C)`` in data units; S = ``steps``.

        Deterministic: the same latent gives the same trajectory, alone or in any batch (up
        to float rounding, ~1e-6). Outputs are clamped to the data bounds of the normaliser
        (so an action prior returns actions in [-1, 1]). Returns a tensor on ``self.device``.

        ``known = (mask, values)`` inpaints: ``mask`` (bool) and ``values`` (data units) broadcast
        to ``(N, H, C)``; the masked entries are imposed after every denoising step by
        replacement in model space (:func:`~planner.diffusion.ddim_decode`), and equal ``values``
        exactly in the result (written back in data units, so neither float rounding nor the
        clamp to the data bounds moves them).
        """
        latents = self._trajectories(latents, "latents")
        cond = self._cond(cond, latents.shape[0])
        if known is None:
            return self._decode(latents, steps, cond)
        mask, values = self._known(known, latents.shape[0])
        model_known = (mask, self.normalizer.normalize(values))
        decoded = self.normalizer.denormalize(
            ddim_decode(self.model, latents, self.schedule, steps, cond, known=model_known)
        )
        return torch.where(mask, values, decoded)

    def decoding(
        self, steps: int, cond: torch.Tensor | np.ndarray | None = None
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """:meth:`decode` at ``steps`` for one planning call, checked once here.

        Returns ``decode(latents (N, H, C)) -> (N, H, C)``: the same trajectories as
        :meth:`decode`, bit for bit, without checking its latents, which must be a finite
        float32 ``(N, H, C)`` tensor on :attr:`device` (as a planner's search draws them).
        ``cond`` is the one vector ``(K,)`` shared by every latent (None if unconditioned).
        """
        ddim_levels(self.schedule, steps)  # checks steps
        model_cond = self._cond(cond, 1)

        @torch.inference_mode()
        def decode(latents: torch.Tensor) -> torch.Tensor:
            rows = None if model_cond is None else model_cond.expand(latents.shape[0], -1)
            return self._decode(latents, steps, rows)

        return decode

    def _decode(self, latents: torch.Tensor, steps: int, cond: torch.Tensor | None) -> torch.Tensor:
        """DDIM decode of checked latents with model-space ``cond (N, K)``, in data units."""
        return self.normalizer.denormalize(
            ddim_decode(self.model, latents, self.schedule, steps, cond)
        )

    @torch.inference_mode()
    def encode(
        self,
        trajectories: torch.Tensor | np.ndarray,
        steps: int,
        cond: torch.Tensor | np.ndarray | None = None,
    ) -> torch.Tensor:
        """Trajectories ``(N, H, C)`` in data units -> latents ``(N, H, C)`` (DDIM inversion)."""
        trajectories = self._trajectories(trajectories, "trajectories")
        cond = self._cond(cond, trajectories.shape[0])
        x0 = self.normalizer.normalize(trajectories)
        return ddim_invert(self.model, x0, self.schedule, steps, cond)

    def save(self, path: str | os.PathLike) -> Path:
        """Write config, weights, normalisers, schedule and task to one file atomically.

        Returns the path. See :mod:`planner.checkpoint` for the format.
        """
        contents = {
            **self._network_contents(),
            "cond_normalizer": None
            if self.cond_normalizer is None
            else self.cond_normalizer.state_dict(),
        }
        return save_checkpoint(path, "prior", contents, task=self.task)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        device: torch.device | str = "cpu",
        task: str | None = None,
    ) -> DiffusionPrior:
        """Read a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``).

        Args:
            path: the checkpoint file.
            device: where the model runs.
            task: the task the caller plans on (e.g. ``"reacher"``); a prior recorded for
                another task is refused. None accepts any.

        Raises:
            FileNotFoundError: no file at ``path``.
            CheckpointError: naming the file and the problem if it is truncated, corrupted,
                incomplete, of another format, or trained for another task.
        """
        payload = load_checkpoint(path, "prior", _CONTENTS, task=task)
        try:
            config, schedule, model, normalizer = read_network(payload)
            cond_state = payload["cond_normalizer"]
            cond_normalizer = None if cond_state is None else Normalizer(**cond_state)
            prior = cls(config, normalizer, schedule, model, "cpu", cond_normalizer)
            prior._read_knot_schedule(payload)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: inconsistent checkpoint contents: {exc}") from exc
        prior.task = payload["task"]
        return prior.to(device)
