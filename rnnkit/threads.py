"""How many threads rnnkit uses.

Two kinds of work use them:

* the products over a whole sequence (the input projection, the weight gradients, the head):
  BLAS's threads (OpenBLAS under NumPy's wheels) share each product;
* the time loop of the fast path (:mod:`rnnkit.kernels.sequence`): the batch is split into one
  part per thread, at least :data:`MIN_PART` sequences each, and each part runs its own time loop
  on its own thread, with single-threaded BLAS for its per-step products and the nogil Numba
  kernels. The parts never wait for each other inside the loop, where two-thread BLAS would
  synchronise its threads at every step's small product (benchmarks/NOTES.md, attempt 12).

``RNNKIT_NUM_THREADS=n`` (read when rnnkit first computes) or :func:`set_num_threads` sets both:

* the default, the machine's cores, suits a machine rnnkit has to itself;
* ``1`` suits a busy machine, or several rnnkit processes side by side (the experiments'
  runs, ``--engine torch --nproc``): BLAS threads that wait for each other at every small product
  lose far more than they gain when another process holds a core;
* anything between shares the cores with something else deliberately.
"""
from __future__ import annotations

import contextlib
import os
import threading

_state = {"applied": False, "limits": None, "threads": None, "pool": None, "blas": None}
_lock = threading.Lock()
MIN_PART = 8          # sequences per part of a split time loop, at least


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
    _state["threads"] = n


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


def loop_threads() -> int:
    """The threads a time loop may be split over: the setting, or the machine's cores."""
    apply_environment()
    return _state["threads"] or cores()


def batch_parts(N: int) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]``: a batch of N sequences split for :func:`run_parts`, as evenly as it
    goes, one part per thread and at least :data:`MIN_PART` sequences a part."""
    P = max(1, min(loop_threads(), N // MIN_PART))
    bounds = [N * k // P for k in range(P + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


@contextlib.contextmanager
def single_threaded_blas():
    """BLAS at one thread inside the block (the libraries found at first use; cheap after)."""
    if _state["blas"] is None:
        from threadpoolctl import ThreadpoolController

        _state["blas"] = ThreadpoolController().select(user_api="blas").lib_controllers
    saved = [(lib, lib.num_threads) for lib in _state["blas"]]
    for lib, n in saved:
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in saved:
            if n != 1:
                lib.set_num_threads(n)


def run_parts(fn, parts) -> None:
    """``fn(lo, hi)`` for every part, side by side: the first on this thread, the others on
    rnnkit's worker threads, with single-threaded BLAS until all have finished. One part runs
    here, unchanged. The first exception raised by a part is raised here, after all have ended."""
    if len(parts) == 1:
        fn(*parts[0])
        return
    with _lock:
        pool = _state["pool"]
        if pool is None or pool._max_workers < len(parts) - 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = _state["pool"] = ThreadPoolExecutor(len(parts) - 1, thread_name_prefix="rnnkit-loop")
    with single_threaded_blas():
        futures = [pool.submit(fn, *part) for part in parts[1:]]
        try:
            fn(*parts[0])
        finally:
            for f in futures:                    # every part ends before its buffers can go
                f.exception()
        for f in futures:
            f.result()
