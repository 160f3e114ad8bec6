"""Reproduce the seed blog's experiment: Diffusion Elites vs inpainting on a state-trajectory prior.

    python experiments/reproduce_blog.py                # the fast setting: DDIM with 5 steps
    python experiments/reproduce_blog.py --steps 60     # the blog's setting

A prior over (x, y) unicycle arcs (``train_prior.py --kind state``) is searched by Diffusion
Elites for a trajectory ending at the goal g = (0.4, 0.2): reward = -|x_H - g|, elite fraction
0.1, T iterations of N latents, each decoded by deterministic DDIM with S = ``--steps`` steps.
The baseline the blog compares against is inpainting: N plain samples whose first point is
fixed to the arcs' mean first point and whose last point is fixed to g, imposed after every
denoising step by replacement in model space (the known values noised to the current level;
see :func:`planner.diffusion.ddim_decode`).

Kinematic feasibility (:func:`envs.unicycle_feasibility.unicycle_feasibility_residual`, with the
dataset's dt, speed range and a yaw-rate bound of ``OMEGA_MAX``): the largest relative excess,
anywhere along a path, of the speed and yaw rate it implies beyond what the arcs' unicycle can do;
0 on the dataset. ``feasibility`` judges 8-step windows (``STRIDE``: breaks count, sub-step jitter
does not), ``feasibility_per_step`` single steps (the model's ~1e-3 position noise, a tenth of a
step, counts too).

Writes into ``--out-dir`` (default ``runs/reproduce_blog__s<S>__seed<seed>__<time>/``):
``config.json``, ``results.json`` (also ``--out PATH``), ``iterations.png`` (one panel per
iteration: population in grey, elites coloured by end-point distance), ``iterations.gif``,
``inpainting.png``, ``elites.png`` (the final elites) and ``dataset.png`` (paths coloured by
their feasibility residual); prints the per-iteration and feasibility tables.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from envs.datasets import unicycle_arcs
from envs.registry import get_task
from envs.unicycle_feasibility import unicycle_feasibility_residual
from experiments.harness.cli import (
    REPO_ROOT,
    ScriptArgs,
    UsageError,
    arg,
    check_device,
    command_line,
    print_table,
    run_folder,
    run_main,
    write_json,
)
from planner.elites import DiffusionElites, ElitesConfig
from planner.prior import DiffusionPrior
from policies.setup import read_prior

ARC_DT = 0.01
"""Time step of the arcs the state prior is trained on (``unicycle_arcs``' default)."""
ARC_SPEEDS = (0.5, 1.0)
"""Their speed range (``unicycle_arcs``' default)."""
OMEGA_MAX = 4.0
"""Yaw-rate bound (rad/s) of the feasibility residual: the arcs' omega = v kappa with
kappa ~ N(0, 1) and v <= 1 stays within it up to 4 sigma (no arc of 20000 exceeds it)."""
STRIDE = 8
"""Steps per window of the reported feasibility: 0.08 s, chords of ~0.06, far above the
decoded paths' position noise (~1e-3 at S = 60) and far below the inpainting breaks (~0.2)."""
CLOSE = 0.02
"""An elite counts as reaching the goal within this distance."""
RESIDUAL_COLOURS = (1e-3, 10.0)
"""Range of the colour scale of the feasibility figures (0 is drawn as its low end)."""


@dataclass
class BlogArgs(ScriptArgs):
    """Arguments of reproduce_blog.py."""

    prior: str = arg(
        str(REPO_ROOT / "checkpoints" / "unicycle-state.pt"), "state-trajectory prior checkpoint"
    )
    force_prior: bool = arg(False, "use --prior even if it was trained for another task")
    steps: int = arg(5, "DDIM steps S per decode: 5 (fast setting) or 60 (the blog's)", minimum=1)
    population: int = arg(
        256, "N latents per iteration (also the number of inpainting samples)", minimum=1
    )
    iterations: int = arg(10, "T Diffusion Elites iterations", minimum=1)
    elite_fraction: float = arg(0.1, "rho, share of the population kept as elites")
    goal_x: float = arg(0.4, "goal x")
    goal_y: float = arg(0.2, "goal y")
    dataset_samples: int = arg(2000, "arcs drawn to measure the dataset's feasibility", minimum=1)
    seed: int = arg(0, "seeds the search; seed+1 the inpainting latents, seed+2 the arcs drawn")
    device: str = arg("cpu", "torch device of the prior", check=check_device)
    out: str | None = arg(None, "also write the results JSON to this path")
    out_dir: str | None = arg(None, "folder for figures and results (default: a run folder)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.elite_fraction <= 1:
            raise ValueError(f"--elite-fraction must be in (0, 1], got {self.elite_fraction}")


def goal_distances(trajectories: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Distance of each end point to the goal: trajectories ``(N, H, 2)`` -> ``(N,)``."""
    return torch.linalg.vector_norm(trajectories[:, -1] - goal, dim=-1)


def feasibility(positions: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Feasibility residual ``(N,)`` of positions ``(N, H, 2)`` for the arcs' unicycle."""
    return unicycle_feasibility_residual(positions, ARC_DT, ARC_SPEEDS, OMEGA_MAX, stride)


def run_elites(prior: DiffusionPrior, args: BlogArgs, goal: torch.Tensor) -> list[dict]:
    """T iterations of ask -> decode -> score -> tell; one record per iteration.

    Each record holds the table's numbers and, for the figures, the decoded population
    ``(N, H, 2)`` and its elites ``(E, H, 2)`` with their distances ``(E,)``, best first.
    """
    config = ElitesConfig(population=args.population, elite_fraction=args.elite_fraction)
    elites = DiffusionElites(prior.latent_shape, config, seed=args.seed, device=prior.device)
    records, running_best = [], math.inf
    for iteration in range(1, args.iterations + 1):
        # Sample, decode, score
        latents = elites.ask()
        trajectories = prior.decode(latents, args.steps)
        distances = goal_distances(trajectories, goal)
        # Elites and refit
        elites.tell(latents, -distances)
        order = torch.argsort(distances, stable=True)[: config.num_elites]
        elite_distances = distances[order].cpu().numpy()
        running_best = min(running_best, float(elite_distances[0]))
        records.append(
            {
                "iteration": iteration,
                "best_distance": float(elite_distances[0]),
                "median_elite_distance": float(np.median(elite_distances)),
                "frac_elites_within_0_02": float(np.mean(elite_distances <= CLOSE)),
                "best_distance_so_far": running_best,
                "median_distance": float(distances.median()),
                "latent_std": float(elites.std.mean()),
                "population": trajectories.cpu().numpy(),
                "elites": trajectories[order].cpu().numpy(),
                "elite_distances": elite_distances,
            }
        )
    return records


def inpaint(
    prior: DiffusionPrior, args: BlogArgs, start: np.ndarray, goal: torch.Tensor
) -> np.ndarray:
    """N samples ``(N, H, 2)`` with the first point fixed to ``start`` and the last to ``goal``."""
    horizon, channels = prior.latent_shape
    mask = torch.zeros(horizon, channels, dtype=torch.bool)
    mask[[0, -1]] = True
    values = torch.zeros(horizon, channels)
    values[0], values[-1] = torch.as_tensor(start, dtype=torch.float32), goal.cpu()
    generator = torch.Generator().manual_seed(args.seed + 1)
    latents = torch.randn(args.population, horizon, channels, generator=generator)
    return prior.decode(latents, args.steps, known=(mask, values)).cpu().numpy()


# Figures


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=90, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _limits(prior: DiffusionPrior, goal: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Axis limits covering the data's bounds and the goal, with a margin."""
    low = np.minimum(prior.normalizer.low.cpu().numpy(), goal)
    high = np.maximum(prior.normalizer.high.cpu().numpy(), goal)
    margin = 0.05 * float(np.max(high - low))
    return (low[0] - margin, high[0] + margin), (low[1] - margin, high[1] + margin)


def draw_panel(
    ax: Axes,
    limits: tuple[tuple[float, float], ...],
    goal: np.ndarray,
    title: str,
    grey: np.ndarray | None = None,
    coloured: np.ndarray | None = None,
    values: np.ndarray | None = None,
    norm: LogNorm | None = None,
) -> None:
    """Trajectories ``grey (N, H, 2)`` in grey and ``coloured (E, H, 2)`` by ``values (E,)``.

    The coloured ones are drawn worst first, so the best lie on top; the goal is a red star.
    """
    if grey is not None:
        ax.add_collection(LineCollection(grey, colors="0.6", linewidths=0.5, alpha=0.5))
    if coloured is not None:
        order = np.argsort(-values, kind="stable")
        lines = LineCollection(coloured[order], cmap="viridis", norm=norm, linewidths=1.0)
        lines.set_array(values[order])
        ax.add_collection(lines)
    ax.plot(*goal, marker="*", color="red", markersize=12, zorder=5)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)


def _panel_title(record: dict) -> str:
    return (
        f"iteration {record['iteration']}: best {record['best_distance']:.3f}, "
        f"{record['frac_elites_within_0_02']:.0%} elites < {CLOSE}"
    )


def plot_iterations(
    records: list[dict], limits: tuple, goal: np.ndarray, folder: Path
) -> list[Path]:
    """``iterations.png`` (one panel per iteration) and ``iterations.gif`` (one frame each)."""
    distances = np.concatenate([r["elite_distances"] for r in records])
    norm = LogNorm(max(float(distances.min()), 1e-4), max(float(distances.max()), 1e-3))
    colorbar = ScalarMappable(norm=norm, cmap=colormaps["viridis"])
    label = "elite end-point distance to goal"

    def draw(ax: Axes, record: dict) -> None:
        draw_panel(
            ax, limits, goal, _panel_title(record), record["population"], record["elites"],
            record["elite_distances"], norm,
        )  # fmt: skip

    columns = min(5, len(records))
    rows = math.ceil(len(records) / columns)
    grid = _figure(3.2 * columns + 1.0, 3.0 * rows)
    axes = grid.subplots(rows, columns, squeeze=False).ravel()
    for ax, record in zip(axes, records, strict=False):
        draw(ax, record)
    for ax in axes[len(records) :]:
        ax.set_visible(False)
    grid.colorbar(colorbar, ax=list(axes), label=label, shrink=0.8)
    grid.savefig(folder / "iterations.png")

    frames = []
    for record in records:
        frame = _figure(5.5, 5.0)
        ax = frame.add_subplot(1, 1, 1)
        draw(ax, record)
        frame.colorbar(colorbar, ax=ax, label=label)
        frame.canvas.draw()
        frames.append(np.asarray(frame.canvas.buffer_rgba())[..., :3].copy())
    imageio.mimsave(folder / "iterations.gif", frames, duration=800, loop=0)
    return [folder / "iterations.png", folder / "iterations.gif"]


def plot_samples(
    samples: np.ndarray, limits: tuple, goal: np.ndarray, title: str, path: Path
) -> Path:
    """One panel of trajectories ``(N, H, 2)`` coloured by their feasibility residual.

    One colour scale for every such panel, so the dataset, the elites and inpainting compare.
    """
    norm = LogNorm(*RESIDUAL_COLOURS)
    residual = np.clip(feasibility(samples), *RESIDUAL_COLOURS)
    figure = _figure(5.0, 5.0)
    ax = figure.add_subplot(1, 1, 1)
    draw_panel(ax, limits, goal, title, coloured=samples, values=residual, norm=norm)
    label = f"feasibility residual (stride {STRIDE}), clipped to {list(RESIDUAL_COLOURS)}"
    figure.colorbar(ScalarMappable(norm=norm, cmap=colormaps["viridis"]), ax=ax, label=label)
    figure.savefig(path)
    return path


# Main


def main(args: BlogArgs) -> dict:
    """Run the search and the baseline, write figures and results; return the results dict."""
    tic = time.perf_counter()
    prior = read_prior(args.prior, get_task("unicycle-goal").family, args.device, args.force_prior)
    if prior.channels != 2:
        raise UsageError(
            f"{args.prior} generates C={prior.channels} channels; this experiment needs an (x, y) "
            "state prior: python experiments/train_prior.py --env unicycle-goal --kind state"
        )
    if args.out_dir is None:
        parts = ["reproduce_blog", f"s{args.steps}", f"seed{args.seed}"]
        folder = run_folder(REPO_ROOT / "runs", parts, args)
    else:
        folder = Path(args.out_dir)
        folder.mkdir(parents=True, exist_ok=True)
    goal = torch.tensor([args.goal_x, args.goal_y], device=prior.device)
    goal_np = goal.cpu().numpy()
    arcs = unicycle_arcs(
        args.dataset_samples, prior.horizon, dt=ARC_DT, seed=args.seed + 2, v_range=ARC_SPEEDS
    ).states
    start = arcs[:, 0].mean(axis=0)

    # Diffusion Elites
    search_tic = time.perf_counter()
    records = run_elites(prior, args, goal)
    search_seconds = time.perf_counter() - search_tic

    # Inpainting baseline
    inpaint_tic = time.perf_counter()
    inpainted = inpaint(prior, args, start, goal)
    inpaint_seconds = time.perf_counter() - inpaint_tic

    # Feasibility: the final elites, the final population and the first (plain prior samples)
    paths = {
        "dataset": arcs,
        "de": records[-1]["elites"],
        "inpainting": inpainted,
        "prior_samples": records[0]["population"],
        "de_population": records[-1]["population"],
    }
    residuals = {name: feasibility(x) for name, x in paths.items()}
    per_step = {name: feasibility(x, stride=1) for name, x in paths.items()}

    # Figures
    limits = _limits(prior, goal_np)
    figures = plot_iterations(records, limits, goal_np, folder)
    panels = {
        "inpainting.png": (inpainted, f"inpainting, S={args.steps}"),
        "elites.png": (records[-1]["elites"], f"final DE elites, S={args.steps}"),
        "dataset.png": (arcs[:200], "dataset"),
    }
    for name, (samples, title) in panels.items():
        figures.append(plot_samples(samples, limits, goal_np, title, folder / name))

    table = [{k: v for k, v in r.items() if not isinstance(v, np.ndarray)} for r in records]
    inpaint_end = np.linalg.norm(inpainted[:, -1] - goal_np, axis=-1)
    results = {
        "steps": args.steps,
        "iterations": table,
        "feasibility": {name: float(residuals[name].mean()) for name in residuals},
        "feasibility_median": {name: float(np.median(r)) for name, r in residuals.items()},
        "feasibility_per_step": {name: float(r.mean()) for name, r in per_step.items()},
        "inpainting": {
            "max_end_distance": float(inpaint_end.max()),
            "max_start_distance": float(np.linalg.norm(inpainted[:, 0] - start, axis=-1).max()),
            "start": start,
        },
        "best_trajectory": min(records, key=lambda r: r["best_distance"])["elites"][0],
        "goal": goal_np,
        "population": args.population,
        "elite_fraction": args.elite_fraction,
        "num_elites": len(records[0]["elites"]),
        "seed": args.seed,
        "prior": str(args.prior),
        "feasibility_bounds": {
            "dt": ARC_DT,
            "v_range": ARC_SPEEDS,
            "omega_max": OMEGA_MAX,
            "stride": STRIDE,
        },
        "wall_time_s": {
            "search": search_seconds,
            "inpainting": inpaint_seconds,
            "total": time.perf_counter() - tic,
        },
        "command": command_line(),
        "figures": [str(path) for path in figures],
    }
    write_json(folder / "results.json", results)
    if args.out:
        write_json(Path(args.out), results)

    columns = ["iteration", "best_distance", "median_elite_distance", "frac_elites_within_0_02"]
    print_table(table, columns, {c: ".4f" for c in columns[1:3]})
    feasibility_rows = [
        {
            "samples": name,
            f"mean (stride {STRIDE})": residuals[name].mean(),
            f"median (stride {STRIDE})": np.median(residuals[name]),
            "mean (per step)": per_step[name].mean(),
        }
        for name in paths
    ]
    names = list(feasibility_rows[0])
    print_table(feasibility_rows, names, dict.fromkeys(names[1:], ".4g"))
    print(f"inpainting: max end-point distance {inpaint_end.max():.2e}")
    print(f"DDIM steps {args.steps}, {results['wall_time_s']['total']:.1f} s; folder: {folder}")
    return results


if __name__ == "__main__":
    run_main(main, BlogArgs, __doc__)
