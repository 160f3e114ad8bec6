"""Why does the shifted-mean warm start lose to a restart? Per-step measurements (issue 9).

Runs Diffusion Elites episodes with ``warm_start="none"`` (so the trajectory is the restart's)
and, before every replan, scores from the new state what each warm start would start from:

- ``plan``: the previous executed plan shifted one step in action space (the kept candidate);
- ``mean`` / ``best``: the decode of the previous search's mean / best latent shifted one step
  (latent shift, tail from the prior);
- ``elites``: the previous E elite latents shifted (their best decode);
- ``prior`` / ``gauss-mean`` / ``gauss-best``: the best of N samples from N(0, I),
  N(shifted mean, I), N(shifted best, I) (one first iteration of each warm start).

Unicycle-obstacles only: elites are split by the side they pass the nearest obstacle on, to see
whether the shifted mean of elites on both sides decodes to neither.

    PYTHONPATH=. python results/warm-start/diagnose.py --env unicycle-obstacles --budget 16x2
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from envs.planning_state import read_planning_state
from envs.registry import get_task, make_env
from experiments.harness.wiring import load_prior, make_budget, planner_settings, task_planner
from planner.action_scaling import ActionScaling

BLEND_KEEP = 0.8  # blend-best: sqrt(1 - 0.8^2) = 0.6 of fresh noise, on the prior's shell
SAMPLES = 256  # latents per sampled start, for the quantiles of a first iteration


def sides(objective, state, actions: np.ndarray) -> np.ndarray:
    """(N,) +1/-1: the side of the line start -> goal each plan's mid-path lies on (0: none)."""
    poses = objective.rollout_states(state, actions)[:, :, :2]
    start, goal = poses[0, 0], np.asarray(state[3:5])
    direction = goal - start
    offsets = poses - start
    lateral = direction[0] * offsets[..., 1] - direction[1] * offsets[..., 0]
    return np.sign(lateral.mean(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="unicycle-obstacles")
    parser.add_argument("--budget", default="16x2")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    population, iterations = (int(x) for x in args.budget.split("x"))
    spec = get_task(args.env)
    env = make_env(args.env)
    objective = spec.make_objective(env)
    prior = load_prior("de", spec)
    budget = make_budget(spec, env, prior, population, iterations)
    settings = planner_settings(spec, warm_start="none")
    scaling = ActionScaling(env.action_space.low, env.action_space.high)
    rows = []
    for seed in range(args.episodes):
        planner = task_planner("de", spec, objective, budget, seed, prior, settings)
        told = {}
        tell = planner.elites.tell

        def record(latents, rewards, tell=tell, told=told):
            told["latents"], told["rewards"] = latents.clone(), np.asarray(rewards)
            tell(latents, rewards)

        planner.elites.tell = record
        planner.reset()
        env.reset(seed=seed)
        rng = torch.Generator().manual_seed(seed)
        previous, steps = None, 0
        while True:
            state = read_planning_state(env)
            if previous is not None:
                rows.append(measure(planner, objective, prior, state, previous, rng, settings))
            result = planner.plan(state)
            order = np.argsort(-told["rewards"], kind="stable")[: planner.elites.config.num_elites]
            previous = {
                "mean": planner.elites.mean,
                "best": planner.elites.best.latent,
                "elites": told["latents"][order],
                "plan": planner.memory.plan.copy(),
                "state": state,
            }
            _, _, terminated, truncated, _ = env.step(scaling.to_env(result.action))
            steps += 1
            if terminated or truncated or (args.max_steps and steps >= args.max_steps):
                break
    report(rows, args)


def shifted(latents: torch.Tensor) -> torch.Tensor:
    """``latents (..., H, A)`` one step earlier; the tail step from the prior's mean (zero)."""
    out = torch.zeros_like(latents)
    out[..., :-1, :] = latents[..., 1:, :]
    return out


def norm_keeping_std(mean: torch.Tensor) -> float:
    """The std s with E|mean + s * eps|^2 = d (the prior's), floored at 0.05."""
    return max(1.0 - float(mean.square().mean()), 0.05**2) ** 0.5


def measure(planner, objective, prior, state, previous, rng, settings) -> dict:
    """One step's rewards of every warm start's starting point (module docstring)."""
    steps = settings.search_steps

    def score(latents: torch.Tensor) -> np.ndarray:
        actions = prior.decode(latents, steps).numpy().astype(np.float64)
        if latents.shape[0] == SAMPLES:  # a sampled start: also its roughness and latent norm
            jerk[len(jerk)] = np.abs(np.diff(actions, axis=1)).mean()
            norm[len(norm)] = float(latents.square().mean())
        return objective(state, actions)

    jerk, norm = {}, {}

    shape = tuple(prior.latent_shape)
    noise = torch.randn(SAMPLES, *shape, generator=rng)
    mean, best = shifted(previous["mean"]), shifted(previous["best"])
    row = {
        "plan": float(objective(state, planner.memory.previous(1)[None])[0]),
        "mean": float(score(mean[None])[0]),
        "best": float(score(best[None])[0]),
        "elites": float(score(shifted(previous["elites"])).max()),
        "prior": score(noise),
        "gauss-mean": score(mean + noise),
        "gauss-best": score(best + noise),
        "gauss-mean-vp": score(mean + norm_keeping_std(mean) * noise),
        "blend-best": score(BLEND_KEEP * best + (1 - BLEND_KEEP**2) ** 0.5 * noise),
        "jerk": jerk,
        "norm": norm,
        "mean-norm2/d": float(previous["mean"].square().mean()),
        "best-norm2/d": float(previous["best"].square().mean()),
    }
    if np.asarray(state).shape[0] > 5 and hasattr(objective, "rollout_states"):
        elite_actions = prior.decode(previous["elites"], steps).numpy().astype(np.float64)
        side = sides(objective, previous["state"], elite_actions)
        row["minority"] = int(min((side > 0).sum(), (side < 0).sum()))
    return row


def report(rows: list[dict], args) -> None:
    """Print the per-step comparison (means over steps)."""
    n = len(rows)
    print(f"{args.env} {args.budget}: {args.episodes} episodes, {n} replans (warm_start=none)")
    prior_median = np.array([np.median(r["prior"]) for r in rows])
    prior_best16 = np.array([r["prior"][:16].max() for r in rows])
    print(
        "start point                         mean reward  P(< prior median)  P(< best of 16 prior)"
    )
    for key in ("plan", "mean", "best", "elites"):
        values = np.array([r[key] for r in rows])
        print(
            f"{key:35s} {values.mean():11.3f}  {np.mean(values < prior_median):17.2f}  "
            f"{np.mean(values < prior_best16):21.2f}"
        )
    for key in ("mean-norm2/d", "best-norm2/d"):
        print(f"{key}: {np.mean([r[key] for r in rows]):.3f}")
    sampled = ("prior", "gauss-mean", "gauss-best", "gauss-mean-vp", "blend-best")
    for index, key in enumerate(sampled):
        samples = np.stack([r[key] for r in rows])
        best16 = samples[:, :16].max(1)
        jerk = np.mean([r["jerk"][index] for r in rows])
        norm = np.mean([r["norm"][index] for r in rows])
        print(
            f"{key + ' (sample / best of 16)':35s} {samples.mean():11.3f}  "
            f"{np.mean(np.median(samples, 1) < prior_median):17.2f}  best16 {best16.mean():.3f}"
            f"  |z|^2/d {norm:.2f}  mean abs action change {jerk:.3f}"
        )
    if "minority" in rows[0]:
        minority = np.array([r["minority"] for r in rows])
        mean = np.array([r["mean"] for r in rows])
        best = np.array([r["best"] for r in rows])
        for split, mask in (("one side", minority == 0), ("both sides", minority > 0)):
            if mask.any():
                print(
                    f"elites on {split:10s}: {mask.mean():.2f} of steps; shifted mean "
                    f"{mean[mask].mean():.3f}, shifted best {best[mask].mean():.3f}, "
                    f"mean < prior median {np.mean(mean[mask] < prior_median[mask]):.2f}"
                )


if __name__ == "__main__":
    main()
