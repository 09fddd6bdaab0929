"""The hot loops. Two implementations of the time loop, same contract:

* ``"numpy"``: :mod:`rnnkit.functional.recurrent`, the readable reference;
* ``"numba"``: :mod:`rnnkit.kernels.sequence`, fused Numba kernels over preallocated buffers.

The default (``"auto"``) uses Numba when it imports and falls back to NumPy otherwise. Choose
with the environment variable ``RNNKIT_KERNELS`` or :func:`set_backend` / :func:`use`.
"""
from __future__ import annotations

import contextlib
import os
import sys

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


def compiled(name: str):
    """The compiled backend's module ``rnnkit.kernels.<name>`` (``"_numba"``, ``"_parallel"``: both
    imported by :func:`fast_sequence`'s module), or None when the NumPy backend is in use or Numba
    is missing. For the code beside ``functional/`` (checks, optimizers, ``rows.py``) that runs a
    compiled kernel when there is one and NumPy otherwise."""
    return None if fast_sequence() is None else sys.modules[f"{__name__}.{name}"]


def backend() -> str:
    """The backend in use: ``"numba"`` or ``"numpy"``."""
    return "numba" if fast_sequence() is not None else "numpy"

