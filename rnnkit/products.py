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

from .threads import num_threads

SPLIT_MACS = 1 << 18   # multiply-adds below which a product stays on one thread (a split costs ~10-20 us)
MIN_ROWS = 16          # rows (or columns) per block, at least


def _large(a, b) -> bool:
    """Whether splitting ``a @ b`` over the threads pays: enough multiply-adds, and a side of the
    result long enough for two blocks."""
    return a.shape[0] * a.shape[1] * b.shape[1] >= SPLIT_MACS and max(a.shape[0], b.shape[1]) >= 2 * MIN_ROWS


def matmul(a, b):
    """``a @ b``, split over the threads when it is large (2-D float operands of one dtype)."""
    if (a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype not in (np.float32, np.float64)
            or a.shape[1] != b.shape[0] or not _large(a, b)):
        return a @ b
    return matmul_into(a, b, np.empty((a.shape[0], b.shape[1]), a.dtype))


def rows_matmul_into(a, b, out):
    """``out[...] = a @ b`` for a batch of rows (a stream's step, :class:`rnnkit.nn.stream.Stream`):
    split as :func:`matmul` splits when large and ``a`` has more than one row; a single row (one
    stream) stays on one thread, where the split would cost its latency more than it saves."""
    if a.shape[0] > 1 and _large(a, b):
        return matmul_into(a, b, out)
    return np.matmul(a, b, out=out)


