"""How many threads rnnkit uses.

rnnkit runs its heavy work on one pool of threads, Numba's: the time loops of the plain
RNN / LSTM / GRU (each step's product and gate arithmetic split by hidden units, one part per
thread, ``kernels/_parallel.py``) and the large products around them (blocks of the result's
rows or columns, one per thread). Inside each of those, BLAS runs single-threaded, so BLAS
(OpenBLAS under NumPy's wheels) is set to **one thread** when rnnkit first computes: two pools
of threads that each spin while they wait would take the cores from each other
(benchmarks/NOTES.md, attempt 18: a NumPy product on two BLAS threads right before a time loop
doubled the loop's time, OpenBLAS's idle threads spinning for about 0.1 s after every call).
Products rnnkit leaves to NumPy (small heads, the reference loops) therefore run on one core.

``RNNKIT_NUM_THREADS=n`` (read when rnnkit first computes) or :func:`set_num_threads` sets the
pool's threads (at most Numba's ``NUMBA_NUM_THREADS``, the machine's CPUs by default):

* the default, the machine's cores, suits a machine rnnkit has to itself;
* ``1`` suits a busy machine, or several rnnkit processes side by side (the experiments'
  runs, ``--engine torch --nproc``): threads that meet at every step lose far more than they
  gain when another process holds a core (``benchmarks/busy.py``);
* anything between shares the cores with something else deliberately;
* ``auto`` starts at the machine's cores, and the Trainer then times its own steps at each count
  (:class:`ThreadTuner`): it keeps the cores unless one thread is measurably faster (the machine
  is busy), and measures again every few hundred steps or as soon as the step time drifts. Its
  choices are logged in the run's ``metrics.jsonl``. The parts of a split loop and of a split
  product change with the thread count, and with them the last bits of the products' sums, so a
  run whose count changes is exact to float rounding, not bit for bit: a fixed ``n`` keeps
  resume bit-exact.

``RNNKIT_LOOP_PARTS=p`` (or :func:`set_loop_parts`; default 1) splits the layer-norm LSTM's fused
loop's batch into up to p parts of at least :data:`MIN_PART` sequences, each running its own time
loop on its own Python thread with the nogil kernels (:func:`run_parts`). Measured on this
project's machine (benchmarks/NOTES.md, attempt 12), two parts were slower than one loop on
two-thread BLAS on a quiet machine (1.2-1.4x at H 64-512), so it is off by default.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections import deque

_state = {"applied": False, "given": False, "parts": None, "pool": None, "workers": 0, "blas": None,
          "auto": False, "launched": False}
_lock = threading.Lock()
MIN_PART = 8          # sequences per part of a split time loop, at least


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                         # not on Linux
        return os.cpu_count() or 1


def set_num_threads(n) -> None:
    """Use ``n`` threads from now on (1 <= n), or ``"auto"``: the cores, tuned by the Trainer from
    measured step times (:class:`ThreadTuner`). BLAS is set to one thread either way."""
    auto = n == "auto"
    if not auto and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"threads: expected an integer >= 1 or 'auto', got {n!r}")
    _pool_threads(cores() if auto else n)
    _state["auto"] = auto
    _state["given"] = True          # a count set here wins over RNNKIT_NUM_THREADS (apply_environment)


def _pool_threads(n: int) -> None:
    """rnnkit's pool at ``n`` threads (capped at Numba's), BLAS at one."""
    import numba

    if not _state["launched"]:
        _launch_pool()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    _blas_threads(1)


def _launch_pool() -> None:
    """Start Numba's pool. Its idle threads keep OpenMP's default wait (they spin for a short
    while, then sleep): a training step opens several parallel regions (each time loop, each
    large product) with Python between them, and waking sleeping threads each time made the
    step up to 2.5x slower at H <= 128, while the spin cost no more than PyTorch's own on a busy
    machine (benchmarks/NOTES.md, attempts 18, 31, 45). ``OMP_WAIT_POLICY=PASSIVE`` in the
    environment makes them sleep at once; the loops' own meetings inside a region wait as
    ``kernels/_sync.py`` says."""
    import numba

    _state["launched"] = True
    numba.get_num_threads()                            # launches the threading layer


def _blas_libs():
    """threadpoolctl's controllers of the BLAS libraries loaded (found at first use)."""
    if _state["blas"] is None:
        from threadpoolctl import ThreadpoolController

        try:                                        # the BLAS Numba's np.dot calls (SciPy's): loaded now, so it is found
            import scipy.linalg.cython_blas  # noqa: F401
        except ImportError:
            pass

        _state["blas"] = ThreadpoolController().select(user_api="blas").lib_controllers
    return _state["blas"]


