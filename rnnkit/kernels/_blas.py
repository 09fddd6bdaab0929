"""BLAS's general matrix product called from compiled code with its leading dimensions.

Numba compiles ``np.dot`` only for contiguous operands, so a strided view (a step's column
block of a ``(rows, L*N)`` buffer, a column block of a weight, a transposed matrix) had to be
copied first. ``gemm`` hands such views to BLAS as they are: every operand only needs unit
stride along its rows. It calls ``numba_xxgemm``, the entry point Numba's own ``np.dot`` calls
(SciPy's BLAS), by its symbol name, so functions using it stay in Numba's on-disk cache (a
ctypes function pointer would not: benchmarks/NOTES.md, attempt 16).
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._gemm import BLOCK, product, transpose_block

_KIND = {types.float32: ord("s"), types.float64: ord("d")}


@intrinsic
def _xxgemm(typingctx, transa, transb, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """Column-major BLAS ``c = a' b' + beta c`` (``'`` as ``transa`` / ``transb``: ord('n') or
    ord('t')), alpha 1; ``a``, ``b``, ``c`` arrays of one float dtype, used from their first
    element."""
    if not (isinstance(a, types.Array) and isinstance(b, types.Array) and isinstance(c, types.Array)):
        return None
    if a.dtype not in _KIND or a.dtype != b.dtype or a.dtype != c.dtype:
        return None
    kind = _KIND[a.dtype]
    sig = types.int32(transa, transb, m, n, k, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        ta, tb, m_, n_, k_, av, lda_, bv, ldb_, beta_, cv, ldc_ = args
        i8, vp, ip = ir.IntType(8), ir.IntType(8).as_pointer(), context.get_value_type(types.intp)
        fnty = ir.FunctionType(ir.IntType(32), [i8, i8, i8, ip, ip, ip, vp, vp, ip, vp, ip, vp, vp, ip])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        dtype = a.dtype
        alpha = cgutils.alloca_once_value(builder, context.get_constant(dtype, 1.0))
        beta_slot = cgutils.alloca_once_value(builder, context.cast(builder, beta_, signature.args[9], dtype))

        def data(ty, val):
            return builder.bitcast(context.make_array(ty)(context, builder, value=val).data, vp)

        def as_ip(val, ty):
            return context.cast(builder, val, ty, types.intp)

        sa = signature.args
        return builder.call(fn, (ir.Constant(i8, kind), builder.trunc(ta, i8), builder.trunc(tb, i8),
                                 as_ip(m_, sa[2]), as_ip(n_, sa[3]), as_ip(k_, sa[4]),
                                 builder.bitcast(alpha, vp), data(sa[5], av), as_ip(lda_, sa[6]),
                                 data(sa[7], bv), as_ip(ldb_, sa[8]), builder.bitcast(beta_slot, vp),
                                 data(sa[10], cv), as_ip(ldc_, sa[11])))
    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _ld(x):
    """The leading dimension of a row-major matrix: its row stride in elements (any value of at
    least a row for a single row, whose stride BLAS never uses)."""
    return x.strides[0] // x.itemsize if x.shape[0] > 1 else max(1, x.shape[1])


@njit(cache=True, nogil=True)
def gemm(a, b, out, ta=False, tb=False, beta=0.0, own=False):
    """``out = op(a) @ op(b) + beta * out`` for 2-D arrays with unit stride along their rows
    and a row stride of at least a row (views of larger buffers are fine); ``op(x)`` is ``x.T``
    when ``ta`` / ``tb``. ``out`` is (M, N), ``op(a)`` (M, K), ``op(b)`` (K, N). The caller
    checks shapes and layouts (:func:`rnnkit.products.matmul_into`): BLAS reads what it is told.
    ``own``: rnnkit's own product (:mod:`._gemm`) instead of BLAS, for ``beta`` 0; a transposed
    ``b`` is copied to its (K, N) layout first, which that product reads."""
    M, N = out.shape
    K = a.shape[0] if ta else a.shape[1]
    if M == 0 or N == 0:
        return
    if own and beta == 0.0:
        s = a.itemsize
        rs, ks = (a.strides[1] // s, a.strides[0] // s) if ta else (a.strides[0] // s, a.strides[1] // s)
        product(a, rs, ks, K, transposed(b) if tb else b, out)
        return
    if K == 0:
        for i in range(M):
            for j in range(N):
                out[i, j] = 0.0 if beta == 0.0 else beta * out[i, j]
        return
    lda, ldb, ldc = _ld(a), _ld(b), _ld(out)
    # row-major out = op(a) op(b) is column-major out^T = op(b)^T op(a)^T: b first
    _xxgemm(116 if tb else 110, 116 if ta else 110, N, M, K, b, ldb, a, lda, beta, out, ldc)


@njit(cache=True, nogil=True)
def transposed(m):
    """``m.T`` as a new C-contiguous array, copied by :func:`transpose_band` (one thread)."""
    C = m.shape[1]
    out = np.empty((C, m.shape[0]), m.dtype)
    for j0 in range(0, C, TILE):
        transpose_band(m, out, j0, min(C, j0 + TILE))
    return out


TILE = 32


def transpose_band(a, out, j0, j1):
    """``out[j, i] = a[i, j]`` for ``a``'s columns ``j0 .. j1`` (at most ``TILE``), compiled
    callers only. float32 with unit stride along both sides' rows and rows whole elements apart:
    16 x 16 blocks transposed in registers (:func:`._gemm.transpose_block`), 4x the scalar tiles'
    rate at (2500, 64) (the projection's transposed input; benchmarks/NOTES.md, attempt 55); else
    ``TILE``-row tiles a scalar at a time, so both sides of the copy stay in the first cache."""
    _scalar_band(a, out, j0, j1)


@njit(cache=True, nogil=True, inline="always")
def _scalar_band(a, out, j0, j1):
    R = a.shape[0]
    for i0 in range(0, R, TILE):
        i1 = min(R, i0 + TILE)
        for j in range(j0, j1):
            for i in range(i0, i1):
                out[j, i] = a[i, j]


@njit(cache=True, nogil=True, inline="always")
def _block_band(a, out, j0, j1):
    if a.strides[1] != 4 or out.strides[1] != 4 or a.strides[0] % 4 or out.strides[0] % 4:
        _scalar_band(a, out, j0, j1)             # not whole elements apart: a packed record's field
        return
    R, lda, ldo = a.shape[0], a.strides[0] // 4, out.strides[0] // 4
    for i0 in range(0, R, BLOCK):
        for j in range(j0, j1, BLOCK):
            transpose_block(a, i0 * lda + j, lda, out, j * ldo + i0, ldo, min(BLOCK, R - i0), min(BLOCK, j1 - j))


@overload(transpose_band, inline="always")
def _transpose_band(a, out, j0, j1):
    if a.dtype == types.float32 and out.dtype == types.float32:
        return lambda a, out, j0, j1: _block_band(a, out, j0, j1)
    return lambda a, out, j0, j1: _scalar_band(a, out, j0, j1)
