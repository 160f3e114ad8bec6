"""Safe, versioned, hashed checkpoint files, shared by priors and world models.

A checkpoint is one file written atomically by ``torch.save``: a dict of plain values and
tensors with its format version, what it holds (``kind``: ``"prior"``, ``"world_model"``), the
task it was trained for (``"reacher"``, ...) and a SHA-256 over everything else. Loading uses
``torch.load(weights_only=True)`` (no code runs from the file) and checks all of it, so a
truncated, corrupted, tampered, foreign or mismatched file fails with a :class:`CheckpointError`
naming the file and the problem instead of a model that silently misbehaves.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from planner.files import atomic_write

FORMAT_VERSION = 2
"""2 records ``kind`` and ``task``; version 1 files (priors without a task) are still read."""
_READABLE_VERSIONS = (1, 2)
_HEADER = ("format_version", "kind", "task", "checksum")


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, damaged, incomplete, of another format or another task."""


class TaskMismatchError(CheckpointError):
    """A checkpoint recorded for one task (``recorded``) was loaded for another (``expected``)."""

    def __init__(self, message: str, recorded: str, expected: str) -> None:
        super().__init__(message)
        self.recorded, self.expected = recorded, expected


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


def save_checkpoint(
    path: str | os.PathLike, kind: str, contents: dict[str, Any], task: str | None = None
) -> Path:
    """Write ``contents`` (plain values and CPU tensors) as a checkpoint of ``kind`` for ``task``.

    Returns the path. The write is atomic: an interrupted save leaves the old file in place.
    """
    clash = sorted(set(contents) & set(_HEADER))
    if clash:
        raise ValueError(f"checkpoint contents may not use the reserved keys {clash}")
    payload = {"format_version": FORMAT_VERSION, "kind": kind, "task": task, **contents}
    payload["checksum"] = _digest(payload)
    path = Path(path)
    with atomic_write(path) as file:
        torch.save(payload, file)
    return path


def load_checkpoint(
    path: str | os.PathLike,
    kind: str,
    required: tuple[str, ...],
    task: str | None = None,
) -> dict[str, Any]:
    """Read and verify a checkpoint written by :func:`save_checkpoint`; return its payload.

    Args:
        path: the file.
        kind: what the caller expects it to hold (``"prior"``, ``"world_model"``).
        required: keys the contents must have.
        task: the task the caller plans on; a checkpoint recorded for another task is refused
            (None: accept any task). A version 1 file records no task: it is accepted with a
            warning.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: truncated, corrupted, tampered, of another format version or kind,
            incomplete; its subclass TaskMismatchError: trained for another task.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {kind.replace('_', ' ')} checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    # torch.load signals damage with many types (RuntimeError, UnpicklingError, EOFError, ...).
    except Exception as exc:
        raise CheckpointError(
            f"{path}: cannot be read as a checkpoint (truncated or corrupted?): {exc}"
        ) from exc
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a dict payload, got {type(payload).__name__}")
    version = payload.get("format_version")
    if version not in _READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r}, this code reads versions "
            f"{_READABLE_VERSIONS}; re-train or re-save it with this version"
        )
    # Version 1 files hold priors only, from before kinds and tasks were recorded.
    found = payload.get("kind", "prior" if version == 1 else None)
    if found != kind:
        raise CheckpointError(
            f"{path}: holds a {str(found).replace('_', ' ')}, not a {kind.replace('_', ' ')}"
        )
    header = ("checksum",) if version == 1 else ("kind", "task", "checksum")
    missing = [key for key in (*required, *header) if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint is missing {missing}")
    if payload["checksum"] != _digest(payload):
        raise CheckpointError(f"{path}: checksum mismatch, the file is corrupted")
    if version == 1:
        payload = {**payload, "kind": "prior", "task": None}
    recorded = payload["task"]
    if task is not None and recorded is None:
        warnings.warn(
            f"{path} records no task, so it cannot be checked against {task!r}; re-save it with "
            "this version to record one",
            stacklevel=2,
        )
    elif task is not None and recorded != task:
        raise TaskMismatchError(
            f"{path}: this {kind.replace('_', ' ')} was trained for task {recorded!r}, not "
            f"{task!r}; use one trained for {task!r}",
            recorded,
            task,
        )
    return payload
