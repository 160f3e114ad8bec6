"""DiffusionPrior: a trained denoiser + noise schedule + data normaliser, decoding latents to
trajectories.

``prior.decode(z (N, H, C), steps=S) -> (N, H, C)`` is the map ``f(z)`` the Diffusion Elites
search explores: deterministic DDIM, a pure function of the latent, in data units and clamped
to the range the training data covered. ``save``/``load`` keep everything in one checkpoint file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from planner.denoiser import DenoiserConfig, build_denoiser
from planner.diffusion import NoiseSchedule, ddim_decode, ddim_invert

FORMAT_VERSION = 1
NORMALIZATIONS = ("standard", "minmax")


class CheckpointError(ValueError):
    """A prior checkpoint file is unreadable, damaged, incomplete or from another format version."""


@dataclasses.dataclass(frozen=True, eq=False)
class Normalizer:
    """Per-channel affine map to model space, ``model = (data - center) / scale``, on the last axis.

    ``center``, ``scale``, ``low``, ``high`` are ``(C,)`` tensors; ``low``/``high`` are the data's
    per-channel bounds, used to clamp decoded trajectories back into the data's range.
    """

    center: torch.Tensor
    scale: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    def __post_init__(self) -> None:
        shapes = {
            name: tuple(getattr(self, name).shape) for name in ("center", "scale", "low", "high")
        }
        if len(set(shapes.values())) != 1 or len(shapes["center"]) != 1:
            raise ValueError(f"Normalizer needs four (C,) tensors of one shape, got {shapes}")
        if not bool(torch.all(self.scale > 0)) or not bool(torch.all(torch.isfinite(self.scale))):
            raise ValueError(
                f"Normalizer scale must be positive and finite, got {self.scale.tolist()}"
            )
        if not bool(torch.all(self.low <= self.high)):
            raise ValueError(
                f"Normalizer needs low <= high, got {self.low.tolist()} > {self.high.tolist()}"
            )

    @classmethod
    def fit(cls, data: torch.Tensor | np.ndarray, method: str = "standard") -> Normalizer:
        """Fit to ``data (..., C)`` over all leading axes.

        ``method="standard"`` maps each channel to zero mean and unit std (what the noise
        schedule assumes); ``"minmax"`` maps ``[low, high]`` to ``[-1, 1]``. Constant channels
        get scale 1 instead of dividing by zero.
        """
        if method not in NORMALIZATIONS:
            raise ValueError(f"method must be one of {NORMALIZATIONS}, got {method!r}")
        flat = torch.as_tensor(data, dtype=torch.float64)
        if flat.ndim == 0 or flat.numel() == 0 or not bool(torch.isfinite(flat).all()):
            raise ValueError(
                f"fit needs finite (..., C) data with entries, got shape {tuple(flat.shape)}"
            )
        flat = flat.reshape(-1, flat.shape[-1])
        low, high = flat.min(dim=0).values, flat.max(dim=0).values
        if method == "standard":
            center, scale = flat.mean(dim=0), flat.std(dim=0, correction=0)
        else:
            center, scale = (low + high) / 2, (high - low) / 2
        scale = torch.where(scale > 1e-6 * (1 + center.abs()), scale, torch.ones_like(scale))
        return cls(*(v.to(torch.float32) for v in (center, scale, low, high)))

    @property
    def channels(self) -> int:
        """C, the number of channels this normaliser maps."""
        return self.center.shape[0]

    def normalize(self, data: torch.Tensor) -> torch.Tensor:
        """Data units -> model space, ``(..., C)``."""
        return (data - self.center) / self.scale

    def denormalize(self, model_values: torch.Tensor) -> torch.Tensor:
        """Model space -> data units, clamped to ``[low, high]``, ``(..., C)``."""
        return torch.clamp(model_values * self.scale + self.center, self.low, self.high)

    def to(self, device: torch.device | str) -> Normalizer:
        """A copy with its tensors on ``device``."""
        return Normalizer(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Its tensors by name, on the CPU (for checkpoints)."""
        return {f.name: getattr(self, f.name).detach().cpu() for f in dataclasses.fields(self)}


def _digest(payload: dict) -> str:
    """SHA-256 over everything a checkpoint holds, so corrupted tensor bytes are caught on load."""
    digest = hashlib.sha256()

    def feed(value: object) -> None:
        if isinstance(value, torch.Tensor):
            digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
            digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        elif isinstance(value, dict):
            for key in sorted(value):
                digest.update(repr(key).encode())
                feed(value[key])
        else:
            digest.update(repr(value).encode())

    feed({key: value for key, value in payload.items() if key != "checksum"})
    return digest.hexdigest()


