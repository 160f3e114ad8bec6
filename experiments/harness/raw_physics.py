"""The physics floor of a batched MuJoCo reward: MuJoCo's own stepping in C, nothing recorded.

:func:`compile_raw_rollouts` compiles, with gcc, a C loop of ``mj_step`` against the MuJoCo
wheel's own shared library and headers: per candidate ``mj_setState``, then ``mj_step`` per
substep with that substep's controls, on the caller plus pthreads, one ``mjData`` each, scoring
nothing. It runs on the same ``MjModel`` (by address), start state and controls as the planner's
objective, so its time is what any batched reward pays at least on this machine.
``mujoco.rollout`` is itself a wrapper of such a loop (a C++ pool copying states out every
step), so it is not the floor. :func:`raw_seconds` times one batch of rollouts with it.
"""

from __future__ import annotations

import ctypes
import functools
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np

MAX_THREADS = 64
_SOURCE = r"""
#include <pthread.h>
#include <mujoco/mujoco.h>
typedef struct { const mjModel* m; mjData* d; const mjtNum *state, *ctrl;
                 int n, nstep, first, stride; } job_t;
static void* run(void* arg) {
  job_t* j = (job_t*)arg;
  for (int i = j->first; i < j->n; i += j->stride) {
    mj_setState(j->m, j->d, j->state, mjSTATE_INTEGRATION);
    for (int t = 0; t < j->nstep; t++) {
      mju_copy(j->d->ctrl, j->ctrl + ((size_t)i * j->nstep + t) * j->m->nu, j->m->nu);
      mj_step(j->m, j->d);
    }
  }
  return NULL;
}
/* n rollouts of nstep substeps from one state on nthread (<= 64) threads */
void raw_rollouts(const mjModel* m, const mjtNum* state, const mjtNum* ctrl, int n,
                  int nstep, int nthread) {
  job_t jobs[64]; pthread_t threads[64];
  for (int k = 0; k < nthread; k++)
    jobs[k] = (job_t){m, mj_makeData(m), state, ctrl, n, nstep, k, nthread};
  for (int k = 1; k < nthread; k++) pthread_create(&threads[k], NULL, run, &jobs[k]);
  run(&jobs[0]);
  for (int k = 1; k < nthread; k++) pthread_join(threads[k], NULL);
  for (int k = 0; k < nthread; k++) mj_deleteData(jobs[k].d);
}
"""


@functools.lru_cache(maxsize=1)
def compile_raw_rollouts() -> Callable[..., None]:
    """``raw_rollouts(model_address, state_ptr, ctrl_ptr, n, nstep, nthread)``, compiled once
    per process; ctrl is ``(n, nstep, nu)`` float64, C-contiguous."""
    mujoco_dir = Path(mujoco.__file__).parent
    library = next(mujoco_dir.glob("libmujoco.so*"), None)
    if library is None or not (mujoco_dir / "include" / "mujoco" / "mujoco.h").is_file():
        raise RuntimeError(
            f"the raw baseline needs the MuJoCo wheel's library and headers in {mujoco_dir}"
        )
    build = Path(tempfile.mkdtemp(prefix="raw_mj_step_"))
    (build / "raw.c").write_text(_SOURCE)
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", f"-I{mujoco_dir / 'include'}", str(build / "raw.c"),
         "-o", str(build / "raw.so"), f"-L{mujoco_dir}", f"-l:{library.name}",
         f"-Wl,-rpath,{mujoco_dir}", "-lpthread"],
        check=True,
    )  # fmt: skip
    function = ctypes.CDLL(str(build / "raw.so")).raw_rollouts
    function.restype = None
    return function


def raw_arguments(model: mujoco.MjModel, state: np.ndarray, control: np.ndarray) -> list:
    """The first three arguments of ``raw_rollouts`` for ``state (D,)`` and ``control (n,
    nstep, nu)``; both arrays must stay alive while they are used."""
    return [
        ctypes.c_void_p(model._address),
        state.ctypes.data_as(ctypes.c_void_p),
        control.ctypes.data_as(ctypes.c_void_p),
    ]


def raw_seconds(task, state: np.ndarray, actions: np.ndarray, threads: int) -> float:
    """Wall seconds of the raw rollouts of normalised ``actions (n, H, A)`` from ``state (D,)``
    of a :class:`envs.mujoco_tasks.MujocoTask`, each action held for its frame skip."""
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"the raw baseline runs on 1 to {MAX_THREADS} threads, got {threads}")
    state = np.ascontiguousarray(state, dtype=np.float64)
    control = np.ascontiguousarray(
        np.repeat(task.scale_actions(actions), task.frame_skip, axis=1), dtype=np.float64
    )
    n, nstep = control.shape[:2]
    raw = compile_raw_rollouts()
    started = time.perf_counter()
    raw(*raw_arguments(task.model, state, control), n, nstep, threads)
    return time.perf_counter() - started
