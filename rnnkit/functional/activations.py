"""Elementwise activations used by the cells, written to work in place (``out=``)."""
from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, accurate in both tails.

    For very negative ``x`` ``exp(-x)`` overflows to inf and the result is exactly 0, as it
    should be; the overflow warning is silenced.
    """
    with np.errstate(over="ignore"):
        out = np.negative(x, out=out)
        np.exp(out, out=out)
        out += 1.0
        return np.reciprocal(out, out=out)


def hard_sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Piecewise-linear gate ``clip(x / 6 + 1 / 2, 0, 1)`` (PyTorch's ``hardsigmoid``)."""
    out = np.multiply(x, 1.0 / 6.0, out=out)
    out += 0.5
    return np.clip(out, 0.0, 1.0, out=out)
