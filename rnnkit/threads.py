"""How many threads rnnkit's matrix products use.

rnnkit's own kernels are single-threaded (Numba, no parallel loops); the threads are BLAS's
(OpenBLAS under NumPy's wheels), used by every matrix product: the input projection of a whole
sequence, the per-step recurrent product, the weight gradients.

``RNNKIT_NUM_THREADS=n`` (read when rnnkit first computes) or :func:`set_num_threads` sets them:

* the default, the machine's cores, suits a machine rnnkit has to itself;
* ``1`` suits a busy machine, or several rnnkit processes side by side (the experiments'
  runs, ``--engine torch --nproc``): BLAS threads that wait for each other at every small product
  lose far more than they gain when another process holds a core;
* anything between shares the cores with something else deliberately.
"""
from __future__ import annotations

import os

_state = {"applied": False, "limits": None}


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                         # not on Linux
        return os.cpu_count() or 1


def set_num_threads(n: int) -> None:
    """Use ``n`` BLAS threads from now on (1 <= n)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"threads: expected an integer >= 1, got {n!r}")
    from threadpoolctl import ThreadpoolController

    _state["limits"] = ThreadpoolController().limit(limits=n, user_api="blas")
    _state["applied"] = True


def num_threads() -> int:
    """The BLAS threads in use (the largest, when several BLAS libraries are loaded)."""
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)


def apply_environment() -> None:
    """Apply ``RNNKIT_NUM_THREADS`` once (a bad value is one line)."""
    if _state["applied"]:
        return
    _state["applied"] = True
    value = os.environ.get("RNNKIT_NUM_THREADS")
    if value is None:
        return
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        from .errors import UserError

        raise UserError(f"RNNKIT_NUM_THREADS: expected an integer >= 1, got {value!r}")
    set_num_threads(n)
