"""Evaluators: who computes ``rewards (N,) = objective(state, actions (N, H, A))`` for a planner.

The seam is the objective itself. The in-process evaluator *is* the objective, so the default
costs nothing and needs no Ray. :class:`RayEvaluator` is objective-shaped: it splits the N
candidates into contiguous chunks, scores each chunk on a Ray actor holding its own copy of the
objective (built once, from a picklable factory), and returns the rewards in the candidates'
order. It plugs in wherever an objective goes, so every planner (Diffusion Elites and the
action-space baselines alike) can use it, counting its evaluations as before::

    evaluator = RayEvaluator(lambda: make_task("half-cheetah").objective(threads=1), actors=2)
    planner = RecedingHorizonPlanner(prior, evaluator, config)

When a reward function raises on a worker, the driver raises the same exception type with the
same message, the worker's traceback in its notes (:func:`raise_remote_error`).

It pays only when one reward evaluation costs more than the transfer of its candidates and
a round trip to an actor (measured in experiments/benchmark_parallel.py; README, "Benchmarks").

Ray is imported inside the functions below, never at module level: ``planner`` needs only
torch and numpy. Island populations (several searches migrating elites) are in
:mod:`planner.islands`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import numpy as np

from planner.objective import Objective
from planner.validation import check_count

LOCAL = "local"
"""The address of a private Ray cluster started on this machine, bound to the loopback only."""
MAX_RESTARTS = 1
"""Times an actor whose process died is rebuilt (and its pending chunk rescored)."""


def connect_ray(address: str = LOCAL, num_cpus: int | None = None) -> tuple[Any, bool]:
    """Connect this process to Ray; returns ``(the ray module, whether this call connected)``.

    Args:
        address: ``"local"``: start a private cluster on this machine whose every process
            listens on 127.0.0.1 only, with no dashboard; ``"auto"`` or ``"HOST:PORT"``: join a
            running cluster. Ignored when this process is connected already.
        num_cpus: CPUs of a private cluster (default: all cores).

    Raises:
        ImportError: Ray is not installed (``pip install -e ".[distributed]"``).
        ConnectionError: no cluster at ``address``.
    """
    import ray

    if ray.is_initialized():
        return ray, False
    if address != LOCAL:
        ray.init(address=address, log_to_driver=True)
        return ray, True
    from ray._private import ray_constants

    # ray.init resolves 127.0.0.1 to the machine's network address, and its gRPC servers then
    # listen on every interface, unless clusters are off (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
    # read once at ray's import): switched off here, for this private cluster's start only.
    cluster_flag = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
        )
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_flag
    return ray, True


def require_cpus(ray: Any, count: int, what: str) -> None:
    """Raise ValueError if the cluster has fewer than ``count`` CPUs for ``what`` (one actor of
    one CPU each), rather than leave the extra actors waiting for a CPU forever."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < count:
        raise ValueError(
            f"{count} {what} need one Ray CPU each, and the cluster has {cpus}; use at most "
            f"{cpus} or a larger cluster"
        )


def raise_remote_error(error: Exception) -> NoReturn:
    """Re-raise the exception behind a Ray ``RayTaskError``: its own type and message, with the
    worker's traceback added to its notes (what ``traceback.format_exception`` prints)."""
    cause = getattr(error, "cause", None)
    if not isinstance(cause, BaseException):
        raise error
    cause.add_note(f"Raised on a Ray worker:\n{error}")  # str(): the worker's traceback
    raise cause from None


@contextlib.contextmanager
def remote_errors() -> Iterator[None]:
    """Inside the block, a ``RayTaskError`` surfaces as :func:`raise_remote_error` makes it."""
    import ray

    try:
        yield
    except ray.exceptions.RayTaskError as error:
        raise_remote_error(error)


class ObjectiveWorker:
    """One Ray actor's copy of an objective, built once from ``make_objective()``."""

    def __init__(self, make_objective: Callable[[], Objective]) -> None:
        self.objective = make_objective()

    def score(self, state: Any, actions: np.ndarray) -> np.ndarray:
        """Rewards ``(M,)`` float64 of the chunk ``actions (M, H, A)`` from ``state``."""
        return np.asarray(self.objective(state, actions), dtype=np.float64)


class RayEvaluator:
    """An objective whose candidates are scored in chunks by Ray actors.

    ``rewards (N,) = evaluator(state, actions (N, H, A))``, equal to
    ``make_objective()(state, actions)`` for an objective that scores each candidate on its
    own (every objective of this project), in the same order.

    Args:
        make_objective: picklable function of no arguments returning the objective; each actor
            calls it once (e.g. ``functools.partial(make_objective_of, "half-cheetah")`` or a
            lambda: Ray pickles lambdas and closures too). Give the objective one thread when
            the actors share a machine.
        actors: number of actors, each holding one CPU (of those not held by other actors);
            a call scores ``min(N, actors)`` contiguous chunks of nearly equal size, one per
            actor.
        address: the cluster to use when this process is not connected to Ray yet (see
            :func:`connect_ray`; ``"local"``: a private cluster of ``actors`` CPUs).

    Call :meth:`close` (or use ``with``) to free the actors and a cluster started here.
    """

    def __init__(
        self, make_objective: Callable[[], Objective], actors: int = 2, address: str = LOCAL
    ) -> None:
        check_count("RayEvaluator: actors", actors)
        self._ray, self._connected = connect_ray(address, actors)
        self._actors: list = []
        try:
            require_cpus(self._ray, actors, "RayEvaluator actors")
        except ValueError:
            self.close()
            raise
        worker = self._ray.remote(num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=1)
        self._actors = [worker(ObjectiveWorker).remote(make_objective) for _ in range(actors)]

    def __call__(self, state: Any, actions: np.ndarray) -> np.ndarray:
        """Rewards ``(N,)`` float64 of ``actions (N, H, A)`` from ``state``, in their order."""
        actions = np.asarray(actions)
        if actions.ndim != 3 or actions.shape[0] == 0:
            raise ValueError(
                f"RayEvaluator: actions must be (N, H, A) with N >= 1, got shape {actions.shape}"
            )
        if not self._actors:
            raise RuntimeError("RayEvaluator: called after close(); make a new evaluator")
        chunks = np.array_split(actions, min(len(actions), len(self._actors)))
        state_ref = self._ray.put(state)  # sent once, shared by every actor
        futures = [
            actor.score.remote(state_ref, chunk)
            for actor, chunk in zip(self._actors, chunks, strict=False)
        ]
        with remote_errors():
            return np.concatenate(self._ray.get(futures))

    def close(self) -> None:
        """Stop the actors, and the Ray session if this evaluator started it."""
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._connected:
            self._ray.shutdown()
            self._connected = False

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
