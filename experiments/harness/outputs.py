"""Where scripts write: never over an existing file unless told to, and by default somewhere new.

The files in ``checkpoints/`` are shipped and loaded by name (a task's default prior, student,
world model, agent), so a script that silently replaced one would change what every later run
plans with; ``results/`` holds what the READMEs cite. So a script

- writes by default into a new run folder, ``runs/<script>__<name>__<time>/`` (ignored by git;
  copy a file to ``checkpoints/`` to ship it), or to a default that is never shipped;
- refuses an output that exists unless it is given ``--overwrite`` (:func:`check_output`),
  before any work starts, with a message saying how to fix the call;
- resumes a run folder only if it holds a run of the same settings (:func:`claim_run_folder`):
  resuming is not an overwrite, and a folder of another run or of other files is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from experiments.harness.cli import REPO_ROOT, UsageError, arg, write_json

RUNS = REPO_ROOT / "runs"
CONFIG = "config.json"
"""The file of a run folder recording the settings that must match to resume it."""


def overwrite_arg() -> Any:
    """The ``overwrite`` field of a script's :class:`~experiments.harness.cli.ScriptArgs`:
    ``overwrite: bool = overwrite_arg()``; pass it to :func:`check_output`."""
    return arg(False, "replace output files that exist (without it, they are refused)")


def new_run_folder(*parts: str) -> Path:
    """``runs/<part>__<part>__<time>/``: a new run folder's path (made when written to)."""
    return RUNS / "__".join([*parts, time.strftime("%Y%m%d-%H%M%S")])


def new_run_file(script: str, filename: str) -> Path:
    """``runs/<script>__<filename stem>__<time>/<filename>``: a file in a new run folder.

    The file keeps the name a shipped one would have (``unicycle-action.pt``), so shipping it
    is a copy into ``checkpoints/``.
    """
    return new_run_folder(script, filename.split(".")[0]) / filename


def check_output(
    path: Path, overwrite: bool, beside: Iterable[str] = (), flag: str = "--out"
) -> None:
    """Refuse (:class:`UsageError`) to replace ``path``, or a file written beside it (its stem
    with each suffix of ``beside``: ``.json`` for ``x.pt`` is ``x.json``), unless ``overwrite``.

    ``flag``: the option that names ``path``, for the message.
    """
    path = Path(path)
    existing = [p for p in (path, *(path.with_suffix(s) for s in beside)) if p.exists()]
    if existing and not overwrite:
        raise UsageError(
            f"{existing[0]} exists and this call would replace it: pass {flag} NEW to write "
            "elsewhere, or --overwrite to replace it"
        )


def claim_run_folder(
    folder: Path, config: dict[str, Any], defaults: Mapping[str, Any] | None = None
) -> None:
    """Make ``folder`` this run's, or check that it is (then the run resumes there).

    A missing or empty folder gets ``config.json`` (``config``: the settings a resumed run
    must share, JSON-ready). A folder whose ``config.json`` equals ``config`` resumes; a setting
    it lacks (the folder was written before the setting existed) reads as its value in
    ``defaults`` (else None). Any other folder, one of a run with other settings or of files of
    no run, is refused: its files would be taken for this run's finished work.
    """
    path = folder / CONFIG
    if path.exists():
        recorded = json.loads(path.read_text())
        # as they read back (tuples become lists)
        config, defaults = (json.loads(json.dumps(dict(d or {}))) for d in (config, defaults))
        changed = sorted(
            k for k in {**config, **recorded} if recorded.get(k, defaults.get(k)) != config.get(k)
        )
        if changed:
            raise UsageError(
                f"{folder} holds a run with other settings ({', '.join(changed)}): pass the "
                "same flags to resume it, or --out NEW"
            )
        return
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(
            f"{folder} holds files but no {CONFIG} of a run: pass --out NEW (a new or empty folder)"
        )
    write_json(path, config)
