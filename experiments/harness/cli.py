"""Plumbing shared by the experiment scripts: arguments from dataclasses, errors, run folders.

An experiment's arguments are one dataclass (a :class:`ScriptArgs`) whose fields carry their
help text and bounds (:func:`arg`); :func:`parse_args` turns it into a command line with
``--kebab-case`` flags, and :func:`run_folder` writes it beside the results (CleanRL style).
:func:`run_main` runs a script's ``main`` so that a mistake in the call (a refused value, a
missing or damaged file) ends with one line on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar, get_args, get_origin, get_type_hints

import numpy as np
import torch

from planner.checkpoint import CheckpointError
from planner.files import atomic_write
from policies.setup import SetupError

REPO_ROOT = Path(__file__).resolve().parents[2]
Args = TypeVar("Args")


class UsageError(Exception):
    """A mistake in a script's call (its flags or their files); the message says how to fix it."""


USER_ERRORS = (UsageError, SetupError, OSError, CheckpointError)
"""Errors of the call, not of the code: missing or unwritable files (OSError), unreadable,
damaged or foreign checkpoints, setups that cannot plan (SetupError) and the scripts' own
UsageError. :func:`run_main` reports them in one line; everything else is a bug and keeps its
traceback."""


def arg(
    default: Any,
    help: str,
    choices: tuple | None = None,
    minimum: float | None = None,
    check: Callable[[Any], None] | None = None,
) -> Any:
    """A dataclass field with command-line help, optional choices and checks.

    ``minimum``: the smallest value accepted (None is always accepted: "the default").
    ``check``: called with a value that is not None; raises ValueError saying what is wrong.
    :class:`ScriptArgs` applies both when the arguments are built.
    """
    metadata = {"help": help, "choices": choices, "minimum": minimum, "check": check}
    return dataclasses.field(default=default, metadata=metadata)


