"""Shared test settings and fixtures.

One torch thread: small tensors run fastest and least noisily that way on 2-core CI machines.
"""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_action_prior():
    """A small MLP prior over unicycle action chunks (H = 8), trained for a few seconds."""
    from envs.datasets import unicycle_action_dataset
    from planner.denoiser import DenoiserConfig
    from planner.training import TrainingConfig, train_prior

    data = unicycle_action_dataset(2048, horizon=8, seed=0)
    config = DenoiserConfig(kind="mlp", horizon=8, channels=2, mlp_hidden=64, mlp_depth=2)
    prior, _ = train_prior(
        data, config, TrainingConfig(steps=150, batch_size=128, seed=0), progress=False
    )
    return prior


@pytest.fixture(scope="module")
def ray_cluster():
    """The project's private local Ray cluster (2 CPUs, loopback only), one per test module."""
    pytest.importorskip("ray", reason="Ray is the optional extra: pip install -e '.[distributed]'")
    from planner.parallel import connect_ray

    module, opened = connect_ray("local", num_cpus=2)
    assert opened, "another test left a Ray session open"
    yield module
    module.shutdown()
