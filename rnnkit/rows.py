"""Cross-entropy's row-wise softmax on rnnkit's threads, the same bits as NumPy's.

:func:`rnnkit.functional.losses.cross_entropy` over (positions, classes) logits spends most of
its NumPy time in reductions along short rows (the maximum and the sum of each row of 65
classes: 0.43 of the 2-layer CharLM step's 11 ms at batch 50 x 50). Here the rows are shared by
rnnkit's threads (``kernels/_parallel.py``: ``shift_rows``, ``normalize_rows``,
``softmax_grad_rows``) with NumPy's operations in NumPy's order: the same maximum, the same
subtraction, NumPy's own exponential, the row sums in NumPy's pairwise order, the same
division, so the loss, the softmax and the gradient are bit for bit the NumPy path's (tested).
Like :mod:`rnnkit.products` this sits beside the pure NumPy math and is used by it; with the
NumPy backend (``RNNKIT_KERNELS=numpy``) or without Numba both functions return None and the
caller computes in NumPy.
"""
from __future__ import annotations

import numpy as np

from .kernels import compiled


def _kernels(a):
    """``kernels._parallel`` when the compiled backend is in use and ``a`` is a C-contiguous
    float array with at least one class and one row, else None."""
    if a.dtype not in (np.float32, np.float64) or not a.flags.c_contiguous or a.size == 0:
        return None
    return compiled("_parallel")


def softmax_rows(logits, targets):
    """``(probs, picked)`` for ``logits`` (\\*, C) and class indices ``targets`` (\\*) in range:
    the softmax over the last axis and each position's log-probability of its target, as
    ``cross_entropy`` computes them in NumPy; None when the compiled backend is not in use."""
    k = _kernels(logits)
    if k is None:
        return None
    C = logits.shape[-1]
    X = logits.reshape(-1, C)
    probs, picked, total = np.empty_like(X), np.empty(len(X), X.dtype), np.empty(len(X), X.dtype)
    k.shift_rows(X, np.ascontiguousarray(targets).reshape(-1), probs, picked)
    np.exp(probs, out=probs)
    if C <= k.PAIRWISE_MAX:
        k.normalize_rows(probs, total, X.dtype.type(-0.0))
    else:                                 # longer rows: NumPy's sums, recursive there, are fast
        np.sum(probs, axis=-1, out=total)
        probs /= total[:, None]
    return probs.reshape(logits.shape), (picked - np.log(total)).reshape(np.shape(targets))


def softmax_grad_rows(probs, targets, weight):
    """``(probs - onehot(targets)) * weight[..., None]``, NumPy's operations in its order; None
    when the compiled backend is not in use."""
    k = _kernels(probs)
    weight = np.asarray(weight)
    if k is None or weight.dtype != probs.dtype:     # another dtype: NumPy's promotion, in NumPy
        return None
    C = probs.shape[-1]
    d = np.empty_like(probs)
    k.softmax_grad_rows(probs.reshape(-1, C), np.ascontiguousarray(targets).reshape(-1),
                        np.ascontiguousarray(weight).reshape(-1), probs.dtype.type(1), d.reshape(-1, C))
    return d
