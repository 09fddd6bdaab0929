"""Elementwise activations used by the cells, written to work in place (``out=``)."""
from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, accurate in both tails.

    For very negative ``x`` ``exp(-x)`` overflows to inf and the result is exactly 0, as it
    should be; the overflow warning is silenced. ``-x`` is a multiplication by -1: NumPy 2.3's
    in-place ``np.negative`` reads the wrong elements of a strided float32 view on AVX2
    (``tests/test_properties.py`` pins it), and the gate blocks are such views.
    """
    with np.errstate(over="ignore"):
        out = np.multiply(x, x.dtype.type(-1), out=out)
        np.exp(out, out=out)
        out += 1.0
        return np.reciprocal(out, out=out)


def hard_sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Piecewise-linear gate ``clip(x / 6 + 1 / 2, 0, 1)`` (PyTorch's ``hardsigmoid``)."""
    out = np.multiply(x, 1.0 / 6.0, out=out)
    out += 0.5
    return np.clip(out, 0.0, 1.0, out=out)


def sigmoid_grad(s: np.ndarray) -> np.ndarray:
    """Derivative of the logistic function from its output ``s``: ``s (1 - s)``."""
    return s * (1.0 - s)


def hard_sigmoid_grad(s: np.ndarray) -> np.ndarray:
    """Derivative of :func:`hard_sigmoid` from its output: 1/6 inside the linear part, 0 where clipped."""
    return np.where((s > 0.0) & (s < 1.0), 1.0 / 6.0, 0.0).astype(s.dtype)


GATES = {"sigmoid": (sigmoid, sigmoid_grad), "hard_sigmoid": (hard_sigmoid, hard_sigmoid_grad)}
