"""Every shipped checkpoint loads and works: priors decode, agents act, in their task's shapes.

Parametrised over the files themselves, so a checkpoint added to ``checkpoints/`` is covered
without touching this file.
"""

import hashlib
import json

import numpy as np
import pytest
import torch

from envs.registry import CHECKPOINTS, TASKS, make_env
from planner.distilled import DistilledPrior
from planner.prior import DiffusionPrior
from planner.world_model import WorldModel
from policies.sb3_agents import load_sb3_agent

WORLD_MODELS = sorted(CHECKPOINTS.glob("*-world-model.pt"))
STUDENTS = sorted(CHECKPOINTS.glob("*-student.pt"))
PRIORS = sorted(set(CHECKPOINTS.glob("*.pt")) - set(WORLD_MODELS) - set(STUDENTS))
AGENTS = sorted((CHECKPOINTS / "agents").glob("*.zip"))


def test_checkpoints_are_shipped():
    assert PRIORS and AGENTS and WORLD_MODELS and STUDENTS, f"no checkpoints under {CHECKPOINTS}"


@pytest.mark.parametrize("path", WORLD_MODELS, ids=lambda p: p.name)
def test_shipped_world_model_predicts_its_task_better_than_no_change(path):
    """Along 20 random steps of its env, the ensemble mean's one-step error is well below that
    of predicting no change (measured ratio: reacher 0.006, half-cheetah 0.08, hopper 0.31)."""
    task = path.name.removesuffix("-world-model.pt")
    model = WorldModel.load(path, task=task)
    env = make_env(task)
    rng = np.random.default_rng(0)
    observation, _ = env.reset(seed=0)
    errors, no_change = [], []
    for _ in range(20):
        action = rng.uniform(-1.0, 1.0, env.action_space.shape)
        following, *_ = env.step(action)
        predicted, rewards = model.step(
            torch.as_tensor(observation, dtype=torch.float32)[None],
            torch.as_tensor(action, dtype=torch.float32)[None],
        )
        assert bool(torch.isfinite(predicted).all() and torch.isfinite(rewards).all())
        errors.append(float((predicted.mean(0)[0] - torch.as_tensor(following)).abs().mean()))
        no_change.append(float(np.abs(following - observation).mean()))
        observation = following
    env.close()
    assert np.mean(errors) < 0.5 * np.mean(no_change), (np.mean(errors), np.mean(no_change))


def made_by(path):
    """The training record beside a checkpoint (the README promises one for every file)."""
    record = path.with_suffix(".json")
    assert record.is_file(), f"{path.name} ships without {record.name}"
    return json.loads(record.read_text())


@pytest.mark.parametrize("path", PRIORS, ids=lambda p: p.name)
def test_shipped_prior_decodes_to_finite_values_in_its_data_bounds(path):
    prior = DiffusionPrior.load(path)
    record = made_by(path)
    task, kind = record["arguments"]["env"], record["arguments"]["kind"]
    assert tuple(record["dataset_shape"][1:]) == prior.latent_shape  # the record is of this file
    env = make_env(task)
    cond = None
    if prior.cond_dim:
        assert prior.cond_dim == env.observation_space.shape[0]
        cond = env.reset(seed=0)[0]
    if kind == "action":
        # planner actions are normalised: one channel per action dimension, within [-1, 1]
        assert prior.channels == env.action_space.shape[0]
        assert prior.normalizer.low.min() >= -1.0 and prior.normalizer.high.max() <= 1.0
    env.close()

    latents = torch.randn(16, *prior.latent_shape, generator=torch.Generator().manual_seed(0))
    decoded = prior.decode(latents, steps=5, cond=cond)
    assert decoded.shape == (16, *prior.latent_shape)
    assert bool(torch.isfinite(decoded).all())
    low, high = prior.normalizer.low, prior.normalizer.high
    assert bool((decoded >= low).all() and (decoded <= high).all())
    # a working prior's output depends on the latent (a broken one can collapse to a constant;
    # measured mean std over the batch: 0.011 for reacher-action-cond.pt, 0.03 to 0.4 for the rest)
    assert float(decoded.std(dim=0).mean()) > 1e-3


@pytest.mark.parametrize("path", STUDENTS, ids=lambda p: p.name)
def test_shipped_student_imitates_its_shipped_teacher(path):
    """The student was distilled from the teacher shipped beside it (same bytes), and decodes
    N(0, I) latents close to that teacher's S-step decode: closer than its 2-step decode, and
    about as close as its record says (measured on latents of std 0.7 to 1.3). Measured RMSE,
    student / 2-step: unicycle 0.027 / 0.27, reacher 0.003 / 0.015, half-cheetah 0.068 / 0.20,
    hopper 0.070 / 0.27; student / recorded: 0.93 to 1.04."""
    student = DistilledPrior.load(path)
    assert made_by(path)["validation"] == student.record["validation"]
    teacher_file = CHECKPOINTS / student.record["teacher"]["file"]
    assert (
        hashlib.sha256(teacher_file.read_bytes()).hexdigest()
        == (student.record["teacher"]["sha256"])
    ), f"{teacher_file.name} changed since {path.name} was distilled from it: distil it again"
    teacher = DiffusionPrior.load(teacher_file)
    assert student.task == teacher.task == made_by(path)["task"]

    latents = torch.randn(256, *student.latent_shape, generator=torch.Generator().manual_seed(0))
    target = teacher.decode(latents, steps=student.teacher_steps)

    def rmse(decoded):
        return float((decoded - target).square().mean().sqrt())

    student_rmse = rmse(student.decode(latents))
    assert student_rmse < rmse(teacher.decode(latents, steps=2))
    assert student_rmse < 1.5 * student.record["validation"]["student"]["rmse"]


@pytest.mark.parametrize("path", AGENTS, ids=lambda p: p.name)
def test_shipped_agent_acts_in_its_env(path):
    task = path.stem.rsplit("-", 1)[0]  # <task>-<algo>.zip
    agent = load_sb3_agent(path)
    env = make_env(task)
    assert agent.observation_space.shape == env.observation_space.shape
    observation, _ = env.reset(seed=0)
    action, _ = agent.predict(observation, deterministic=True)
    assert action.shape == env.action_space.shape
    assert np.all(np.isfinite(action))
    assert env.action_space.contains(action.astype(env.action_space.dtype))
    env.close()
    made_by(path)


@pytest.mark.parametrize("spec", [s for s in TASKS.values() if s.prior], ids=lambda s: s.name)
def test_each_tasks_default_prior_is_shipped_and_fits_the_task(spec):
    assert spec.prior_path.is_file(), f"{spec.name} names a missing prior {spec.prior}"
    prior = DiffusionPrior.load(spec.prior_path)
    env = make_env(spec.name)
    assert prior.channels == env.action_space.shape[0]
    env.close()
