"""The hot loops. Two implementations of the time loop, same contract:

* ``"numpy"``: :mod:`rnnkit.functional.recurrent`, the readable reference;
* ``"numba"``: :mod:`rnnkit.kernels.sequence`, fused Numba kernels over preallocated buffers.

The default (``"auto"``) uses Numba when it imports and falls back to NumPy otherwise. Choose
with the environment variable ``RNNKIT_KERNELS`` or :func:`set_backend` / :func:`use`.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

_BACKENDS = ("auto", "numba", "numpy")
_state = {"backend": os.environ.get("RNNKIT_KERNELS", "auto"), "module": None, "checked": False}
if _state["backend"] not in _BACKENDS:
    raise ValueError(f"RNNKIT_KERNELS: expected one of {_BACKENDS}, got {_state['backend']!r}")


def set_backend(name: str) -> None:
    if name not in _BACKENDS:
        raise ValueError(f"kernel backend: expected one of {_BACKENDS}, got {name!r}")
    _state.update(backend=name, module=None, checked=False)


@contextlib.contextmanager
def use(name: str):
    """Temporarily select a backend: ``with kernels.use("numpy"): ...``."""
    old = _state["backend"]
    set_backend(name)
    try:
        yield
    finally:
        set_backend(old)


def fast_sequence():
    """The fast time-loop module, or None when the NumPy reference is selected or Numba is missing."""
    if not _state["checked"]:
        _state["checked"] = True
        if _state["backend"] != "numpy":
            try:
                from . import sequence
            except ImportError:
                if _state["backend"] == "numba":
                    raise
                sequence = None
            _state["module"] = sequence
    return _state["module"]


def backend() -> str:
    """The backend in use: ``"numba"`` or ``"numpy"``."""
    return "numba" if fast_sequence() is not None else "numpy"


SPLIT_MACS = 1 << 18   # multiply-adds below which a product stays on one thread (a split costs ~10-20 us)


def matmul(a, b):
    """``a @ b`` for 2-D float operands: a large product's rows are split over rnnkit's threads
    (BLAS itself runs single-threaded, :mod:`rnnkit.threads`); a small one, or one NumPy would
    have to convert, is NumPy's."""
    if (a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype not in (np.float32, np.float64)
            or a.shape[0] * a.shape[1] * b.shape[1] < SPLIT_MACS or a.shape[0] < 32 or fast_sequence() is None):
        return a @ b
    from ._parallel import matmul as split

    return split(a, b, np.empty((a.shape[0], b.shape[1]), a.dtype))
