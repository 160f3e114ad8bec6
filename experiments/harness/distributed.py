"""Many independent jobs on local processes or a Ray cluster: one function, ``map_unordered``.

A *job* is one picklable argument of a module-level function that returns one picklable result
(an evaluation grid's episode, one collected episode, ...). :func:`map_unordered` runs every job
once and yields the results as they finish:

- ``ray_address=None`` (the default): in this process (``workers == 1``) or in ``workers``
  spawned local processes; Ray is never imported.
- ``ray_address="local"``: a private Ray cluster of ``workers`` CPUs started on this machine,
  bound to the loopback interface, without a dashboard; stopped when the jobs are done.
- ``ray_address="auto"`` or ``"HOST:PORT"``: joins the running cluster (``ray start --head``
  on one node, ``ray start --address=HOST:PORT`` on the others; README, "Running on a cluster").

On Ray every job is one task of one CPU. A worker that dies (killed, out of memory, its node
lost) has its task rerun by Ray itself (``max_retries``); an exception raised by the function is
not retried (the same job would raise again) and reaches the caller as its own type and message,
the worker's traceback in its notes. Each job's result is yielded exactly once, the moment it
arrives, so a caller that stores results as they come keeps them when it is interrupted.

Ray is the optional extra ``pip install -e ".[distributed]"``; it is imported only here, and
only when an address is given. Scripts declare the flag with :func:`ray_address_arg`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from experiments.harness.cli import UsageError, arg
from planner.parallel import LOCAL, connect_ray, remote_errors

Job = TypeVar("Job")
Result = TypeVar("Result")

MAX_RETRIES = 3
"""Reruns of a job whose worker died (Ray's own ``max_retries``)."""


def check_ray_address(address: str) -> None:
    """Raise ValueError unless ``address`` is ``local``, ``auto`` or ``HOST:PORT``."""
    if address in (LOCAL, "auto") or re.fullmatch(r"[\w.\-\[\]:]+:\d+", address):
        return
    raise ValueError(
        "use local (a private Ray cluster on this machine), auto (the cluster this machine "
        "joined with `ray start`) or HOST:PORT of a cluster's head node"
    )


def ray_address_arg() -> Any:
    """The ``ray_address`` field of a script's :class:`~experiments.harness.cli.ScriptArgs`.

    Declare it as ``ray_address: str | None = ray_address_arg()``; pass the value and the
    script's ``workers`` to :func:`map_unordered`.
    """
    return arg(
        None,
        "run each episode as a Ray task: local (a private cluster of --workers CPUs on this "
        "machine, loopback only), auto or HOST:PORT (a running cluster); default: local "
        "processes, no Ray",
        check=check_ray_address,
    )


@contextlib.contextmanager
def ray_session(ray_address: str | None, workers: int = 1) -> Iterator[int]:
    """Connect to Ray for the block (unless ``ray_address`` is None); yields the parallelism.

    Yields how many jobs run at once: ``workers`` without Ray, else the cluster's CPUs. A
    session that is already connected is used as it is, and left connected; one opened here
    is closed at the end of the block (a ``local`` cluster is stopped).

    Raises:
        UsageError: Ray is not installed, or the cluster cannot be reached.
    """
    if ray_address is None:
        yield workers
        return
    try:
        ray, opened = connect_ray(ray_address, workers)
    except ImportError:
        raise UsageError(
            f"--ray-address {ray_address} needs Ray: pip install -e '.[distributed]'"
        ) from None
    except ConnectionError as exc:
        raise UsageError(
            f"no Ray cluster at {ray_address} ({exc}): start one with `ray start --head`, "
            "or pass --ray-address local"
        ) from None
    try:
        yield max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        if opened:
            ray.shutdown()


def map_unordered(
    function: Callable[[Job], Result],
    jobs: Iterable[Job],
    ray_address: str | None = None,
    workers: int = 1,
    max_retries: int = MAX_RETRIES,
) -> Iterator[Result]:
    """``function(job)`` for every job, yielded as each finishes (not in the order of ``jobs``).

    Args:
        function: a module-level function (local processes pickle it by name; Ray pickles it
            by name too, or by value when it is defined in the script run as ``__main__``).
        jobs: its arguments, each picklable; every job runs once.
        ray_address: None: in this process or ``workers`` spawned processes, no Ray;
            ``"local"``, ``"auto"`` or ``"HOST:PORT"``: one Ray task per job (module docstring).
        workers: local processes; with ``"local"``, the CPUs of the private cluster; ignored by
            a running cluster, which schedules one job per free CPU.
        max_retries: Ray only: reruns of a job whose worker process died.

    Raises:
        The first exception a job raises (its own type; on Ray, with the worker's traceback in
        its notes). Unfinished jobs are cancelled when the iteration stops early.
    """
    jobs = list(jobs)
    if ray_address is None:
        if workers == 1 or len(jobs) <= 1:
            yield from map(function, jobs)
            return
        with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            yield from pool.imap_unordered(function, jobs)
        return
    with ray_session(ray_address, workers):
        yield from _ray_map(function, jobs, max_retries)


def _ray_map(function: Callable, jobs: list, max_retries: int) -> Iterator:
    """One Ray task per job on the connected session, results as they arrive."""
    import ray

    task = ray.remote(function).options(num_cpus=1, max_retries=max_retries)
    pending = [task.remote(job) for job in jobs]
    try:
        while pending:
            (done,), pending = ray.wait(pending, num_returns=1)
            with remote_errors():
                result = ray.get(done)
            yield result
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
