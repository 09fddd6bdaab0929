"""How many threads rnnkit uses.

``RNNKIT_NUM_THREADS=n`` (read when rnnkit first computes) or :func:`set_num_threads` sets BLAS's
threads (OpenBLAS under NumPy's wheels), which every matrix product uses: the input projection of
a whole sequence, the per-step recurrent product, the weight gradients. rnnkit's own kernels
(Numba) are single-threaded.

* the default, the machine's cores, suits a machine rnnkit has to itself;
* ``1`` suits a busy machine, or several rnnkit processes side by side (the experiments'
  runs, ``--engine torch --nproc``): BLAS threads that wait for each other at every small product
  lose far more than they gain when another process holds a core (``benchmarks/busy.py``);
* anything between shares the cores with something else deliberately.

``RNNKIT_LOOP_PARTS=p`` (or :func:`set_loop_parts`; default 1) splits the fast time loop's batch
into up to p parts of at least :data:`MIN_PART` sequences, each running its own time loop on its
own thread with single-threaded BLAS and the nogil kernels (:func:`run_parts`). Measured on this
project's machine (benchmarks/NOTES.md, attempt 12), two parts were slower than one loop on
two-thread BLAS on a quiet machine (1.2-1.4x at H 64-512), so it is off by default.
"""
from __future__ import annotations

import contextlib
import os
import threading

_state = {"applied": False, "limits": None, "parts": None, "pool": None, "workers": 0, "blas": None}
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


def num_threads() -> int:
    """The BLAS threads in use (the largest, when several BLAS libraries are loaded)."""
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)


def apply_environment() -> None:
    """Apply ``RNNKIT_NUM_THREADS`` and read ``RNNKIT_LOOP_PARTS``, once (a bad value is one line)."""
    if _state["applied"]:
        return
    _state["applied"] = True
    n = _positive_env("RNNKIT_NUM_THREADS")
    if n is not None:
        set_num_threads(n)
    loop_parts()                                   # RNNKIT_LOOP_PARTS checked as early


def _positive_env(name: str, default=None):
    """The environment variable ``name`` as an integer >= 1 (a bad value is one line), or ``default``."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        from .errors import UserError

        raise UserError(f"{name}: expected an integer >= 1, got {value!r}")
    return n


def set_loop_parts(p: int) -> None:
    """Split the fast time loop into up to ``p`` parts from now on (1: one loop, the default)."""
    if not isinstance(p, int) or isinstance(p, bool) or p < 1:
        raise ValueError(f"loop parts: expected an integer >= 1, got {p!r}")
    _state["parts"] = p


def loop_parts() -> int:
    """The parts a time loop may be split into: the setting, ``RNNKIT_LOOP_PARTS``, or 1."""
    if _state["parts"] is None:
        _state["parts"] = _positive_env("RNNKIT_LOOP_PARTS", 1)
    return _state["parts"]


def batch_parts(N: int) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]``: a batch of N sequences split for :func:`run_parts`, as evenly as it
    goes, up to :func:`loop_parts` parts of at least :data:`MIN_PART` sequences each."""
    P = max(1, min(loop_parts(), N // MIN_PART))
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
        if _state["workers"] < len(parts) - 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = _state["pool"] = ThreadPoolExecutor(len(parts) - 1, thread_name_prefix="rnnkit-loop")
            _state["workers"] = len(parts) - 1
    with single_threaded_blas():
        futures = [pool.submit(fn, *part) for part in parts[1:]]
        try:
            fn(*parts[0])
        finally:
            for f in futures:                    # every part ends before its buffers can go
                f.exception()
        for f in futures:
            f.result()
