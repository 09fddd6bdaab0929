"""How compiled functions are called from Python, so that a fresh install compiles each once.

Numba compiles a function once per combination of its arguments' types, and an array's type
includes its layout: C-contiguous, or any ('A', a view with gaps between its rows). A product
called with a whole array and then with the fused LSTM's padded state rows (which a head's
products read) compiled twice, and a parallel function's build costs seconds whatever its body:
``split_gemm`` compiled three times (4.7, 2.4 and 2.6 s) before a fresh demo's first steps
(benchmarks/NOTES.md, attempt 100). :class:`AnyLayout` calls a function through its build with
every array typed 'A', one per dtype, rank and flags, through that build's entry point directly:
a C-contiguous array passes as it is (the same pointer, shape and strides), and the call skips
the dispatcher's type resolution. Callers from compiled code use ``.dispatcher``.
"""
import numpy as np
from numba import typeof


def _key(args):
    """What decides the arguments' types once layouts are set aside: each array's dtype (the whole
    dtype: its byte order and item size too, which its number leaves out), rank and flags, else
    its type."""
    return tuple((a.dtype, a.ndim, a.flags.writeable, a.flags.aligned) if isinstance(a, np.ndarray) else type(a)
                 for a in args)


class AnyLayout:
    """``f(*args)`` through the build of ``dispatcher`` (a ``numba.njit`` function) in which
    every array argument has layout 'A'; the build is compiled (or read from Numba's cache) on
    the first call with those dtypes, ranks and flags."""

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self.__doc__, self.__name__ = dispatcher.__doc__, dispatcher.__name__
        self._entries = {}

    @property
    def signatures(self):
        return self.dispatcher.signatures

    def __call__(self, *args):
        key = _key(args)
        entry = self._entries.get(key)
        if entry is None:
            sig = tuple(typeof(a).copy(layout="A") if isinstance(a, np.ndarray) else typeof(a) for a in args)
            self.dispatcher.compile(sig)
            entry = self._entries[key] = self.dispatcher.overloads[sig].entry_point
        return entry(*args)
