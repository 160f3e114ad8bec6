"""The world models of hopper, walker2d and half-cheetah: validation return against the
transitions collected for each, beside DE and CEM on the simulator on the same seeds. Hopper and
walker2d: 1000-step episodes, seeds 1000-1004, DE 64 x 3 with the task's critic and TS-inf, its
default. Half-cheetah: 200-step episodes, seeds 1150-1159, DE 64 x 3 with every default of today
(TS-inf, the learned reward), run at stop 42.

    python results/world-model-value/data_curve.py

Reads the evaluate.py folders below (their episodes.csv) and draws ``data_curve.png`` (hopper),
``walker2d_data_curve.png`` and ``../world-model-candidates/data_curve.png`` with
improve_world_model.py's round plot. Round r is the model after r rounds of its own planner's
data (hopper's M0-M4 and walker2d's R1, R2 in README.md; half-cheetah's R1-R5 in
``../world-model-candidates/README.md``, whose transitions count the replayed candidates; R1 and
R2 read the root pitch raw, as they were trained, and R4 is the shipped model).
Hopper's rows all plan over the 452k agent's prior (its default until stop 34), as its simulator
rows do; over the self-taught prior, its default since, M4 scores 3628 and the simulator 3641.
Walker2d's M0 and R1 were also run on seeds 1005-1009; the plot keeps to 1000-1004, which every
round ran.
"""

import csv
from pathlib import Path

from experiments.harness.statistics import interval_record
from experiments.improve_world_model import rounds_figure

HERE = Path(__file__).parent
AGENT_THEN_ROUNDS = "transitions collected (the agent's, then its planner's rounds)"
CANDIDATE_ROUNDS = "transitions collected (episodes and replayed candidates of each round)"
TASKS = {  # task: (its models: (round, transitions collected, folders of its validation
    # episodes)), the folder of DE's and CEM's rows on the simulator, the plot's file, x label)
    "hopper": (
        [
            (0, 27_103, ["validation/m0-tsinf"]),
            (1, 29_705, ["validation/m1-tsinf"]),
            (2, 38_284, ["validation/m2-tsinf"]),
            (3, 52_820, ["m3/validation"]),
            (4, 70_493, ["m4/validation-default"]),
        ],
        "validation/simulator",
        "data_curve.png",
        AGENT_THEN_ROUNDS,
    ),
    "walker2d": (
        [
            (
                0,
                51_433,
                [
                    "walker2d-validation/agent-model-tsinf-critic-1000",
                    "walker2d-validation/agent-model-tsinf-critic-1000-seeds-1003-1004",
                ],
            ),
            (1, 68_777, ["walker2d-validation/round1-tsinf-critic-1000"]),
            (2, 87_241, ["walker2d-validation/round2-tsinf-critic-1000"]),
        ],
        "walker2d-validation/simulator-1000",
        "walker2d_data_curve.png",
        AGENT_THEN_ROUNDS,
    ),
    "half-cheetah": (
        [
            (1, 294_000, ["../world-model-candidates/data-curve/r1"]),
            (2, 490_000, ["../world-model-candidates/data-curve/r2"]),
            (3, 784_000, ["../world-model-candidates/data-curve/r3s"]),
            (4, 1_078_000, ["../world-model-candidates/data-curve/r4"]),
            (5, 1_372_000, ["../world-model-candidates/data-curve/r5"]),
        ],
        "../world-model-candidates/data-curve/simulator",
        "../world-model-candidates/data_curve.png",
        CANDIDATE_ROUNDS,
    ),
}


def returns(folders: list[str], planner: str) -> list[float]:
    """The episode returns of ``planner``'s rows in ``folders``, in seed order."""
    rows = []
    for folder in folders:
        with open(HERE / folder / "episodes.csv") as handle:
            rows += [r for r in csv.DictReader(handle) if r["planner"] == planner]
    return [float(r["return"]) for r in sorted(rows, key=lambda r: int(r["seed"]))]


def main() -> None:
    for task, (models, simulator, plot, x_label) in TASKS.items():
        records = [
            {
                "round": index,
                "trained_on": transitions,
                "validation": interval_record(returns(folders, "de")),
            }
            for index, transitions, folders in models
        ]
        levels = {name: interval_record(returns([simulator], name)) for name in ("de", "cem")}
        figure = rounds_figure(records, levels, "de", task)
        figure.axes[0].set_xlabel(x_label)
        figure.savefig(HERE / plot)
        for record in records:
            print(f"{task} round {record['round']}: {record['validation']['text']}")
        print(", ".join(f"{name} on the simulator: {lv['text']}" for name, lv in levels.items()))


if __name__ == "__main__":
    main()
