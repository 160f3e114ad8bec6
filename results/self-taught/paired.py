"""Diffusion Elites with the self-taught prior minus DE with the SAC-data prior, paired by seed.

    python results/self-taught/paired.py

Reads ``main/episodes.csv`` (the shipped priors) and ``<task>-sac-prior/episodes.csv`` (the same
grid's DE rows with ``--prior checkpoints/<task>-action.pt``); prints mean ± 95% t per budget.
"""

import csv
from pathlib import Path

import numpy as np

from experiments.harness.statistics import mean_interval

HERE = Path(__file__).resolve().parent


def de_returns(path: Path, task: str) -> dict[tuple[str, int], float]:
    with open(path) as file:
        rows = [r for r in csv.DictReader(file) if r["env"] == task and r["planner"] == "de"]
    return {(r["budget"], int(r["seed"])): float(r["return"]) for r in rows}


for task in ("half-cheetah", "reacher"):
    taught = de_returns(HERE / "main" / "episodes.csv", task)
    sac = de_returns(HERE / f"{task}-sac-prior" / "episodes.csv", task)
    for budget in sorted({b for b, _ in sac}):
        seeds = sorted(s for b, s in sac if b == budget)
        difference = np.array([taught[budget, s] - sac[budget, s] for s in seeds])
        print(f"{task} {budget}: self-taught minus SAC-data prior {mean_interval(difference)}")
