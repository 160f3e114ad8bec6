"""Put an evaluation's tables and plots into README.md, so that every number there has a source.

    python experiments/evaluate.py --suite full --out results/full    # CPU-hours
    python experiments/results_to_readme.py --results results/full

Replaces what lies between the lines ``<!-- results:start -->`` and ``<!-- results:end -->`` of
the README with the ``results.md`` of ``--results`` (its command, machine, tables and paired
comparisons), its headings moved under the README's section and its plot links made relative
to the README. Running it again with the same results changes nothing. A grid that has not
finished, or one other than the full suite (without ``--any-grid``), is refused.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from experiments.harness.cli import REPO_ROOT, ScriptArgs, UsageError, arg, run_main
from planner.files import atomic_write

START, END = "<!-- results:start -->", "<!-- results:end -->"
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


@dataclass
class ReadmeArgs(ScriptArgs):
    """Arguments of results_to_readme.py."""

    results: str = arg("results/full", "the --out folder of evaluate.py")
    readme: str = arg(str(REPO_ROOT / "README.md"), "the file whose results block is replaced")
    any_grid: bool = arg(False, "accept a grid other than --suite full (to try the script)")


def read_results(folder: Path, any_grid: bool) -> str:
    """``folder/results.md``, refused unless its grid is finished (and the full suite)."""
    grid_file, results, log = (
        folder / name for name in ("grid.json", "results.md", "episodes.csv")
    )
    if not grid_file.is_file() or not results.is_file():
        raise UsageError(
            f"{folder} holds no grid.json and results.md: pass the --out folder of a finished "
            "experiments/evaluate.py run"
        )
    grid = json.loads(grid_file.read_text())
    if grid["suite"] != "full" and not any_grid:
        raise UsageError(
            f"{folder} holds the {grid['suite'] or 'custom'} grid, not --suite full: the README "
            "shows the full suite (add --any-grid to insert it anyway)"
        )
    wanted = sum(len(row["seeds"]) for row in grid["rows"])
    with open(log, newline="") as file:
        finished = sum(1 for _ in csv.DictReader(file))
    if finished < wanted:
        raise UsageError(
            f"{folder} holds {finished} of its grid's {wanted} episodes: finish it by rerunning "
            f"its command ({grid.get('command')})"
        )
    return results.read_text()


def as_readme_block(markdown: str, folder: Path, readme: Path) -> str:
    """``results.md`` as it sits in the README: no title, headings one level down, plot links
    relative to the README."""
    lines = []
    for line in markdown.splitlines():
        if line.startswith("# "):
            continue
        lines.append("#" + line if line.startswith("#") else line)
    text = "\n".join(lines).strip("\n")
    base = os.path.relpath(folder.resolve(), readme.resolve().parent)

    def relink(match: re.Match) -> str:
        return f"![{match[1]}]({Path(base, match[2]).as_posix()})"

    source = Path(base, "results.md").as_posix()
    note = f"<!-- written by experiments/results_to_readme.py from {source}: edit neither -->"
    return f"{note}\n\n{IMAGE.sub(relink, text)}\n"


def insert(readme_text: str, block: str) -> str:
    """``readme_text`` with ``block`` between its START and END lines (each there once)."""
    ordered = readme_text.find(START) < readme_text.find(END)
    if readme_text.count(START) != 1 or readme_text.count(END) != 1 or not ordered:
        raise UsageError(
            f"the README needs one line {START} and, after it, one line {END} around the "
            "place the results go"
        )
    head, rest = readme_text.split(START)
    tail = rest.split(END)[1]
    return f"{head}{START}\n{block}{END}{tail}"


def main(args: ReadmeArgs) -> Path:
    """Replace the README's results block; return the README's path."""
    folder, readme = Path(args.results), Path(args.readme)
    block = as_readme_block(read_results(folder, args.any_grid), folder, readme)
    text = insert(readme.read_text(), block)
    with atomic_write(readme, "w") as file:
        file.write(text)
    print(f"{readme}: results of {folder} inserted")
    return readme


if __name__ == "__main__":
    run_main(main, ReadmeArgs, __doc__)
