"""How exact must walker2d's predicted end states be for its critic to rank a population?

    python results/world-model-value/value-noise/value_noise.py --out runs/value_noise.json

One validation episode (seed 1000, 200 steps) is planned as check_world_model.py plans it: DE
64 x 3 with walker2d's world model, TS-inf and its critic, every task default. Every 4th control
step the planner's last population is scored by the simulator from the env's state three ways:
without the value, with the critic at the true end state (the simulator's planner's score), and
with the critic at the true end state plus Gaussian noise of c times the std of the world model's
training observations in every dimension: an end-state error of about c in the units of
check_world_model.py's k-step error. For each c it prints, and writes to ``--out`` (the shipped
record is ``value_noise.json`` beside this script; an existing file is refused unless
``--overwrite``), the mean over the populations of the rank correlation of the noisy value with
the exact value and of the noisy score with the exact score. A one-off of stop 35
(results/world-model-value/README.md).
"""

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from envs.planning_state import read_planning_state
from envs.registry import make_env
from experiments.check_world_model import population_ranking, simulator_setup, value_split
from experiments.harness.cli import command_line, write_json
from experiments.harness.collection import PlannerSource, collect_episode
from experiments.harness.outputs import check_output
from planner.threads import use_planning_threads
from policies.setup import PlanningSetup

SEED, STEPS, EVERY = 1000, 200, 4
NOISE = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.9)


class Populations(PlannerSource):
    """The world model's planner; keeps the env's state and the last population every
    ``EVERY`` control steps."""

    def __init__(self, planning) -> None:
        super().__init__(planning)
        self.kept = []

    def act(self, env, observation, step):
        result = self.decide(env, observation)
        if step % EVERY == 0:
            self.kept.append((read_planning_state(env), result.candidates))
        return result.action


class NoisyValue:
    """``value`` read at observations moved by Gaussian noise of std ``scale`` (O,)."""

    def __init__(self, value, scale: np.ndarray, seed: int) -> None:
        self.value, self.scale = value, scale
        self.rng = np.random.default_rng(seed)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        noise = self.scale * self.rng.standard_normal(observations.shape)
        return self.value((observations + noise).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="the JSON record to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args()
    out = Path(args.out)
    check_output(out, args.overwrite)
    use_planning_threads(1)
    setup = PlanningSetup("walker2d", reward="world-model")
    env = make_env(setup.spec.name)
    planning = replace(setup, seed=SEED, record=True).resolve(env)
    source = Populations(planning)
    episode = collect_episode(env, source, SEED, STEPS, 0.0, None)
    model = planning.objective.model
    scale = model.input_normalizer.scale[: model.config.obs_dim].cpu().numpy()
    simulator = simulator_setup(setup)
    costs = setup.spec.costs if simulator.costs is None else simulator.costs
    critic = simulator.terminal_value(env)
    no_value = setup.spec.make_objective(env, costs, None)
    exact = setup.spec.make_objective(env, costs, critic)
    rows = []
    for c in NOISE:
        noisy = setup.spec.make_objective(env, costs, NoisyValue(critic, c * scale, seed=len(rows)))
        value, score = [], []
        for state, candidates in source.kept:
            returns, truth, found = (f(state, candidates) for f in (no_value, exact, noisy))
            value.append(value_split(found, returns, truth, returns)["value_rank_correlation"])
            score.append(population_ranking(found, truth, elites=1)["rank_correlation"])
        rows.append({"noise": c, "value_rank_correlation": float(np.mean(value)),
                     "score_rank_correlation": float(np.mean(score))})  # fmt: skip
        print(f"end-state noise {c:.2f}: rank correlation with the exact value {np.mean(value):.2f}"
              f", of the score {np.mean(score):.2f}")  # fmt: skip
    record = {
        "command": command_line(),
        "episode": {
            "seed": SEED,
            "steps": len(episode["rewards"]),
            "return": float(episode["rewards"].sum()),
        },
        "populations": len(source.kept),
        "noise_unit": "std of the world model's training observations, per dimension",
        "rows": rows,
    }
    write_json(out, record)


if __name__ == "__main__":
    main()
