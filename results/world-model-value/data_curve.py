"""Hopper's world models: validation return against the transitions collected for each, beside
DE and CEM on the simulator on the same seeds 1000-1004 (1000-step episodes, 64 x 3, the critic;
the models' planner is DE with TS-inf, hopper's default).

    python results/world-model-value/data_curve.py

Reads the evaluate.py folders below (their episodes.csv) and draws data_curve.png with
improve_world_model.py's round plot. Round r is the model after r rounds of its own planner's
data (M0, M1, M2 in README.md).
"""

import csv
from pathlib import Path

from experiments.harness.statistics import interval_record
from experiments.improve_world_model import rounds_figure

HERE = Path(__file__).parent
MODELS = [  # (round, transitions collected for it, the folder of its validation episodes)
    (0, 27_103, "validation/m0-tsinf"),
    (1, 29_705, "validation/m1-tsinf"),
    (2, 38_284, "validation/m2-tsinf"),
]
SIMULATOR = "validation/simulator"  # DE's and CEM's rows, on the simulator


def returns(folder: str, planner: str) -> list[float]:
    """The episode returns of ``planner``'s rows in ``folder``, in seed order."""
    with open(HERE / folder / "episodes.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["planner"] == planner]
    return [float(r["return"]) for r in sorted(rows, key=lambda r: int(r["seed"]))]


def main() -> None:
    records = [
        {
            "round": index,
            "trained_on": transitions,
            "validation": interval_record(returns(folder, "de")),
        }
        for index, transitions, folder in MODELS
    ]
    levels = {name: interval_record(returns(SIMULATOR, name)) for name in ("de", "cem")}
    figure = rounds_figure(records, levels, "de", "hopper")
    figure.axes[0].set_xlabel("transitions collected (the agent's, then its planner's rounds)")
    figure.savefig(HERE / "data_curve.png")
    for record in records:
        print(f"round {record['round']}: {record['validation']['text']}")
    print(", ".join(f"{name} on the simulator: {level['text']}" for name, level in levels.items()))


if __name__ == "__main__":
    main()