def matmul_into(a, b, out, by_rows=None):
    """``out[...] = a @ b`` for 2-D operands of one float dtype, split over the threads by
    ``out``'s rows when it is at least as tall as it is wide, else by its columns (so that each
    thread's block is no thinner than it must be); ``by_rows`` True or False chooses. The time
    loops split the projection by rows, so each thread's rows are those its part of the loop
    reads (thread ``p`` of ``P`` takes rows ``p * M // P`` on). An operand goes to BLAS as it is
    when it, or its transpose, has unit stride along its rows and a row stride BLAS accepts (a transposed or
    sliced view needs no copy), else as a copy; an ``out`` BLAS cannot write is computed into a
    fresh array and copied in. Returns ``out``."""
    if (a.ndim != 2 or b.ndim != 2 or out.ndim != 2 or a.shape[1] != b.shape[0]
            or out.shape != (a.shape[0], b.shape[1])):
        raise ValueError(f"matmul_into: shapes {a.shape} @ {b.shape} -> {out.shape} do not match")
    if not (a.dtype == b.dtype == out.dtype and a.dtype in (np.float32, np.float64)):
        raise ValueError(f"matmul_into: dtypes {a.dtype}, {b.dtype} -> {out.dtype}: expected one of float32, float64")
    compiled = _compiled()
    if compiled is None:                                  # the NumPy fallback install
        return np.matmul(a, b, out=out)
    _, split_gemm = compiled
    target = out if _writable_by_blas(out) else np.empty(out.shape, out.dtype)
    M, N = out.shape
    by_rows = M >= N if by_rows is None else by_rows
    parts = max(1, min(num_threads(), (M if by_rows else N) // MIN_ROWS))
    (a, ta), (b, tb) = _operand(a), _operand(b)
    own = own_product()
    if own and tb and by_rows and parts > 1:
        # the own product reads op(b) as (K, N) rows: transposed once here, on every thread,
        # not once per block of rows (each would need all of it)
        b, tb = contiguous(b.T), False
    split_gemm(a, b, target, ta, tb, parts, by_rows, own)
    if target is not out:
        out[...] = target
    return out


def matmul_three(first, second, third):
    """``out[...] = a @ b`` for three independent products, each an ``(a, b, out)`` triple of
    2-D operands of one float dtype (the backward's ``dW_hh``, ``dW_ih`` and input gradient).
    On two threads with rnnkit's own product: one parallel region in which thread 0 computes
    the first product whole, thread 1 the second, and the third is split between them by
    columns so that both do the same multiply-adds; where that cannot balance them within a
    quarter (the first more than the other two together), or otherwise, three
    :func:`matmul_into` calls, each split over the threads. The same bits either way (each
    element's sum is one thread's, in one order). A product split over two threads ran at 1.67-1.82x
    one thread's rate, whole products side by side nearer 2x: at H=64 about 0.02 ms a step
    (benchmarks/NOTES.md, attempt 64)."""
    trio = (first, second, third)
    done = (all(a.ndim == b.ndim == out.ndim == 2 and a.shape[1] == b.shape[0] and out.shape == (a.shape[0], b.shape[1])
                and a.dtype == b.dtype == out.dtype == first[0].dtype for a, b, out in trio)
            and first[0].dtype in (np.float32, np.float64) and all(_writable_by_blas(out) for _, _, out in trio)
            and _compiled() is not None and own_product() and num_threads() == 2)
    if done:
        F0, F1, F2 = [a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in trio]
        f = min(1.0, max(0.0, (F1 + F2 - F0) / (2 * F2))) if F2 else 0.0
        done = F2 > 0 and max(F0 + f * F2, F1 + (1 - f) * F2) <= 1.25 * (F0 + F1 + F2) / 2
    if not done:                                          # (matmul_into raises on bad operands)
        for a, b, out in trio:
            matmul_into(a, b, out)
        return
    N2 = third[2].shape[1]
    cut = min(N2, int(round(f * N2 / 64)) * 64)                # whole tiles of the own product's columns
    (a0, ta0), (b0, tb0) = _operand(first[0]), _operand(first[1])
    (a1, ta1), (b1, tb1) = _operand(second[0]), _operand(second[1])
    (a2, ta2), (b2, tb2) = _operand(third[0]), _operand(third[1])
    c0, c1, c2 = first[2], second[2], third[2]
    from .kernels._parallel import gemm_three

    gemm_three(a0, b0, c0, ta0, tb0, a1, b1, c1, ta1, tb1, a2, b2, c2, ta2, tb2, cut, True)


_COMPILED = []
_OWN = []
PRODUCT_CHOICES = ("auto", "own", "blas")


def own_product() -> bool:
    """Whether the compiled products (the time loops' per-step products and the split products
    here) run rnnkit's own product (:mod:`rnnkit.kernels._gemm`) rather than BLAS's.
    ``RNNKIT_PRODUCT`` (read once, when rnnkit first computes): ``auto`` (the default) uses it
    where the code Numba compiles has 512-bit vectors (AVX-512; :func:`_wide_vectors`), where it
    measured about 2x OpenBLAS's AVX2 kernels and at or above its AVX-512 ones on these shapes
    (benchmarks/NOTES.md, attempt 35); ``own`` everywhere (LLVM
    lowers its vectors to what the machine has: right, not necessarily fast); ``blas`` never.
    Results differ from BLAS's in the last bits (another order of the sums), not more."""
    if not _OWN:
        import os

        choice = os.environ.get("RNNKIT_PRODUCT", "auto").strip().lower() or "auto"
        if choice not in PRODUCT_CHOICES:
            from .errors import UserError

            raise UserError(f"RNNKIT_PRODUCT: expected one of {', '.join(PRODUCT_CHOICES)}, got {choice!r}")
        _OWN.append(choice == "own" or (choice == "auto" and _wide_vectors()))
    return _OWN[0]


def _wide_vectors() -> bool:
    """Whether the code Numba compiles runs 512-bit vectors (AVX-512F): this machine's CPU as LLVM
    sees it, or, when ``NUMBA_CPU_NAME`` names another target (``generic`` for a portable cache),
    that target's features (``NUMBA_CPU_FEATURES``). Built for a generic CPU, the product's
    16-wide vectors and fused multiply-adds ran 60x slower than BLAS."""
    try:
        import numba
        from llvmlite import binding
    except ImportError:                                   # the NumPy fallback install
        return False
    name = numba.config.CPU_NAME
    if name and name != "host":
        return "+avx512f" in (numba.config.CPU_FEATURES or "").split(",")
    return bool(binding.get_host_cpu_features().get("avx512f", False))


def _compiled():
    """``(numba, split_gemm)``, or None without Numba or SciPy's BLAS (the NumPy fallback install);
    looked up once: the imports cost more than a small product's split."""
    if not _COMPILED:
        try:
            import numba
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS the compiled products call)
        except ImportError:
            _COMPILED.append(None)
        else:
            from .kernels._parallel import split_gemm      # a failure here is a bug to see, not a fallback

            _COMPILED.append((numba, split_gemm))
    return _COMPILED[0]


def _leading_ok(v):
    """Whether BLAS can take ``v`` as a row-major matrix: unit stride along its rows and a row
    stride of whole elements, at least a row long (a single row's stride does not matter)."""
    s = v.itemsize
    return ((v.shape[1] <= 1 or v.strides[1] == s)
            and (v.shape[0] <= 1 or (v.strides[0] % s == 0 and v.strides[0] >= s * max(1, v.shape[1]))))


def _writable_by_blas(out):
    return out.flags.writeable and _leading_ok(out)


class _Interface:
    """An ``__array_interface__`` and the array whose memory it describes (kept alive by it)."""

    def __init__(self, interface, base):
        self.__array_interface__, self.base = interface, base


def _readable(m):
    """``m``, or for a read-only array a view of the same memory without the flag. Numba compiles
    a read-only array's type apart from a writeable one's, and the recurrent modules hand out
    read-only outputs, which the heads' products read: two more specializations of the split
    product and the own product in it, about 7 s of a first run's compilation (benchmarks/NOTES.md,
    attempt 82). The compiled products only read their operands; only ``out`` is written."""
    if m.flags.writeable:
        return m
    interface = dict(m.__array_interface__)
    interface["data"] = (interface["data"][0], False)
    return np.asarray(_Interface(interface, m))


def _operand(m):
    """``(m, False)`` or ``(m.T, True)``, whichever BLAS can take as it is (:func:`_leading_ok`);
    else a C-contiguous copy. Read-only operands are passed as :func:`_readable` views."""
    m = _readable(m)
    for v, t in ((m, False), (m.T, True)):
        if _leading_ok(v):
            return v, t
    return np.ascontiguousarray(m), False


def contiguous(m):
    """``m`` itself when it is C-contiguous, else a C-contiguous copy. A column-major array or
    view (the backward's ``dy`` in the feature-major layout, ``W_hh.T``) is copied by blocks on the
    threads (:func:`~rnnkit.kernels._parallel.transpose_into`), faster than NumPy's copy."""
    if m.flags.c_contiguous:
        return m
    if m.strides[0] == m.itemsize:
        from .kernels._parallel import transpose_into

        out = np.empty(m.shape, m.dtype)
        transpose_into(m.T, out)
        return out
    return np.ascontiguousarray(m)
