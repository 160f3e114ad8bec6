"""Normalizer: a per-channel affine map between data units and a model's space.

Shared by priors (trajectories, conditioning vectors) and world models (observations, actions,
targets). It remembers the data's per-channel bounds so decoded values can be clamped to them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

NORMALIZATIONS = ("standard", "minmax")


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