def parse_budget(text: str, flag: str) -> tuple[int, int]:
    """A budget ``"NxT"`` (population x iterations, each >= 1) -> ``(N, T)``, or ValueError
    naming the command-line ``flag`` it came from."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise ValueError(
            f"{flag}: {text!r} must look like 64x4 (population x iterations, each >= 1)"
        )
    return int(parts[0]), int(parts[1])


def flag_name(field: str) -> str:
    """The command-line flag of a field: ``max_steps`` -> ``--max-steps``."""
    return "--" + field.replace("_", "-")


class ScriptArgs:
    """Base of the scripts' argument dataclasses: checks each field's ``minimum`` and ``check``.

    A subclass with its own ``__post_init__`` calls ``super().__post_init__()`` first.
    """

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            minimum = field.metadata.get("minimum")
            if minimum is not None and value < minimum:
                raise ValueError(f"{flag_name(field.name)} must be >= {minimum}, got {value}")
            check = field.metadata.get("check")
            if check is not None:
                try:
                    check(value)
                except ValueError as exc:
                    raise ValueError(f"{flag_name(field.name)} {value}: {exc}") from None


def check_device(name: str) -> None:
    """Raise ValueError unless ``name`` is a torch device this machine has (cpu, cuda[:i], mps)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError("not a torch device; use cpu, cuda, cuda:INDEX or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"this torch {torch.__version__} sees no CUDA device (a CPU-only build or no "
                "visible GPU); use --device cpu"
            )
        if device.index is not None and device.index >= count:
            raise ValueError(f"only {count} CUDA device(s) visible; use cuda:0 to cuda:{count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError("the scripts run on cpu, cuda, cuda:INDEX or mps")


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr (exit status 2) naming --help."""

    def error(self, message: str) -> NoReturn:
        """Report a refused command line in one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def at_least(minimum: float, kind: type = int) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)``, refused below ``minimum``.

    For scripts with hand-written parsers; :func:`arg` declares the same for dataclass fields.
    """

    def convert(text: str) -> Any:
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in "invalid int value"
    return convert


def device_type(text: str) -> str:
    """An argparse ``type`` for ``--device``: :func:`check_device`, as an argparse error."""
    try:
        check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc}") from None
    return text


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the script's docstring layout and shows each flag's default once.

    A help text that states its default (``"(default: the task's)"``) is shown as written;
    otherwise argparse's ``(default: VALUE)`` is appended, except for defaults that are no value
    to show: None (the help says what happens, if anything), an empty string, or a switch's
    False.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        silent = default is None or default is False or default in ("", argparse.SUPPRESS)
        if silent or "default:" in text or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def parse_args(cls: type[Args], description: str, argv: list[str] | None = None) -> Args:
    """Parse ``argv`` into the dataclass ``cls``; booleans become ``--flag`` switches.

    A value the dataclass refuses (ValueError or TypeError while building it) ends the program
    like an unknown flag: one line on stderr, exit status 2.
    """
    return _parse(cls, description, argv)[0]


def run_main(
    main: Callable[[Args], Any],
    cls: type[Args],
    description: str,
    argv: list[str] | None = None,
) -> Any:
    """Parse the command line into ``cls``, run ``main`` on it and return what it returns.

    Every script ends with ``run_main(main, ItsArgs, __doc__)``. A flag the arguments refuse,
    and any of :data:`USER_ERRORS` raised by ``main``, end the program with one line on stderr
    (``<script>: error: <what is wrong and how to fix it>``) and exit status 2; ``--debug``
    shows the traceback instead. Other exceptions are bugs: they propagate with their traceback.
    """
    args, debug = _parse(cls, description, argv)
    with report_user_errors(debug):
        return main(args)


@contextlib.contextmanager
def report_user_errors(debug: bool) -> Iterator[None]:
    """Turn :data:`USER_ERRORS` inside the block into one stderr line and exit status 2.

    With ``debug`` they propagate with their traceback.
    """
    try:
        yield
    except USER_ERRORS as exc:
        if debug:
            raise
        sys.stderr.write(f"{Path(sys.argv[0]).name}: error: {_one_line(str(exc))}\n")
        raise SystemExit(2) from None


def _parse(cls: type[Args], description: str, argv: list[str] | None) -> tuple[Args, bool]:
    """The arguments and the ``--debug`` switch every script has."""
    parser = ArgumentParser(description=description, formatter_class=_HelpFormatter)
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        flag = flag_name(field.name)
        kind = hints[field.name]
        meta = {"help": field.metadata.get("help", ""), "default": field.default}
        if kind is bool:
            parser.add_argument(flag, action="store_true", **meta)
            continue
        if get_origin(kind) is not None:  # Optional[X] / X | None
            kind = next(a for a in get_args(kind) if a is not type(None))
        parser.add_argument(flag, type=kind, choices=field.metadata.get("choices"), **meta)
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error, not one line"
    )
    values = vars(parser.parse_args(argv))
    debug = values.pop("debug")
    try:
        return cls(**values), debug
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))


def benchmark_parser(
    description: str,
) -> tuple[ArgumentParser, Callable[[str, str], argparse.ArgumentParser]]:
    """A parser of benchmark subcommands (``benchmark.py NAME --flags``) for
    :func:`run_benchmark`, and ``add(name, help)``, which adds a subcommand with the flags every
    one has: ``--out PATH`` (also write the rows as JSON) and ``--debug``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    common.add_argument(
        "--debug", action="store_true", help="show the traceback of an error, not one line"
    )
    parser = ArgumentParser(description=description, formatter_class=_HelpFormatter)
    subcommands = parser.add_subparsers(dest="bench", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return subcommands.add_parser(
            name, help=help, parents=[common], formatter_class=_HelpFormatter
        )

    return parser, add


def run_benchmark(parser: ArgumentParser, benchmarks: dict[str, Callable[[Any], list]]) -> None:
    """Parse the command line of :func:`benchmark_parser`, run the chosen benchmark (its user
    errors as one line, :func:`report_user_errors`) and write its rows to ``--out``."""
    args = parser.parse_args()
    with report_user_errors(args.debug):
        rows = benchmarks[args.bench](args)
        if args.out is not None:
            write_json(args.out, rows)
            print(f"wrote {args.out}")


def _one_line(message: str) -> str:
    """``message`` with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(message.split())


def run_folder(root: Path, parts: list[str], args: Any) -> Path:
    """Create ``root/<part>__<part>__<time>/`` (:func:`unique_folder`) and write ``config.json``
    (the arguments) there."""
    folder = unique_folder(Path(root) / "__".join([*parts, time.strftime("%Y%m%d-%H%M%S")]))
    config = {**dataclasses.asdict(args), "command": command_line()}
    write_json(folder / "config.json", config)
    return folder


def unique_folder(path: Path) -> Path:
    """Create ``path``, or, where it exists, the first of ``path-2``, ``path-3``, ... that does
    not, and return it: two runs started in the same second never write into one folder."""
    candidate, copy = Path(path), 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            copy += 1
            candidate = candidate.with_name(f"{Path(path).name}-{copy}")


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
    cells = [[format_cell(row.get(col), formats.get(col)) for col in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
        *("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells),
    ]
    text = "\n".join(lines)
    print(text)
    return text


def format_cell(value: Any, spec: str | None = None) -> str:
    """``value`` as a table shows it: formatted by ``spec``, ``-`` for None, floats to 3
    significant digits without a spec."""
    if value is None:
        return "-"
    if spec is not None:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
