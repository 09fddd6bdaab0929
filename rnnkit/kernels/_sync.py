"""The steps of a time loop shared by the threads of one parallel region, through two counters.

A time loop used to open a parallel region at every step (``for t: for p in prange(P)``), and
the threads met at its end: about 2 us a step here (benchmarks/NOTES.md, attempt 43), twice a
step for forward and backward. Now the region is opened once, and the work of the whole loop is
a sequence of tickets, ``k = t * P + p`` (step ``t``, part ``p``), which the threads take in
order from one counter (:func:`take`). Before working on its ticket's part, a thread waits until
every part of the step before is done (:func:`wait_done`, the second counter, :func:`done`):
about 0.4 us a step.

Why it cannot hang, however many of the region's iterations actually run at once (a threading
layer may run them one after another, or a thread may be descheduled): a thread holds one ticket
at a time and takes the next only when its part is done, so every ticket of an earlier step was
taken by a thread that is running its part, and that part will be done. One thread alone takes
every ticket in order and never waits.

A waiting thread spins (with the CPU's pause hint, about 23 ns here), and after :data:`SPINS`
spins (about 6 us, longer than the parts of a quiet step wait for each other) yields its core to
the operating system at every further check: when another process, or more threads than cores,
share the machine, the thread it waits for may need that core. (The pool's own barriers, at the
end of each region, keep libgomp's long spin: benchmarks/NOTES.md, attempt 45.)
"""
import os
import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# the two counters' slots in one int64 array, a cache line apart
TICKET, DONE = 0, 8
SPINS = 256
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
_POSIX = os.name == "posix"


def counters():
    """The counters of a loop (zeroed by :func:`start` at each run)."""
    return np.zeros(DONE + 8, np.int64)


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
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def _yield(typingctx):
    """``sched_yield()``: the calling thread's core to another thread or process that is ready
    (POSIX; nothing elsewhere)."""
    def codegen(context, builder, signature, args):
        if not _POSIX:
            return context.get_dummy_value()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@njit(cache=True, nogil=True, inline="always")
def start(sync):
    """Zero the counters, before the parallel region."""
    sync[TICKET] = 0
    sync[DONE] = 0


@njit(cache=True, nogil=True, inline="always")
def take(sync):
    """The next ticket."""
    return fetch_add(sync, TICKET)


@njit(cache=True, nogil=True, inline="always")
def done(sync):
    """This thread's part of its ticket's step is done (its writes visible to whoever sees the count)."""
    fetch_add(sync, DONE)


@njit(cache=True, nogil=True)
def wait_done(sync, parts):
    """Until ``parts`` parts in all are done."""
    spins = 0
    while load_acquire(sync, DONE) < parts:
        if spins < SPINS:
            spins += 1
            _pause()
        else:
            _yield()