def _blas_threads(n: int) -> None:
    for lib in _blas_libs():
        lib.set_num_threads(n)


def auto_threads() -> bool:
    """Whether the thread count is ``auto`` (``RNNKIT_NUM_THREADS=auto``)."""
    apply_environment()
    return _state["auto"]


def num_threads() -> int:
    """The threads of rnnkit's pool in use (this thread's setting)."""
    if not _COUNT:
        import numba

        numba.get_num_threads()                        # launches the threading layer, once
        from numba.np.ufunc import parallel

        # the layer's own reader, as numba.get_num_threads calls it after a lock and a launch
        # check: a layer's product calls this once, a training step a dozen times
        _COUNT.append(getattr(parallel, "_get_num_threads", None) or numba.get_num_threads)
    return _COUNT[0]()


_COUNT = []


def apply_environment() -> None:
    """Apply ``RNNKIT_NUM_THREADS`` (unless :func:`set_num_threads` was called first: the call
    wins) and ``RNNKIT_KEEP_HEAP`` (:mod:`rnnkit._heap`) and read ``RNNKIT_LOOP_PARTS`` and
    ``RNNKIT_PRODUCT`` (:func:`rnnkit.products.own_product`), once, when rnnkit first computes (a
    bad value is one line). A call of :func:`set_num_threads` before that used to skip all of it,
    the heap setting too, and a two-layer CharLM step took 17-27 ms instead of 12 (page faults on
    every step's buffers; benchmarks/NOTES.md, attempt 81)."""
    if _state["applied"]:
        return
    _state["applied"] = True
    from ._heap import keep_freed_memory

    keep_freed_memory()                            # reuse freed buffers instead of faulting in new pages
    if not _state["given"]:
        if os.environ.get("RNNKIT_NUM_THREADS", "").strip().lower() == "auto":
            set_num_threads("auto")
        else:
            set_num_threads(_positive_env("RNNKIT_NUM_THREADS", cores(), hint=" or 'auto'"))
    loop_parts()                                   # RNNKIT_LOOP_PARTS checked as early
    from .products import own_product

    own_product()                                  # and RNNKIT_PRODUCT


def _positive_env(name: str, default=None, hint=""):
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

        raise UserError(f"{name}: expected an integer >= 1{hint}, got {value!r}")
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
    saved = [(lib, lib.num_threads) for lib in _blas_libs()]
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


