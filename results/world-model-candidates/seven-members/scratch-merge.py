"""Scratch (stop 41): join two half-cheetah world models into one ensemble (E12 = R4 + E7).

usage: PYTHONPATH=. python scratch-merge.py FIRST.pt SECOND.pt OUT.pt

Both must share their normalisers bit for bit (same data and split); the joined model keeps the
first's log-variance bounds, which planning never reads.
"""

import sys
from dataclasses import replace

import torch

from planner.world_model import GaussianEnsemble, WorldModel

first, second = WorldModel.load(sys.argv[1]), WorldModel.load(sys.argv[2])
for name in ("input_normalizer", "target_normalizer"):
    ours, theirs = getattr(first, name).state_dict(), getattr(second, name).state_dict()
    for key in ours:
        assert torch.equal(torch.as_tensor(ours[key]), torch.as_tensor(theirs[key])), (name, key)
config = replace(first.config, ensemble_size=first.ensemble_size + second.ensemble_size)
ours, theirs = first.network.state_dict(), second.network.state_dict()
joined = {k: torch.cat([ours[k], theirs[k]]) if ours[k].dim() == 3 else ours[k] for k in ours}
network = GaussianEnsemble(config)
network.load_state_dict(joined)
model = WorldModel(config, first.input_normalizer, first.target_normalizer, network, first.task)
model.save(sys.argv[3])
print("wrote", sys.argv[3], "with", config.ensemble_size, "members")
