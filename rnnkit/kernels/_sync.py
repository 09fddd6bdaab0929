"""The steps of a time loop shared by the threads of one parallel region, through counters.

A time loop used to open a parallel region at every step (``for t: for p in prange(P)``), and
the threads met at its end: about 2 us a step here (benchmarks/NOTES.md, attempt 43), twice a
step for forward and backward. Now the region is opened once, with one worker per part, and the
workers meet through counters in one int64 array (:func:`counters`): ``DONE`` counts the parts
done in all, and each part's ``claim`` holds the last step whose part some worker has taken.

:func:`next_task` gives a worker its next (step, part). At each step a worker first claims its
own part (an atomic compare-and-swap of the part's claim from ``t - 1`` to ``t``), so each part
stays on one core and its weight rows in that core's cache; a first version gave every part to
whichever thread came first, and under load, when the order changes at every step, the rows
moved between the cores (attempt 46). A part nobody has claimed after :data:`STEAL_AFTER` spins
(its worker descheduled, or not started) is claimed by a waiting worker instead.

Why it cannot hang, however many of the region's iterations run at once (a threading layer may
run them one after another, or a thread lose its core): a worker waits only for parts that are
claimed, and a part is claimed by a worker that is running it; a part nobody claims is claimed
by a waiting worker. One worker alone runs every part, claiming the others' after the spins.

A waiting worker spins with the CPU's pause hint (about 23 ns here) for up to :data:`SPINS`,
about as long as libgomp's own barriers spin by default, and then sleeps :data:`NAP_US` at a
time; ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once) and ``GOMP_SPINCOUNT`` set it as they set
libgomp's (:func:`spins`, read when a loop starts). Giving the core away sooner (yielding after
6 us, or a 1 ms spin) made the step 2-4x slower beside one busy process: the core went to the
competitor for a whole time slice (attempt 46).

A part must not raise: a worker that left the region would leave the others waiting for its
part. The parts are the loops' products and gate kernels, which do not raise; the one
allocation among them (the own product's packing buffer, ``_gemm.product``) is a few hundred kB.
"""
import os
import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# slots: the parts done, the spins before a wait sleeps (read-only in the region), part p's claim
# at CLAIMS + 8 p (a cache line each)
DONE, SPINS_AT, CLAIMS = 0, 1, 8
SPINS = 300_000          # pauses before a waiting worker sleeps (about 7 ms here), unless the environment says
STEAL_AFTER = 1_000      # pauses before a waiting worker claims a part nobody has (about 23 us)
NAP_US = 20              # a waiting worker's sleeps after SPINS
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
_POSIX = os.name == "posix"


def counters(parts):
    """The counters of a loop with ``parts`` parts (set by :func:`start` at each run), with the
    waits' spins: :func:`spins`."""
    sync = np.zeros(CLAIMS + 8 * parts, np.int64)
    sync[SPINS_AT] = spins()
    return sync


def spins():
    """Pauses a waiting worker spins before it sleeps: :data:`SPINS`, none under
    ``OMP_WAIT_POLICY=PASSIVE``, or ``GOMP_SPINCOUNT`` when it is a number: the settings that make
    the pool's own threads (OpenMP's) stop spinning sooner stop the loops' waits too."""
    if os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE":
        return 0
    count = os.environ.get("GOMP_SPINCOUNT", "").strip()
    return int(count) if count.isdigit() else SPINS


def _slot(context, builder, signature, args):
    arr, idx = args[0], args[1]
    ary = context.make_array(signature.args[0])(context, builder, arr)
    return builder.gep(ary.data, [idx])


def _int64_array(a):
    return isinstance(a, types.Array) and a.dtype == types.int64 and a.layout == "C"


@intrinsic
def fetch_add(typingctx, arr, idx):
    """``arr[idx] += 1`` as one atomic operation (sequentially consistent); returns the old value."""
    if not _int64_array(arr):
        return None

    def codegen(context, builder, signature, args):
        return builder.atomic_rmw("add", _slot(context, builder, signature, args), ir.Constant(ir.IntType(64), 1),
                                  "seq_cst")
    return types.int64(arr, types.intp), codegen


@intrinsic
def load_acquire(typingctx, arr, idx):
    """``arr[idx]``, read atomically: what was written before the write of that value is visible."""
    if not _int64_array(arr):
        return None

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_slot(context, builder, signature, args), "acquire", 8)
    return types.int64(arr, types.intp), codegen


@intrinsic
def _pause(typingctx):
    """The CPU's spin-wait hint (x86 ``pause``); nothing elsewhere."""
    def codegen(context, builder, signature, args):
        if _X86:
            fnty = ir.FunctionType(ir.VoidType(), [])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def compare_swap(typingctx, arr, idx, old, new):
    """``arr[idx] = new`` if it holds ``old``, as one atomic operation (sequentially consistent);
    returns whether it did."""
    if not _int64_array(arr):
        return None

    def codegen(context, builder, signature, args):
        expected, value = (context.cast(builder, v, ty, types.int64) for v, ty in zip(args[2:], signature.args[2:]))
        res = builder.cmpxchg(_slot(context, builder, signature, args), expected, value, "seq_cst", "seq_cst")
        return builder.extract_value(res, 1)
    return types.boolean(arr, types.intp, old, new), codegen


@intrinsic
def _sleep(typingctx, microseconds):
    """``usleep(microseconds)``: the calling thread off its core for a while (POSIX; nothing
    elsewhere)."""
    if not isinstance(microseconds, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        if not _POSIX:
            return context.get_dummy_value()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), [ir.IntType(32)]),
                                            "usleep")
        builder.call(fn, [builder.trunc(args[0], ir.IntType(32))])
        return context.get_dummy_value()
    return types.void(microseconds), codegen


@njit(cache=True, nogil=True, inline="always")
def start(sync):
    """Set the counters, before the parallel region: nothing done, nothing claimed."""
    sync[DONE] = 0
    for i in range(CLAIMS, sync.shape[0], 8):
        sync[i] = -1


@njit(cache=True, nogil=True, inline="always")
def done(sync):
    """The worker's part of its step is done (its writes visible to whoever sees the count)."""
    fetch_add(sync, DONE)


@njit(cache=True, nogil=True, inline="always")
def _wait(sync, spins):
    if spins < sync[SPINS_AT]:
        _pause()
    else:
        _sleep(NAP_US)


@njit(cache=True, nogil=True)
def next_task(sync, w, P, L, t):
    """The next ``(step, part)`` for worker ``w`` (its own part is ``w``), at step ``t`` or later,
    once every part of the step before is done; ``(L, -1)`` when the loop is over."""
    w = np.int64(w)                    # a prange index may be unsigned: mixed with int64 it types as float
    while t < L:
        spins = 0
        # callers pass a step whose predecessor they have seen done; kept as the guard it states
        while load_acquire(sync, DONE) < t * P:
            _wait(sync, spins)
            spins += 1
        if compare_swap(sync, CLAIMS + 8 * w, t - 1, t):
            return t, w
        spins = 0                      # the own part is taken: help with the step, or wait for it
        while load_acquire(sync, DONE) < (t + 1) * P:
            if spins >= STEAL_AFTER:
                for q in range(P):     # read first: a failing compare-and-swap still takes the line
                    if load_acquire(sync, CLAIMS + 8 * q) == t - 1 and compare_swap(sync, CLAIMS + 8 * q, t - 1, t):
                        return t, q
            _wait(sync, spins)
            spins += 1
        t += 1
    return L, -1
