"""Checkpoint files: the task they record, version 1 files, kinds, reserved keys."""

import warnings

import numpy as np
import pytest
import torch

from planner.checkpoint import (
    CheckpointError,
    _digest,
    load_checkpoint,
    save_checkpoint,
)
from planner.denoiser import DenoiserConfig
from planner.normalizer import Normalizer
from planner.prior import DiffusionPrior

H, C = 4, 2


def small_prior(task=None):
    """An untrained MLP prior (decodes are compared, not judged)."""
    torch.manual_seed(0)
    data = np.random.default_rng(0).uniform(-1, 1, size=(32, H, C))
    config = DenoiserConfig(kind="mlp", horizon=H, channels=C, mlp_hidden=16, mlp_depth=1)
    return DiffusionPrior(config, Normalizer.fit(data), task=task)


def decodes_alike(a, b):
    z = torch.randn(3, H, C, generator=torch.Generator().manual_seed(0))
    return torch.equal(a.decode(z, 2), b.decode(z, 2))


def test_a_prior_round_trips_its_task(tmp_path):
    prior = small_prior(task="reacher")
    path = prior.save(tmp_path / "reacher.pt")
    for task in (None, "reacher"):
        loaded = DiffusionPrior.load(path, task=task)
        assert loaded.task == "reacher"
        assert decodes_alike(loaded, prior)
    assert DiffusionPrior.load(small_prior().save(tmp_path / "any.pt")).task is None


def test_a_prior_for_another_task_is_refused_naming_both(tmp_path):
    path = small_prior(task="reacher").save(tmp_path / "reacher.pt")
    with pytest.raises(CheckpointError, match=r"task 'reacher', not 'unicycle-goal'"):
        DiffusionPrior.load(path, task="unicycle-goal")


def test_the_task_is_covered_by_the_checksum(tmp_path):
    path = small_prior(task="reacher").save(tmp_path / "reacher.pt")
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "task": "unicycle-goal"}, path)  # relabelled, checksum not redone
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        DiffusionPrior.load(path, task="unicycle-goal")


@pytest.fixture()
def version_1_file(tmp_path):
    """A prior written as version 1 wrote it: no kind, no task, its own checksum."""
    prior = small_prior(task="reacher")
    payload = torch.load(prior.save(tmp_path / "v2.pt"), weights_only=True)
    old = {k: v for k, v in payload.items() if k not in ("kind", "task", "checksum")}
    old["format_version"] = 1
    old["checksum"] = _digest(old)
    path = tmp_path / "v1.pt"
    torch.save(old, path)
    return path, prior


def test_a_version_1_prior_loads_with_a_warning_when_a_task_is_asked_for(version_1_file):
    path, prior = version_1_file
    with pytest.warns(UserWarning, match=r"records no task.*'reacher'"):
        loaded = DiffusionPrior.load(path, task="reacher")
    assert loaded.task is None
    assert decodes_alike(loaded, prior)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to check without a task, so nothing to say
        assert DiffusionPrior.load(path).task is None


def test_a_version_1_file_is_read_as_a_prior_only(version_1_file):
    path, _ = version_1_file
    with pytest.raises(CheckpointError, match="holds a prior, not a world model"):
        load_checkpoint(path, "world_model", ())


def test_a_checkpoint_of_another_kind_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", "world_model", {"weights": torch.ones(2)})
    with pytest.raises(CheckpointError, match="holds a world model, not a prior"):
        load_checkpoint(path, "prior", ())
    with pytest.raises(CheckpointError, match=r"model\.pt: holds a world model, not a prior"):
        DiffusionPrior.load(path)
    payload = load_checkpoint(path, "world_model", ("weights",))
    assert payload["kind"] == "world_model" and torch.equal(payload["weights"], torch.ones(2))


@pytest.mark.parametrize("key", ["format_version", "kind", "task", "checksum"])
def test_reserved_keys_in_the_contents_raise(tmp_path, key):
    with pytest.raises(ValueError, match=rf"reserved keys \['{key}'\]"):
        save_checkpoint(tmp_path / "clash.pt", "prior", {key: 1, "weights": torch.ones(1)})
    assert not any(tmp_path.iterdir())
