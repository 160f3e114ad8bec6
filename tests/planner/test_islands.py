"""Island populations in this process: the migration schedule, the ring, the migrants."""

import numpy as np
import pytest
import torch

from planner.elites import DiffusionElites, ElitesConfig
from planner.islands import Island, IslandConfig, island_seed, search_islands

CONFIG = ElitesConfig(population=8, elite_fraction=0.25)


def two_peaks():
    """(decode, reward): the identity, and optima at +1 (reward 0) and -1 (reward 0.5)."""

    def reward(z):
        return torch.maximum(-((z - 1) ** 2).sum(1), 0.5 - ((z + 1) ** 2).sum(1)).numpy()

    return (lambda z: z), reward


def test_an_island_sends_its_best_of_the_last_batch_and_tells_what_it_receives():
    sender = Island(two_peaks, (3,), CONFIG, seed=5, migrants=2)
    twin = DiffusionElites((3,), CONFIG, seed=5)  # the sender's generator, to replay its batch
    batch = twin.ask()
    rewards = torch.as_tensor(two_peaks()[1](batch), dtype=torch.float64)
    sent = sender.run(1, None)
    top = torch.argsort(rewards, descending=True)[:2]
    torch.testing.assert_close(sent.latents, batch[top], rtol=0, atol=0)
    torch.testing.assert_close(sent.rewards, rewards[top], rtol=0, atol=0)

    receiver = Island(two_peaks, (3,), CONFIG, seed=6, migrants=2)
    told = []
    tell = receiver.elites.tell
    receiver.elites.tell = lambda latents, scores: (
        told.append((latents, scores)),
        tell(latents, scores),
    )
    receiver.run(2, sent)
    (first, first_rewards), (second, _) = told
    assert len(first) == 8 + 2 and len(second) == 8  # migrants join the first tell only
    torch.testing.assert_close(first[8:], sent.latents, rtol=0, atol=0)
    torch.testing.assert_close(first_rewards[8:], sent.rewards, rtol=0, atol=0)
    assert receiver.evaluations == 2 * 8  # migrants are not scored again


def test_migrants_travel_the_ring_every_m_iterations(monkeypatch):
    calls = []
    run = Island.run

    def spy(self, iterations, immigrants):
        sent = run(self, iterations, immigrants)
        calls.append((id(self), iterations, immigrants, sent))
        return sent

    monkeypatch.setattr(Island, "run", spy)
    result = search_islands(two_peaks, (3,), 5, CONFIG, IslandConfig(3, 2, 1), seed=0)
    islands = [island for island, _, _, _ in calls[:3]]
    assert len(set(islands)) == 3  # epochs of 2, 2 and 1 iterations, islands in ring order
    assert [(island, n) for island, n, _, _ in calls] == [
        (i, n) for n in (2, 2, 1) for i in islands
    ]
    assert all(immigrants is None for _, _, immigrants, _ in calls[:3])
    for epoch in (1, 2):
        for k in range(3):
            received = calls[3 * epoch + k][2]
            sent = calls[3 * (epoch - 1) + (k - 1) % 3][3]
            assert received is sent and len(sent.latents) == 1
    assert result.evaluations == 3 * 8 * 5
    assert result.reward == result.island_rewards.max() == result.island_rewards[result.island]


def test_same_seed_same_result_other_seed_other_search():
    runs = [search_islands(two_peaks, (3,), 4, CONFIG, seed=s) for s in (0, 0, 1)]
    assert runs[0].reward == runs[1].reward
    torch.testing.assert_close(runs[0].latent, runs[1].latent, rtol=0, atol=0)
    assert not np.array_equal(runs[0].island_rewards, runs[2].island_rewards)


@pytest.mark.parametrize(
    "field, value", [("islands", 0), ("migration_interval", 0), ("migrants", 1.5)]
)
def test_config_refuses_what_cannot_run(field, value):
    with pytest.raises(ValueError, match=f"IslandConfig.{field} must be an int >= 1"):
        IslandConfig(**{field: value})


def test_islands_are_seeded_apart_and_reproducibly():
    seeds = [island_seed(7, k) for k in range(4)]
    assert len(set(seeds)) == 4 and seeds == [island_seed(7, k) for k in range(4)]
