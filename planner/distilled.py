"""DistilledPrior: a one-step student of a diffusion prior, decoding latents in one network call.

``student.decode(z (N, H, C)) -> (N, H, C)`` approximates the teacher's deterministic S-step
DDIM decode ``f_S(z)`` (:meth:`~planner.prior.DiffusionPrior.decode`) with a single call of a
network of the teacher's own architecture. The student reads that call exactly as DDIM reads
its first step: the model predicts the velocity ``v`` at the first DDIM timestep ``T - 1``
(pure noise) and the output is the one-step x0 estimate ``x0 = sqrt(a) z - sqrt(1 - a) v``,
``a = alphas_cumprod[T - 1]``. So a student holding the teacher's weights *is* the teacher's
1-step decode (up to float rounding: it embeds its one timestep once for the whole batch rather
than once per latent), and distillation (:mod:`planner.distillation`) moves it from there
to the S-step decode. Outputs are in data units, clamped to the data bounds, as the teacher's.

The planner treats teacher and student alike as a trajectory decoder (``latent_shape``,
``decode``); a student has no inverse, so ``encode`` refuses and the "inversion" warm start
needs the teacher. Conditioned priors (``cond_dim > 0``) are not supported yet.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from planner.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from planner.denoiser import DenoiserConfig, build_denoiser
from planner.diffusion import NoiseSchedule
from planner.normalizer import Normalizer
from planner.prior import DiffusionPrior, TrajectoryShape, read_network
from planner.validation import check_count

KIND = "student"
"""The checkpoint kind of a student (a prior's is ``"prior"``, so neither loads as the other)."""
_CONTENTS = ("denoiser_config", "schedule", "state_dict", "normalizer", "teacher_steps", "record")


def check_teacher_steps(teacher_steps: int) -> None:
    """Raise ValueError unless ``teacher_steps`` (S) is an int >= 2."""
    check_count(
        "teacher_steps", teacher_steps, minimum=2,
        hint="the S-step decode the student imitates; S = 1 is the untrained student itself",
    )  # fmt: skip


class DistilledPrior(TrajectoryShape):
    """One-step decoder ``latents (N, H, C) -> trajectories (N, H, C)`` distilled from a prior.

    Args:
        denoiser_config: the teacher's architecture (``cond_dim`` must be 0).
        normalizer: the teacher's map between data units and model space.
        teacher_steps: S, the teacher's DDIM steps this student imitates.
        schedule: the teacher's noise schedule (only ``alphas_cumprod[T - 1]`` is used).
        model: the network; default a fresh ``build_denoiser(denoiser_config)``. Use
            :meth:`from_teacher` to start from the teacher's weights.
        record: what the student was made from and how well it imitates its teacher (teacher
            file and checksum, S, validation errors); saved with the checkpoint.
        device: where the model runs and results are returned.
        task: the task it is for (saved, checked on :meth:`load` as for priors).
    """

    decodes_in_one_call = True
    """One network call whatever ``steps`` says."""

    def __init__(
        self,
        denoiser_config: DenoiserConfig,
        normalizer: Normalizer,
        teacher_steps: int,
        schedule: NoiseSchedule | None = None,
        model: nn.Module | None = None,
        record: dict[str, Any] | None = None,
        device: torch.device | str = "cpu",
        task: str | None = None,
    ) -> None:
        if not isinstance(denoiser_config, DenoiserConfig):
            raise TypeError(
                f"denoiser_config must be a DenoiserConfig, got {type(denoiser_config).__name__}"
            )
        if denoiser_config.cond_dim:
            raise ValueError(
                f"the prior is conditioned (cond_dim={denoiser_config.cond_dim}): conditioned "
                "priors are not supported yet; distil an unconditioned prior (cond_dim=0)"
            )
        if normalizer.channels != denoiser_config.channels:
            raise ValueError(
                f"normalizer has {normalizer.channels} channels but the denoiser expects "
                f"C={denoiser_config.channels}; pass the teacher's normalizer"
            )
        check_teacher_steps(teacher_steps)
        self._config = denoiser_config
        self._teacher_steps = teacher_steps
        self.schedule = schedule if schedule is not None else NoiseSchedule()
        self.model = (model if model is not None else build_denoiser(denoiser_config)).eval()
        self.normalizer = normalizer
        self.record = dict(record or {})
        self.task = task
        # The first DDIM step's constants, as ddim_decode computes them (Python floats of the
        # float32 level), so that teacher weights give the teacher's 1-step decode.
        level = self.schedule.alphas_cumprod[-1].item()
        self._signal, self._noise = math.sqrt(level), math.sqrt(1 - level)
        self.to(device)

    @classmethod
    def from_teacher(cls, teacher: DiffusionPrior, teacher_steps: int) -> DistilledPrior:
        """An untrained student: a copy of ``teacher``'s network, normaliser, schedule and task.

        It decodes exactly as ``teacher.decode(z, steps=1)``; :func:`planner.distillation.distill`
        trains it towards ``teacher.decode(z, steps=teacher_steps)``.
        """
        if not isinstance(teacher, DiffusionPrior):
            raise TypeError(f"teacher must be a DiffusionPrior, got {type(teacher).__name__}")
        # A copy, not build_denoiser + load_state_dict: building draws from torch's global RNG.
        model = copy.deepcopy(teacher.model)
        student = cls(
            teacher.config,
            teacher.normalizer,
            teacher_steps,
            teacher.schedule,
            model,
            device=teacher.device,
            task=teacher.task,
        )
        student.knot_schedule = teacher.knot_schedule
        return student

    @property
    def teacher_steps(self) -> int:
        """S, the teacher's DDIM steps this student was distilled from."""
        return self._teacher_steps

    def to(self, device: torch.device | str) -> DistilledPrior:
        """Move model, normaliser and timestep to ``device`` (in place); returns self."""
        self._device = torch.device(device)
        self.model.to(self._device)
        self.normalizer = self.normalizer.to(self._device)
        # A 0-dim tensor expanded to (N,) per call: the first DDIM timestep without allocating.
        self._timestep = torch.tensor(self.schedule.train_steps - 1, device=self._device)
        return self

    def predict_x0(self, latents: torch.Tensor) -> torch.Tensor:
        """The one network call: latents ``(N, H, C)`` -> x0 estimate ``(N, H, C)`` in model space.

        Normalised and unclamped; unchecked, and differentiable when gradients are enabled
        (what distillation regresses on the teacher's model-space decode).
        """
        v = self.model(latents, self._timestep.expand(latents.shape[0]), None)
        return self._signal * latents - self._noise * v

    def _embedding(self) -> torch.Tensor:
        """The network's embedding of the first DDIM timestep, (1, time_embed_dim): one row
        that every latent shares (no conditioning), computed once per decode rather than per
        latent."""
        return self.model.embed(self._timestep.expand(1), None, 1)

    def _decoder(self, embedding: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """Latents -> data units with a computed ``embedding``: the one call, no checks."""

        @torch.inference_mode()
        def decode(latents: torch.Tensor) -> torch.Tensor:
            v = self.model.denoise(latents, embedding)
            return self.normalizer.denormalize(self._signal * latents - self._noise * v)

        return decode

    def _check_cond(self, cond: Any) -> None:
        if cond is not None:
            raise ValueError(
                "a distilled prior is unconditioned (conditioned priors are not supported yet); "
                "pass cond=None"
            )

    @torch.inference_mode()
    def decode(
        self,
        latents: torch.Tensor | np.ndarray,
        steps: int | None = None,
        cond: None = None,
    ) -> torch.Tensor:
        """Latents ``(N, H, C)`` -> trajectories ``(N, H, C)`` in data units, one network call.

        ``steps`` is accepted so that the planner can call a student like a
        :class:`~planner.prior.DiffusionPrior`, and ignored: the student always makes one call
        and imitates the S = :attr:`teacher_steps` decode. Deterministic; clamped to the data
        bounds of the normaliser (an action prior returns actions in [-1, 1]). ``cond`` must
        be None. Returns a tensor on ``self.device``.
        """
        self._check_cond(cond)
        latents = self._trajectories(latents, "latents")
        return self._decoder(self._embedding())(latents)

    def decoding(
        self, steps: int | None = None, cond: None = None
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The unchecked decode for a search loop: checks ``cond`` once, then returns a function
        latents ``(N, H, C)`` (float32, finite, on :attr:`device`) -> trajectories ``(N, H, C)``
        in data units, equal to :meth:`decode`'s bit for bit, under inference mode.

        ``steps`` is ignored as in :meth:`decode`. The function validates nothing: wrong shapes
        fail inside the network or decode garbage, so give it what :meth:`decode` accepts.
        """
        self._check_cond(cond)
        with torch.inference_mode():
            return self._decoder(self._embedding())

    def encode(self, trajectories: Any, steps: int | None = None, cond: None = None) -> None:
        """Not available: a one-step student has no inverse.

        Raises:
            NotImplementedError: always; encode with the teacher instead.
        """
        raise NotImplementedError(
            "a distilled one-step decoder cannot invert trajectories to latents; use its teacher's "
            "DiffusionPrior.encode (DDIM inversion) for the 'inversion' warm start, or another "
            "warm start"
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write config, weights, normaliser, schedule, S, record and task to one file atomically.

        Returns the path. The checkpoint's kind is ``"student"`` (see :mod:`planner.checkpoint`).
        """
        contents = {
            **self._network_contents(),
            "teacher_steps": self._teacher_steps,
            "record": self.record,
        }
        return save_checkpoint(path, KIND, contents, task=self.task)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        device: torch.device | str = "cpu",
        task: str | None = None,
    ) -> DistilledPrior:
        """Read a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``).

        Args:
            path: the checkpoint file.
            device: where the model runs.
            task: the task the caller plans on; a student recorded for another task is refused.
                None accepts any.

        Raises:
            FileNotFoundError: no file at ``path``.
            CheckpointError: naming the file and the problem if it is damaged, incomplete, not a
                student (a prior's file, say), or for another task (TaskMismatchError).
        """
        payload = load_checkpoint(path, KIND, _CONTENTS, task=task)
        try:
            config, schedule, model, normalizer = read_network(payload)
            student = cls(
                config,
                normalizer,
                payload["teacher_steps"],
                schedule,
                model,
                payload["record"],
                "cpu",
                payload["task"],
            )
            student._read_knot_schedule(payload)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: inconsistent checkpoint contents: {exc}") from exc
        return student.to(device)