class ThreadTuner:
    """Chooses rnnkit's thread count from the measured times of the steps it wraps.

    On a machine rnnkit has to itself, every core is fastest; with another CPU-bound process on
    the same cores, the threads of a time loop wait for whichever of them was descheduled, at
    every step, and one thread is faster
    (benchmarks/busy.py, NOTES.md attempt 12). Which case holds can change during a run, so it is
    measured, not guessed:

    * after ``warmup`` steps (JIT compilation, first-touch allocation), a *trial* runs ``trials``
      steps at each count in ``choices``, interleaved (``[2, 1, 2, 1, 2, 1]``), so a change of
      load hits both alike;
    * a trial ends after its first round when one count is more than ``clear`` times faster
      than another (three steps at a count four times slower would cost more than they tell);
    * the first choice (the cores) is kept unless another's median step time is below
      ``margin`` times its median; the winner runs until ``period`` steps have passed or the
      median of the last five steps drifts by more than the factor ``drift`` from the trial's
      (load came or went), and then a new trial starts. A drift counts only ``gap`` steps after
      a trial; each trial that keeps the count doubles ``gap`` (up to ``period``), one that
      changes it resets it, so a step time that keeps moving for its own reasons (warm-up,
      batches of other lengths) does not make the tuner try again and again.

    ``step()`` is a context manager around one step; ``decision`` holds the last trial's outcome
    (``{"n_threads": n, "median_ms": {n: ms, ...}}``) until :meth:`pop_decision` takes it.
    """

    def __init__(self, choices, *, trials=3, period=200, drift=1.5, warmup=2, margin=0.9, clear=2.0, gap=10,
                 set_threads=None, clock=time.perf_counter):
        self.choices = list(dict.fromkeys(choices))
        self.trials, self.period, self.drift, self.margin, self.clear = trials, period, drift, margin, clear
        self.gap0 = self.gap = gap
        self.set_threads = set_threads or _pool_threads
        self.clock = clock
        self.warm = warmup
        self.current = self.choices[0]
        self.plan: list[int] = []
        self.times: dict[int, list[float]] = {}
        self.reference = None
        self.since = 0
        self.recent: deque = deque(maxlen=5)
        self.decision = None
        self.chosen = None                                     # the last trial's winner

    @contextlib.contextmanager
    def step(self):
        setting = self._before()
        t0 = self.clock()
        yield
        self._after(setting, self.clock() - t0)

    def pop_decision(self):
        d, self.decision = self.decision, None
        return d

    def _use(self, n):
        if n != self.current:
            self.set_threads(n)
            self.current = n

    def _before(self):
        if self.warm > 0 or len(self.choices) < 2:
            return None
        if not self.plan and self.reference is None:          # the first trial
            self._start_trial()
        if self.plan:
            self._use(self.plan[0])
            return self.plan[0]
        return None

    def _start_trial(self):
        self.plan = [c for _ in range(self.trials) for c in self.choices]
        self.times = {c: [] for c in self.choices}

    def _after(self, setting, seconds):
        if self.warm > 0:
            self.warm -= 1
            return
        if setting is not None:                                # a trial step
            self.times[setting].append(seconds)
            self.plan.pop(0)
            first = [t[0] for t in self.times.values() if t]
            if len(self.plan) == len(self.choices) * (self.trials - 1) and max(first) > self.clear * min(first):
                self.plan = []                                 # one round told enough
            if not self.plan:
                self._decide()
            return
        if self.reference is None:
            return
        self.since += 1
        self.recent.append(seconds)
        drifted = self.since >= self.gap and len(self.recent) == self.recent.maxlen and not (
            self.reference / self.drift <= statistics.median(self.recent) <= self.reference * self.drift)
        if self.since >= self.period or drifted:
            self._start_trial()

    def _decide(self):
        med = {c: statistics.median(t) for c, t in self.times.items()}
        best = self.choices[0]
        other = min(self.choices[1:], key=med.get)
        if med[other] < self.margin * med[best]:
            best = other
        self.gap = self.gap0 if best != self.chosen else min(2 * self.gap, self.period)
        self._use(best)
        self.chosen = best
        self.reference, self.since = med[best], 0
        self.recent.clear()
        self.decision = {"n_threads": best, "median_ms": {str(c): round(m * 1e3, 3) for c, m in med.items()}}


def tuner():
    """A :class:`ThreadTuner` over (the cores, 1) when the thread count is ``auto`` and the
    machine has more than one core, else ``None``."""
    if not auto_threads() or cores() < 2:
        return None
    return ThreadTuner([cores(), 1])
