"""Matrix products on rnnkit's threads.

BLAS runs single-threaded under rnnkit (:mod:`rnnkit.threads`), so a large product is split here
instead: the result's rows (or, for a wide result, its columns) in one block per thread, each
block one single-threaded BLAS call in a ``prange`` (:func:`rnnkit.kernels._blas.gemm`, which
takes strided and transposed views without copying them). Small products, and operands NumPy
would have to convert, stay with NumPy. Used by every layer's large products (projections, weight
gradients, heads) and by the reference time loops' per-step products.
"""
from __future__ import annotations

import numpy as np

SPLIT_MACS = 1 << 18   # multiply-adds below which a product stays on one thread (a split costs ~10-20 us)
MIN_ROWS = 16          # rows (or columns) per block, at least


def matmul(a, b):
    """``a @ b``, split over the threads when it is large (2-D float operands of one dtype)."""
    if (a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype not in (np.float32, np.float64)
            or a.shape[1] != b.shape[0] or a.shape[0] * a.shape[1] * b.shape[1] < SPLIT_MACS
            or max(a.shape[0], b.shape[1]) < 2 * MIN_ROWS):
        return a @ b
    return matmul_into(a, b, np.empty((a.shape[0], b.shape[1]), a.dtype))


def matmul_into(a, b, out):
    """``out[...] = a @ b`` (2-D, ``out`` with unit stride along its rows), split over the
    threads by ``out``'s rows when it is at least as tall as it is wide, else by its columns (so
    that each thread's block is no thinner than it must be). Operands go to BLAS as they are when
    either of their strides is one element (a transposed or sliced view needs no copy); returns
    ``out``."""
    try:
        import numba
    except ImportError:                                   # the NumPy fallback install
        return np.matmul(a, b, out=out)
    from .kernels._parallel import split_gemm

    M, N = out.shape
    by_rows = M >= N
    parts = max(1, min(numba.get_num_threads(), (M if by_rows else N) // MIN_ROWS))
    (a, ta), (b, tb) = _operand(a), _operand(b)
    split_gemm(a, b, out, ta, tb, parts, by_rows)
    return out


def _operand(m):
    """``(m, False)`` or ``(m.T, True)``, whichever has unit stride along its rows and a row
    stride BLAS accepts as a leading dimension; else a C-contiguous copy."""
    s = m.itemsize
    for v, t in ((m, False), (m.T, True)):
        if (v.strides[1] == s or v.shape[1] <= 1) and v.strides[0] % s == 0 and v.strides[0] >= s * max(1, v.shape[1]):
            return v, t
    return np.ascontiguousarray(m), False


def contiguous(m, c_order=False):
    """``m`` itself when it is C-contiguous, or F-contiguous and ``c_order`` is false (BLAS reads
    either; the operand whose row blocks the threads take needs C, since a block of an F-ordered
    array is neither), else a C-contiguous copy, made once rather than by each thread's
    ``np.dot``. A column-major array or view (``dy.T`` in a weight gradient, ``Hb[:, :L*N].T``:
    the hidden states, ``W_hh.T`` for the backward's products) is copied by tiles
    (:func:`~rnnkit.kernels._parallel.transpose_into`), 2.6x faster than NumPy's copy."""
    if m.flags.c_contiguous or (m.flags.f_contiguous and not c_order):
        return m
    if m.strides[0] == m.itemsize:
        from .kernels._parallel import transpose_into

        out = np.empty(m.shape, m.dtype)
        transpose_into(m.T, out)
        return out
    return np.ascontiguousarray(m)
