"""The thread policy of planning, decided in one place: torch on one thread, rollouts on the rest.

A control step alternates two kinds of work that never overlap: a decode (torch) and a batch of
reward rollouts (the MuJoCo pool, or numpy). Both want every core. Torch's OpenMP workers do
not sleep when an op ends: they spin for a while waiting for the next one, so on a 2-core
machine the pool's threads that start right after a decode share their cores with spinning
torch workers, and any other process on the machine makes the decode itself wait for a core.
Measured on 2 cores, half-cheetah, DE 64x3, quiet (``python experiments/benchmark.py control``,
results/speed/): with torch on both cores the rollouts took 76 ms a control step instead of 57
and the decode gained nothing (5.5 ms against 5.1); a one-thread pool took 107 ms. Control
rates: 15.4 steps/s with this policy, 11.8 and 8.7 with the other two.
So planning runs torch on one thread and the rollout pool on all the cores it is given. A world
model's rollouts are torch work, and they too get every core, without torch's threads: a
:class:`planner.world_model.WorldModelObjective` rolls its candidates out in chunks on
``rollout_threads`` Python threads, each chunk's ops on one torch thread (torch releases the GIL
while it computes). Half-cheetah, DE 64x3, 2 cores (results/speed/control-world-model.md): 17.0
control steps/s against 13.7 on one thread, quiet; beside one busy process 9.7 against 12.0
(``--threads 1`` is then the faster choice, as it is not for the MuJoCo pool). Torch's own
threads were as fast on a quiet machine, but one 64 x 16 call beside a busy process took 246 ms
against 22 on one thread, as OpenMP's workers wait for each other at every op; chunks on Python
threads only share the cores.

- ``planning_threads(cores)``: the policy for ``cores`` CPU cores (None: the cores this process
  may run on);
- ``use_planning_threads(cores)``: make it the process's policy and apply torch's part; what the
  scripts' ``--threads`` and :class:`policies.diffusion_elites.DiffusionElitesPolicy` call;
- ``current_planning_threads()``: the policy in force, read by objectives that size a pool
  (``envs.mujoco_tasks.MujocoObjective``, ``WorldModelObjective``) when they are built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from planner.validation import check_count


@dataclass(frozen=True)
class ThreadPolicy:
    """How planning uses ``cores`` CPU cores.

    Attributes:
        cores: CPU cores planning may use.
        torch_threads: torch's intra-op threads (decoding, world models): always 1 (see module).
        rollout_threads: threads of a batched rollout pool (the MuJoCo pool, a world model's
            chunks): every core.
    """

    cores: int

    def __post_init__(self) -> None:
        check_count("cores", self.cores, hint="the CPU cores planning may use")

    @property
    def torch_threads(self) -> int:
        """Torch's intra-op threads while planning."""
        return 1

    @property
    def rollout_threads(self) -> int:
        """Threads of a rollout pool, the caller's included."""
        return self.cores


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def planning_threads(cores: int | None = None) -> ThreadPolicy:
    """The thread policy for ``cores`` CPU cores (None: :func:`available_cores`)."""
    return ThreadPolicy(available_cores() if cores is None else cores)


_current: ThreadPolicy | None = None


def use_planning_threads(cores: int | None = None) -> ThreadPolicy:
    """Make the policy for ``cores`` (None: keep the one in force, else all available cores)
    the process's, apply torch's thread count, and return it.

    Torch's thread count is process-wide: a torch program that trains in the same process after
    planning may want ``torch.set_num_threads`` back.
    """
    global _current
    if cores is not None or _current is None:
        _current = planning_threads(cores)
    if torch.get_num_threads() != _current.torch_threads:
        torch.set_num_threads(_current.torch_threads)
    return _current


def current_planning_threads() -> ThreadPolicy:
    """The policy set by :func:`use_planning_threads`, or the default one if none was."""
    return _current if _current is not None else planning_threads()
