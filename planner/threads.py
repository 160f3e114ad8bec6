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
So planning runs torch on one thread and the rollout pool on all the cores it is given.

A world model's rollouts are torch work too. They can run as chunks of the candidates on
several Python threads, each chunk's ops on one torch thread (torch releases the GIL while it
computes), but whether that is faster depends on the machine: every small op of a chunk hands
the GIL back and forth, and what a hand-over costs differs between machines by far more than
what a second core saves. Half-cheetah, DE 64x3, 2 cores, quiet (``benchmark.py control
--rewards world-model``): on 12-03's machine two chunks ran 17.0 control steps/s against 13.7 on
one thread; on 12-06's, whose cores compute faster, 13.2 against 22.1, and one thread was
1.6-2.7x as fast on reacher, hopper and walker2d too (results/speed/). Beside a busy process,
one thread won even on 12-03's machine (12.0 against 9.7). So a
:class:`planner.world_model.WorldModelObjective` measures: :class:`FastestThreads` times its
first calls on one thread and on ``rollout_threads``, and keeps the faster. The scores do not
depend on the chunks, only the time does. Torch's own intra-op threads were no answer: one
64 x 16 call beside a busy process took 246 ms against 22 on one thread, as OpenMP's workers
wait for each other at every op.

- ``planning_threads(cores)``: the policy for ``cores`` CPU cores (None: the cores this process
  may run on);
- ``use_planning_threads(cores)``: make it the process's policy and apply torch's part; what the
  scripts' ``--threads`` and :class:`policies.diffusion_elites.DiffusionElitesPolicy` call;
- ``current_planning_threads()``: the policy in force, read by objectives that size a pool
  (``envs.mujoco_tasks.MujocoObjective``, ``WorldModelObjective``) when they are built;
- ``FastestThreads``: the faster of several thread counts for a repeated job, measured.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

from planner.validation import check_count

Result = TypeVar("Result")


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


class FastestThreads:
    """The fastest of several thread counts for a job run again and again, measured on its first
    runs: ``result = fastest.run(job, work)`` calls ``job(threads)``.

    Until it has chosen, each run takes the next option in turn. The first run of each option
    (its pool and buffers being made) is not counted; after ``trials`` counted runs of every
    option, the one with the least median seconds per unit of ``work`` (the runs' sizes may
    differ) is kept for every later run. Only runs whose ``work`` lets the options differ
    should be measured: pass ``measured=False`` for the others, which take the choice so far
    (the first option while measuring).

    Args:
        options: thread counts, ints >= 1; repeats are dropped. One option: chosen at once.
        trials: counted runs of each option before choosing.
        clock: seconds, monotonic (tests pass a fake one).

    Attributes:
        options: the distinct thread counts, in the given order.
        chosen: the kept thread count (None while measuring).
        seconds: each option's counted seconds per unit of work.
    """

    def __init__(
        self,
        options: tuple[int, ...],
        trials: int = 3,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        for count in options:
            check_count("threads", count, hint="each option of FastestThreads")
        check_count("trials", trials, hint="counted runs of each option")
        self.options = tuple(dict.fromkeys(options))
        if not self.options:
            raise ValueError("FastestThreads needs at least one thread count")
        self.trials = trials
        self.clock = clock
        self.chosen = self.options[0] if len(self.options) == 1 else None
        self.seconds: dict[int, list[float]] = {count: [] for count in self.options}
        self._runs = 0

    def run(self, job: Callable[[int], Result], work: float, measured: bool = True) -> Result:
        """``job(threads)`` on the option this run takes, timed while measuring."""
        if self.chosen is not None or not measured:
            return job(self.chosen or self.options[0])
        threads = self.options[self._runs % len(self.options)]
        start = self.clock()
        result = job(threads)
        seconds = self.clock() - start
        self._runs += 1
        if self._runs > len(self.options):  # past each option's first run
            self.seconds[threads].append(seconds / work)
        if all(len(times) >= self.trials for times in self.seconds.values()):
            self.chosen = min(self.options, key=lambda c: statistics.median(self.seconds[c]))
        return result
