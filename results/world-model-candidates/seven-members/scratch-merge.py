"""Scratch: join two world models trained on the same data and split into one ensemble."""
import sys
from dataclasses import replace
import torch
from planner.world_model import GaussianEnsemble, WorldModel

a, b = WorldModel.load(sys.argv[1]), WorldModel.load(sys.argv[2])
for name in ("input_normalizer", "target_normalizer"):
    sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
    for k in sa:
        assert torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k])), (name, k)
config = replace(a.config, ensemble_size=a.ensemble_size + b.ensemble_size)
network = GaussianEnsemble(config)
sa, sb = a.network.state_dict(), b.network.state_dict()
state = {k: torch.cat([sa[k], sb[k]]) if sa[k].dim() == 3 else sa[k] for k in sa}
print({k: float((sa[k] - sb[k]).abs().max()) for k in sa if sa[k].dim() != 3})
network.load_state_dict(state)
WorldModel(config, a.input_normalizer, a.target_normalizer, network, a.task).save(sys.argv[3])
print("wrote", sys.argv[3], config.ensemble_size)
