"""Plumbing shared by the experiment scripts: arguments from dataclasses, run folders, JSON.

An experiment's arguments are one dataclass whose fields carry their help text
(``field(metadata={"help": ...})``); :func:`parse_args` turns it into a command line with
``--kebab-case`` flags, and :func:`run_folder` writes it beside the results (CleanRL style).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import numpy as np

from planner.files import atomic_write

REPO_ROOT = Path(__file__).resolve().parents[2]
Args = TypeVar("Args")


def arg(default: Any, help: str, choices: tuple | None = None) -> Any:
    """A dataclass field with command-line help (and optional choices)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the script's docstring layout and shows each flag's default."""


def parse_args(cls: type[Args], description: str, argv: list[str] | None = None) -> Args:
    """Parse ``argv`` into the dataclass ``cls``; booleans become ``--flag`` switches."""
    parser = argparse.ArgumentParser(description=description, formatter_class=_HelpFormatter)
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        meta = {"help": field.metadata.get("help", ""), "default": field.default}
        if kind is bool:
            parser.add_argument(flag, action="store_true", **meta)
            continue
        if get_origin(kind) is not None:  # Optional[X] / X | None
            kind = next(a for a in get_args(kind) if a is not type(None))
        parser.add_argument(flag, type=kind, choices=field.metadata.get("choices"), **meta)
    return cls(**vars(parser.parse_args(argv)))


def run_folder(root: Path, parts: list[str], args: Any) -> Path:
    """Create ``root/<part>__<part>__<time>/`` and write ``config.json`` (the arguments) there."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(root) / "__".join([*parts, stamp])
    folder.mkdir(parents=True, exist_ok=True)
    config = {**dataclasses.asdict(args), "command": command_line()}
    write_json(folder / "config.json", config)
    return folder


def command_line() -> str:
    """This run's command, as a person would retype it (``python experiments/x.py --flag ...``)."""
    return shlex.join([Path(sys.executable).name, *sys.argv])


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (numpy scalars and arrays become lists)."""
    with atomic_write(path, "w") as file:
        json.dump(data, file, indent=2, default=_to_builtin)


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def print_table(rows: list[dict], columns: list[str], formats: dict[str, str] | None = None) -> str:
    """Print ``rows`` as an aligned text table (and return it)."""
    formats = formats or {}
    cells = [[_fmt(row.get(col), formats.get(col)) for col in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
        *("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells),
    ]
    text = "\n".join(lines)
    print(text)
    return text


def _fmt(value: Any, spec: str | None) -> str:
    if value is None:
        return "-"
    if spec is not None:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
