"""Every shipped checkpoint loads and works: priors decode, agents act, in their task's shapes.

Parametrised over the files themselves, so a checkpoint added to ``checkpoints/`` is covered
without touching this file.
"""

import json
import warnings

import numpy as np
import pytest
import torch

from envs.registry import CHECKPOINTS, TASKS, make_env
from planner.distilled import DistilledPrior
from planner.files import file_sha256
from planner.prior import DiffusionPrior
from planner.world_model import WorldModel
from policies.sb3_agents import load_sb3_agent
from policies.setup import PlanningSetup

WORLD_MODELS = sorted(CHECKPOINTS.glob("*-world-model.pt"))
STUDENTS = sorted(CHECKPOINTS.glob("*-student.pt"))
PRIORS = sorted(set(CHECKPOINTS.glob("*.pt")) - set(WORLD_MODELS) - set(STUDENTS))
AGENTS = sorted((CHECKPOINTS / "agents").glob("*.zip"))


def test_checkpoints_are_shipped():
    assert PRIORS and AGENTS and WORLD_MODELS and STUDENTS, f"none found under {CHECKPOINTS}"


@pytest.mark.parametrize("path", WORLD_MODELS, ids=lambda p: p.name)
def test_shipped_world_model_predicts_its_task_better_than_no_change(path):
    """Along 20 random steps of its env, the ensemble mean's one-step error is well below that
    of predicting no change (measured ratios, stop 42: reacher 0.004, half-cheetah 0.049, hopper
    0.16, walker2d 0.36)."""
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
def test_shipped_student_decodes_within_its_measured_error_of_its_teacher(path):
    """On fixed latents (not its validation stream), a student's RMSE to its teacher's S-step
    decode is within 1.5x of the validation RMSE its record states, and far below that of the
    teacher's own 1-step decode (what the student started from)."""
    record = made_by(path)
    teacher_path = CHECKPOINTS / record["teacher"]["path"].removeprefix("checkpoints/")
    assert file_sha256(teacher_path) == record["teacher"]["sha256"]  # its teacher as shipped
    student, teacher = DistilledPrior.load(path), DiffusionPrior.load(teacher_path)
    assert record["validation"] == student.record["validation"]  # the record is of this file
    assert student.task == teacher.task and student.latent_shape == teacher.latent_shape
    latents = torch.randn(512, *student.latent_shape, generator=torch.Generator().manual_seed(7))
    target = teacher.decode(latents, steps=student.teacher_steps)

    def rmse(decoded):
        return float(((decoded - target) ** 2).mean().sqrt())

    measured = record["validation"]["student"]["rmse"]
    assert rmse(student.decode(latents)) < 1.5 * measured
    assert rmse(student.decode(latents)) < 0.5 * rmse(teacher.decode(latents, steps=1))


@pytest.mark.parametrize("spec", [s for s in TASKS.values() if s.student], ids=lambda s: s.name)
def test_each_tasks_student_is_shipped_with_its_tasks_prior(spec):
    assert spec.student_path.is_file(), f"{spec.name} names a missing student {spec.student}"
    record = made_by(spec.student_path)
    assert record["teacher"]["sha256"] == file_sha256(spec.prior_path)


@pytest.mark.parametrize("path", AGENTS, ids=lambda p: p.name)
def test_shipped_agent_acts_in_its_env(path):
    task = made_by(path)["arguments"]["env"]  # the task its training record names
    agent = load_sb3_agent(path)
    env = make_env(task)
    assert agent.observation_space.shape == env.observation_space.shape
    observation, _ = env.reset(seed=0)
    action, _ = agent.predict(observation, deterministic=True)
    assert action.shape == env.action_space.shape
    assert np.all(np.isfinite(action))
    assert env.action_space.contains(action.astype(env.action_space.dtype))
    env.close()


@pytest.mark.parametrize("spec", [s for s in TASKS.values() if s.prior], ids=lambda s: s.name)
def test_each_tasks_default_prior_is_shipped_and_fits_the_task(spec):
    assert spec.prior_path.is_file(), f"{spec.name} names a missing prior {spec.prior}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a prior that records no task warns
        # as the scripts load it: refused unless it fits
        prior, _ = PlanningSetup(spec.name, decoder="ddim").decoders()
    assert prior.task == spec.family
    env = make_env(spec.name)
    assert prior.channels == env.action_space.shape[0]
    env.close()
