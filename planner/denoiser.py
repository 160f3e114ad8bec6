"""Denoising networks with one interface: ``model(x_t (B, H, C), t (B,) long, cond (B, K) | None)
-> v (B, H, C)``.

Two kinds, chosen by :class:`DenoiserConfig.kind`:

- ``"unet"`` (default): a temporal 1D UNet over the horizon. Conv1d residual blocks with
  GroupNorm, downsampling by 2 per level, self-attention at the bottleneck, skip connections.
  Horizons that are not a multiple of the downsampling factor are padded (edge values
  repeated) and the output cropped back, so any H >= 1 works.
- ``"mlp"``: residual MLP over the flattened trajectory ``H * C``; faster on CPU for short
  horizons.

Both embed the timestep sinusoidally and, when ``cond_dim > 0``, add an embedding of a
conditioning vector (e.g. the current observation); every block is modulated by this
embedding through FiLM (per-channel scale and shift). Output layers start at zero, so an
untrained model predicts v = 0 (a stable start for training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from planner.validation import check_count

KINDS = ("unet", "mlp")


@dataclass(frozen=True)
class DenoiserConfig:
    """Architecture of a denoiser; the default is the unicycle action prior (H=16, C=2) UNet.

    Fields ``base_channels``, ``channel_mults``, ``kernel_size``, ``norm_groups`` and
    ``attention_heads`` size the UNet; ``mlp_hidden`` and ``mlp_depth`` the MLP;
    ``time_embed_dim`` both.
    """

    kind: str = "unet"
    horizon: int = 16
    """H, trajectory length in steps."""
    channels: int = 2
    """C, values per step (the action dim A for action priors)."""
    cond_dim: int = 0
    """K, length of the conditioning vector; 0 = unconditioned."""
    base_channels: int = 16
    channel_mults: tuple[int, ...] = (1, 2, 4)
    """Width of each UNet level as a multiple of base_channels; one downsampling between levels."""
    kernel_size: int = 5
    norm_groups: int = 8
    attention_heads: int = 4
    mlp_hidden: int = 256
    mlp_depth: int = 3
    time_embed_dim: int = 64

    def __post_init__(self) -> None:
        # Checkpoints store lists; keep the config hashable and comparable.
        object.__setattr__(self, "channel_mults", tuple(self.channel_mults))
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        positive = ("horizon", "channels", "base_channels", "kernel_size", "norm_groups")
        positive += ("attention_heads", "mlp_hidden", "mlp_depth", "time_embed_dim")
        for name in positive:
            check_count(name, getattr(self, name))
        check_count("cond_dim", self.cond_dim, minimum=0, hint="0 = unconditioned")
        if not self.channel_mults or any(
            isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.channel_mults
        ):
            raise ValueError(
                f"channel_mults must be positive ints, e.g. (1, 2, 4), got {self.channel_mults}"
            )
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd so convolutions keep the length, got {self.kernel_size}"
            )
        if self.time_embed_dim % 2:
            raise ValueError(
                f"time_embed_dim must be even (sin and cos halves), got {self.time_embed_dim}"
            )
        if self.kind == "unet":
            for width in {self.base_channels * m for m in self.channel_mults}:
                if width % self.norm_groups:
                    raise ValueError(
                        f"UNet width {width} (base_channels * channel_mult) is not divisible by "
                        f"norm_groups={self.norm_groups}; pick base_channels a multiple of it"
                    )
            bottleneck = self.base_channels * self.channel_mults[-1]
            if bottleneck % self.attention_heads:
                raise ValueError(
                    f"bottleneck width {bottleneck} is not divisible by attention_heads="
                    f"{self.attention_heads}"
                )

    @property
    def downsampling(self) -> int:
        """Factor by which the UNet shortens the horizon at its bottleneck."""
        return 2 ** (len(self.channel_mults) - 1)


class Embedding(nn.Module):
    """Timestep t (B,) and optional conditioning (B, K) -> embedding (B, time_embed_dim)."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        dim = config.time_embed_dim
        self.cond_dim = config.cond_dim
        self.register_buffer(
            "frequencies",
            torch.exp(-math.log(10_000.0) * torch.arange(dim // 2) / (dim // 2)),
            persistent=False,
        )
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.cond = (
            nn.Sequential(nn.Linear(config.cond_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
            if config.cond_dim
            else None
        )

    def forward(self, t: torch.Tensor, cond: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Embed ``t (B,)`` and ``cond (B, K)``; checks both against the batch size B."""
        if t.shape != (batch,):
            raise ValueError(f"t must be ({batch},) timesteps, got shape {tuple(t.shape)}")
        angles = t.to(self.frequencies.dtype)[:, None] * self.frequencies[None]
        emb = self.time(torch.cat([angles.sin(), angles.cos()], dim=1))
        if self.cond is None:
            if cond is not None:
                raise ValueError("this denoiser is unconditioned (cond_dim=0); pass cond=None")
            return emb
        if cond is None or cond.shape != (batch, self.cond_dim):
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"cond must be ({batch}, {self.cond_dim}) (B, K), got {got}")
        return emb + self.cond(cond.to(emb.dtype))


class FiLM(nn.Module):
    """Per-feature scale and shift from the embedding, applied after a normalisation."""

    def __init__(self, embed_dim: int, features: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.SiLU(), nn.Linear(embed_dim, 2 * features))

    def forward(self, h: torch.Tensor, emb: torch.Tensor, feature_dim: int) -> torch.Tensor:
        """Modulate ``h`` whose features sit on ``feature_dim``; emb is (B, time_embed_dim), or
        (1, time_embed_dim) shared by the whole batch."""
        scale, shift = self.proj(emb).chunk(2, dim=1)
        shape = [emb.shape[0]] + [1] * (h.ndim - 1)
        shape[feature_dim] = h.shape[feature_dim]
        return h * (1 + scale.view(shape)) + shift.view(shape)


class ResBlock1d(nn.Module):
    """Two GroupNorm-SiLU-Conv1d layers with FiLM between them and a residual connection."""

    def __init__(self, config: DenoiserConfig, in_channels: int, out_channels: int) -> None:
        super().__init__()
        k, groups = config.kernel_size, config.norm_groups
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv1d(in_channels, out_channels, k, padding=k // 2)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.film = FiLM(config.time_embed_dim, out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, k, padding=k // 2)
        self.skip = (
            nn.Conv1d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """``x (B, in_channels, L)`` -> ``(B, out_channels, L)``."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.film(self.norm2(h), emb, feature_dim=1)))
        return h + self.skip(x)


class SelfAttention1d(nn.Module):
    """Multi-head self-attention over the time axis, pre-norm, residual."""

    def __init__(self, config: DenoiserConfig, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(config.norm_groups, channels)
        self.attention = nn.MultiheadAttention(channels, config.attention_heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, channels, L)`` -> same shape."""
        h = self.norm(x).transpose(1, 2)
        h, _ = self.attention(h, h, h, need_weights=False)
        return x + h.transpose(1, 2)


def _check_input(x: torch.Tensor, config: DenoiserConfig) -> None:
    if x.ndim != 3 or x.shape[1:] != (config.horizon, config.channels):
        raise ValueError(
            f"x_t must be (B, H={config.horizon}, C={config.channels}), got shape {tuple(x.shape)}"
        )


class UNet1d(nn.Module):
    """Temporal 1D UNet denoiser: ``(x_t (B, H, C), t (B,), cond (B, K) | None) -> v (B, H, C)``."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = Embedding(config)
        widths = [config.base_channels * m for m in config.channel_mults]
        self.inp = nn.Conv1d(
            config.channels, widths[0], config.kernel_size, padding=config.kernel_size // 2
        )
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        previous = widths[0]
        for level, width in enumerate(widths):
            self.down.append(ResBlock1d(config, previous, width))
            last = level == len(widths) - 1
            self.downsample.append(
                nn.Identity() if last else nn.Conv1d(width, width, 3, stride=2, padding=1)
            )
            previous = width
        self.mid1 = ResBlock1d(config, previous, previous)
        self.attention = SelfAttention1d(config, previous)
        self.mid2 = ResBlock1d(config, previous, previous)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(widths))):
            width = widths[level]
            self.up.append(ResBlock1d(config, previous + width, width))
            self.upsample.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2.0, mode="nearest"),
                    nn.Conv1d(width, width, 3, padding=1),
                )
                if level
                else nn.Identity()
            )
            previous = width
        self.out = nn.Sequential(
            nn.GroupNorm(config.norm_groups, previous),
            nn.SiLU(),
            nn.Conv1d(previous, config.channels, 1),
        )
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predict v for ``x (B, H, C)`` at timesteps ``t (B,)``, conditioned on ``cond (B, K)``."""
        _check_input(x, self.config)
        return self.denoise(x, self.embed(t, cond, x.shape[0]))

    def denoise(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """v for ``x (B, H, C)`` from its embedding ``emb`` (B or 1, time_embed_dim), unchecked;
        a 1-row embedding (one timestep, no conditioning) serves the whole batch."""
        horizon, factor = x.shape[1], self.config.downsampling
        h = x.transpose(1, 2)
        # Pad to a multiple of the downsampling factor so skips line up; cropped back below.
        pad = -horizon % factor
        if pad:
            h = F.pad(h, (0, pad), mode="replicate")
        h = self.inp(h)
        skips = []
        for block, downsample in zip(self.down, self.downsample, strict=True):
            h = block(h, emb)
            skips.append(h)
            h = downsample(h)
        h = self.mid2(self.attention(self.mid1(h, emb)), emb)
        for block, upsample in zip(self.up, self.upsample, strict=True):
            h = upsample(block(torch.cat([h, skips.pop()], dim=1), emb))
        return self.out(h)[:, :, :horizon].transpose(1, 2)


class MLPDenoiser(nn.Module):
    """Residual MLP over the flattened trajectory ``H * C``; same call as :class:`UNet1d`."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = Embedding(config)
        size, hidden = config.horizon * config.channels, config.mlp_hidden
        self.inp = nn.Linear(size, hidden)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(config.mlp_depth))
        self.films = nn.ModuleList(
            FiLM(config.time_embed_dim, hidden) for _ in range(config.mlp_depth)
        )
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(config.mlp_depth))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, size))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predict v for ``x (B, H, C)`` at timesteps ``t (B,)``, conditioned on ``cond (B, K)``."""
        _check_input(x, self.config)
        return self.denoise(x, self.embed(t, cond, x.shape[0]))

    def denoise(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """v for ``x (B, H, C)`` from its embedding ``emb`` (B or 1, time_embed_dim), unchecked;
        a 1-row embedding (one timestep, no conditioning) serves the whole batch."""
        h = self.inp(x.flatten(1))
        for norm, film, layer in zip(self.norms, self.films, self.layers, strict=True):
            h = h + layer(F.silu(film(norm(h), emb, feature_dim=1)))
        return self.out(h).view_as(x)


def build_denoiser(config: DenoiserConfig) -> nn.Module:
    """The network ``config.kind`` names, freshly initialised (from torch's global RNG)."""
    if not isinstance(config, DenoiserConfig):
        raise TypeError(f"config must be a DenoiserConfig, got {type(config).__name__}")
    return UNet1d(config) if config.kind == "unet" else MLPDenoiser(config)
