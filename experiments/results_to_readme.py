"""Put an evaluation's summary into README.md, so that every number there has a source.

    python experiments/evaluate.py --suite full --out results/full    # CPU-hours
    python experiments/results_to_readme.py --results results/full

Replaces what lies between the lines ``<!-- results:start -->`` and ``<!-- results:end -->`` of
the README with one row per task: Diffusion Elites at the grid's largest budget against the best
baseline at that budget, in the task's main metric, with their paired difference over the
seeds both ran; then the command, the machine and a link to the full report (``results.md``,
its tables and plots), which stays in the results folder. Running it again with the same
results changes nothing. A grid that has not finished, or one other than the full suite
(without ``--any-grid``), is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from experiments.harness.cli import REPO_ROOT, ScriptArgs, UsageError, arg, run_main
from experiments.harness.grid import EpisodeLog, Row
from experiments.harness.summary import (
    METRICS,
    Comparison,
    main_metric,
    paired_comparisons,
    summarise_rows,
)
from planner.files import atomic_write
from policies.planners import PLANNERS

START, END = "<!-- results:start -->", "<!-- results:end -->"


@dataclass
class ReadmeArgs(ScriptArgs):
    """Arguments of results_to_readme.py."""

    results: str = arg("results/full", "the --out folder of evaluate.py")
    readme: str = arg(str(REPO_ROOT / "README.md"), "the file whose results block is replaced")
    any_grid: bool = arg(False, "accept a grid other than --suite full (to try the script)")


def read_grid(folder: Path, any_grid: bool) -> tuple[dict, list[dict]]:
    """``folder``'s ``grid.json`` and episode records, refused unless the grid is finished (and
    the full suite)."""
    grid_file, results, log = (
        folder / name for name in ("grid.json", "results.md", "episodes.csv")
    )
    if not all(path.is_file() for path in (grid_file, results, log)):
        raise UsageError(
            f"{folder} holds no grid.json, episodes.csv and results.md: pass the --out folder "
            "of a finished experiments/evaluate.py run"
        )
    grid = json.loads(grid_file.read_text())
    if grid["suite"] != "full" and not any_grid:
        raise UsageError(
            f"{folder} holds the {grid['suite'] or 'custom'} grid, not --suite full: the README "
            "shows the full suite (add --any-grid to insert it anyway)"
        )
    records = EpisodeLog(log).records
    wanted = sum(len(row["seeds"]) for row in grid["rows"])
    if len(records) < wanted:
        raise UsageError(
            f"{folder} holds {len(records)} of its grid's {wanted} episodes: finish it by "
            f"rerunning its command ({grid.get('command')})"
        )
    return grid, records


ROW_FIELDS = {field.name for field in fields(Row)}
"""The keys of a ``grid.json`` row that are :class:`Row` fields (not its seeds or value)."""


def grid_rows(grid: dict) -> list[Row]:
    """The :class:`Row` s of a ``grid.json`` record, in its order."""
    rows = []
    for record in grid["rows"]:
        values = {key: value for key, value in record.items() if key in ROW_FIELDS}
        values["tuning"] = tuple(tuple(pair) for pair in values.get("tuning", ()))
        rows.append(Row(**values))
    return rows


def headline(comparisons: list[Comparison], env: str) -> Comparison | None:
    """Diffusion Elites at the largest budget of ``env`` (its first row there: the task's
    defaults in the suites) against the baseline planner that scored best at that budget; None
    if the grid has no such pair."""
    against_baselines = [
        c
        for c in comparisons
        if c.diffusion_elites.row.env == env
        and c.diffusion_elites.row.reward == "simulator"
        and c.baseline.row.planner in PLANNERS
        and c.baseline.row.planner != "de"
    ]
    if not against_baselines:
        return None

    def evaluations(comparison: Comparison) -> int:
        row = comparison.diffusion_elites.row
        return row.population * row.iterations

    largest = max(evaluations(c) for c in against_baselines)
    at_largest = [c for c in against_baselines if evaluations(c) == largest]
    first = at_largest[0].diffusion_elites
    metric = main_metric(env)
    return max(
        (c for c in at_largest if c.diffusion_elites is first),
        key=lambda c: c.baseline.metrics[metric].mean,
    )


def summary_block(folder: Path, readme: Path, any_grid: bool) -> str:
    """The README's results block: one row per task, the command, machine and a link to the
    full report."""
    grid, records = read_grid(folder, any_grid)
    rows = grid_rows(grid)
    comparisons = paired_comparisons(summarise_rows(rows, records))
    base = os.path.relpath(folder.resolve(), readme.resolve().parent)
    report = Path(base, "results.md").as_posix()
    lines = [
        f"<!-- written by experiments/results_to_readme.py from {report}: edit neither -->",
        "",
        "| task | metric | Diffusion Elites | best baseline | DE minus baseline, paired | seeds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for env in dict.fromkeys(row.env for row in rows):
        best = headline(comparisons, env)
        if best is None:
            continue
        metric = main_metric(env)
        de, baseline = best.diffusion_elites, best.baseline
        lines.append(
            f"| {env} | {METRICS[metric][0]} | {de.metrics[metric]} ({de.row.budget}) "
            f"| {baseline.row.label}: {baseline.metrics[metric]} | {best.difference} "
            f"| {best.difference.count} |"
        )
    head = report_header(folder / "results.md")
    lines += [
        "",
        *head,
        f"- full report, every budget and planner, with plots: [{report}]({report})",
    ]
    return "\n".join(lines) + "\n"


def report_header(results: Path) -> list[str]:
    """The command, machine and date lines of a ``results.md``."""
    wanted = ("- command:", "- machine:", "- date:")
    return [line for line in results.read_text().splitlines() if line.startswith(wanted)]


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
    block = summary_block(folder, readme, args.any_grid)
    text = insert(readme.read_text(), block)
    with atomic_write(readme, "w") as file:
        file.write(text)
    print(f"{readme}: results of {folder} inserted")
    return readme


if __name__ == "__main__":
    run_main(main, ReadmeArgs, __doc__)