def _readable_mode() -> int:
    """The permissions a plain ``open(path, "w")`` would give under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


class DiffusionPrior:
    """Denoiser + noise schedule + :class:`Normalizer`: latents <-> trajectories ``(N, H, C)``.

    ``model`` defaults to a fresh ``build_denoiser(denoiser_config)``. ``cond_normalizer`` maps
    the conditioning vector ``(K,)`` to model space when ``cond_dim > 0`` (None = identity).
    """

    def __init__(
        self,
        denoiser_config: DenoiserConfig,
        normalizer: Normalizer,
        schedule: NoiseSchedule | None = None,
        model: nn.Module | None = None,
        device: torch.device | str = "cpu",
        cond_normalizer: Normalizer | None = None,
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
        self.to(device)

    @property
    def config(self) -> DenoiserConfig:
        """The denoiser's architecture."""
        return self._config

    @property
    def horizon(self) -> int:
        """H, trajectory length."""
        return self._config.horizon

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

    def to(self, device: torch.device | str) -> DiffusionPrior:
        """Move model and normalisers to ``device`` (in place); returns self."""
        self._device = torch.device(device)
        self.model.to(self._device)
        self.normalizer = self.normalizer.to(self._device)
        if self.cond_normalizer is not None:
            self.cond_normalizer = self.cond_normalizer.to(self._device)
        return self

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
        model_known = None
        if known is not None:
            mask, values = self._known(known, latents.shape[0])
            model_known = (mask, self.normalizer.normalize(values))
        decoded = self.normalizer.denormalize(
            ddim_decode(self.model, latents, self.schedule, steps, cond, known=model_known)
        )
        return decoded if known is None else torch.where(mask, values, decoded)

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

    def _payload(self) -> dict:
        payload = {
            "format_version": FORMAT_VERSION,
            "denoiser_config": dataclasses.asdict(self._config),
            "schedule": {"name": self.schedule.name, "train_steps": self.schedule.train_steps},
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "normalizer": self.normalizer.state_dict(),
            "cond_normalizer": None
            if self.cond_normalizer is None
            else self.cond_normalizer.state_dict(),
        }
        payload["checksum"] = _digest(payload)
        return payload

    def save(self, path: str | os.PathLike) -> Path:
        """Write config, weights, normalisers, schedule to one file atomically; return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(self._payload(), file)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temp, _readable_mode())  # mkstemp files are private (0600)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> DiffusionPrior:
        """Read a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``).

        Raises FileNotFoundError if there is no file, and :class:`CheckpointError` naming the
        file and the problem if it is truncated, corrupted, incomplete or of another format.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no prior checkpoint at {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        # torch.load signals damage with many types (RuntimeError, UnpicklingError, EOFError, ...).
        except Exception as exc:
            raise CheckpointError(
                f"{path}: cannot be read as a prior checkpoint (truncated or corrupted?): {exc}"
            ) from exc
        if not isinstance(payload, dict):
            raise CheckpointError(f"{path}: expected a dict payload, got {type(payload).__name__}")
        version = payload.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {version!r}, this code reads version "
                f"{FORMAT_VERSION}; re-train or re-save the prior with this version"
            )
        required = (
            "denoiser_config",
            "schedule",
            "state_dict",
            "normalizer",
            "cond_normalizer",
            "checksum",
        )
        missing = [key for key in required if key not in payload]
        if missing:
            raise CheckpointError(f"{path}: checkpoint is missing {missing}")
        if payload["checksum"] != _digest(payload):
            raise CheckpointError(f"{path}: checksum mismatch, the file is corrupted")
        try:
            config = DenoiserConfig(**payload["denoiser_config"])
            if payload["schedule"]["name"] != NoiseSchedule.name:
                raise ValueError(f"unknown noise schedule {payload['schedule']['name']!r}")
            schedule = NoiseSchedule(payload["schedule"]["train_steps"])
            normalizer = Normalizer(**payload["normalizer"])
            cond_state = payload["cond_normalizer"]
            cond_normalizer = None if cond_state is None else Normalizer(**cond_state)
            model = build_denoiser(config)
            model.load_state_dict(payload["state_dict"])
            prior = cls(config, normalizer, schedule, model, "cpu", cond_normalizer)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: inconsistent checkpoint contents: {exc}") from exc
        return prior.to(device)
