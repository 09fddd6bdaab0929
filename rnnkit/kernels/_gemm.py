"""rnnkit's own matrix product for the shapes of its time loops, in 64-byte vectors.

``C = A @ B`` (or ``C += A @ B``) where ``B`` has unit stride along its rows and ``A`` any
strides. ``C`` is cut into tiles of ``R`` rows by up to ``V`` vectors of columns (16 float32 or 8
float64 each); a tile's ``R * V`` sums stay in vector registers for the whole ``K`` loop, which
per ``k`` loads ``V`` vectors of ``B``'s row ``k`` and broadcasts ``R`` elements of ``A``'s column
``k``, one fused multiply-add per (row, vector). The last vector of a tile is loaded and stored
under a mask, so a 50-column state block is one tile wide with nothing copied or padded.

Why (benchmarks/NOTES.md, attempt 35): the per-step products of a time loop are (rows, H) @
(H, 50), and BLAS runs them at the kernels its build picks for the machine, or that the
environment tells it to (``OPENBLAS_CORETYPE``). This product is compiled by LLVM for the machine
it runs on, so where the cores have 512-bit vectors it uses them. The code is written with
LLVM's vector types and intrinsics (``llvm.fma``, ``llvm.masked.load`` / ``store``), which LLVM
lowers to whatever vectors the machine has: the same results to rounding everywhere, the speed
only where the vectors are 512 bits wide (:func:`rnnkit.products.own_product`).
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

VECTOR_BYTES = 64
ROWS = {4: 6, 3: 8, 2: 12, 1: 12}    # a tile's rows by its vectors: R * V sums + V + 1 within 32 registers


def _splat(builder, vt, value):
    lane0 = builder.insert_element(ir.Constant(vt, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(lane0, ir.Constant(vt, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), vt.count), [0] * vt.count))


def _loop_not_unrolled(builder, count, body):
    """``for k in range(count): body(k)`` (``body`` emits straight-line code), with LLVM told not to
    unroll it: an iteration already holds a tile's R * V multiply-adds, and unrolled copies of the
    tiles, inlined into every compiled caller, tripled the compile time of a fresh install."""
    ip = count.type
    mod = builder.module
    pre = builder.block
    head = builder.append_basic_block("tile.k")
    done = builder.append_basic_block("tile.done")
    builder.cbranch(builder.icmp_signed(">", count, ir.Constant(ip, 0)), head, done)
    builder.position_at_end(head)
    k = builder.phi(ip)
    k.add_incoming(ir.Constant(ip, 0), pre)
    body(k)
    nxt = builder.add(k, ir.Constant(ip, 1))
    k.add_incoming(nxt, builder.block)
    back = builder.cbranch(builder.icmp_signed("<", nxt, count), head, done)
    loop_id = mod.add_metadata([ir.MetaDataString(mod, "llvm.loop.unroll.disable")])
    loop_id.operands = (loop_id,) + tuple(loop_id.operands)      # a loop's id refers to itself
    back.set_metadata("llvm.loop", loop_id)
    builder.position_at_end(done)


def _make_tile(R, V):
    """The tile kernel with ``R`` rows and ``V`` vectors, as an intrinsic: ``tile(a, a_off, a_rs,
    a_ks, b, b_off, ldb, c, c_off, ldc, K, rows, cols, add)``. Offsets and strides count elements
    from each array's first; ``A[r, k]`` is at ``a_off + r * a_rs + k * a_ks``, ``B[k, j]`` at
    ``b_off + k * ldb + j``, ``C[r, j]`` at ``c_off + r * ldc + j``; ``rows <= R`` rows and ``cols``
    columns (``(V - 1) * lanes < cols <= V * lanes``) are computed, added to ``C`` when ``add``."""

    @intrinsic
    def tile(typingctx, a, a_off, a_rs, a_ks, b, b_off, ldb, c, c_off, ldc, K, rows, cols, add):
        if not all(isinstance(x, types.Array) for x in (a, b, c)):
            return None
        if a.dtype not in (types.float32, types.float64) or not (a.dtype == b.dtype == c.dtype):
            return None
        sig = types.void(a, a_off, a_rs, a_ks, b, b_off, ldb, c, c_off, ldc, K, rows, cols, add)

        def codegen(context, builder, signature, args):
            sa = signature.args
            ip = context.get_value_type(types.intp)
            i32 = ir.IntType(32)
            ft = context.get_value_type(a.dtype)
            lanes = VECTOR_BYTES // context.get_abi_sizeof(ft)
            vt = ir.VectorType(ft, lanes)
            mt = ir.VectorType(ir.IntType(1), lanes)
            suffix = f"v{lanes}f{8 * context.get_abi_sizeof(ft)}"
            mod = builder.module
            fma = cgutils.get_or_insert_function(mod, ir.FunctionType(vt, [vt, vt, vt]), f"llvm.fma.{suffix}")
            mload = cgutils.get_or_insert_function(mod, ir.FunctionType(vt, [vt.as_pointer(), i32, mt, vt]),
                                                   f"llvm.masked.load.{suffix}.p0")
            mstore = cgutils.get_or_insert_function(mod, ir.FunctionType(ir.VoidType(), [vt, vt.as_pointer(), i32, mt]),
                                                    f"llvm.masked.store.{suffix}.p0")
            av, aoff, ars, aks, bv, boff, ldbv, cv, coff, ldcv, Kv, rowsv, colsv, addv = (
                context.cast(builder, v, t, types.intp) if isinstance(t, types.Integer) else v
                for v, t in zip(args, sa))

            def data(ty, val, off):
                return builder.gep(context.make_array(ty)(context, builder, value=val).data, [off])

            a0, b0, c0 = data(sa[0], av, aoff), data(sa[4], bv, boff), data(sa[7], cv, coff)
            align = ir.Constant(i32, context.get_abi_sizeof(ft))
            last = builder.sub(colsv, ir.Constant(ip, (V - 1) * lanes))
            mask = builder.icmp_signed("<", ir.Constant(ir.VectorType(ip, lanes), list(range(lanes))),
                                       _splat(builder, ir.VectorType(ip, lanes), last))
            zero = ir.Constant(vt, [0.0] * lanes)
            # rows past ``rows`` read the last row (their sums are never stored): no load out of bounds
            top = builder.sub(rowsv, ir.Constant(ip, 1))
            arow = [builder.gep(a0, [builder.mul(
                builder.select(builder.icmp_signed("<", ir.Constant(ip, r), rowsv), ir.Constant(ip, r), top), ars)])
                for r in range(R)]
            acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(V)] for _ in range(R)]
            def step(k):
                brow = builder.gep(b0, [builder.mul(k, ldbv)])
                bvec = []
                for v in range(V):
                    p = builder.bitcast(builder.gep(brow, [ir.Constant(ip, v * lanes)]), vt.as_pointer())
                    bvec.append(builder.call(mload, [p, align, mask, zero]) if v == V - 1
                                else builder.load(p, align=context.get_abi_sizeof(ft)))
                ak = builder.mul(k, aks)
                for r in range(R):
                    s = _splat(builder, vt, builder.load(builder.gep(arow[r], [ak])))
                    for v in range(V):
                        builder.store(builder.call(fma, [s, bvec[v], builder.load(acc[r][v])]), acc[r][v])

            _loop_not_unrolled(builder, Kv, step)
            full = ir.Constant(mt, [1] * lanes)
            for r in range(R):
                with builder.if_then(builder.icmp_signed("<", ir.Constant(ip, r), rowsv), likely=True):
                    crow = builder.gep(c0, [builder.mul(ir.Constant(ip, r), ldcv)])
                    for v in range(V):
                        p = builder.bitcast(builder.gep(crow, [ir.Constant(ip, v * lanes)]), vt.as_pointer())
                        m = mask if v == V - 1 else full
                        total = builder.load(acc[r][v])
                        added = builder.trunc(addv, ir.IntType(1)) if addv.type != ir.IntType(1) else addv
                        with builder.if_then(added):
                            builder.store(builder.fadd(total, builder.call(mload, [p, align, m, zero])), acc[r][v])
                        builder.call(mstore, [builder.load(acc[r][v]), p, align, m])
            return context.get_dummy_value()
        return sig, codegen
    return tile


_T4, _T3, _T2, _T1 = (_make_tile(ROWS[v], v) for v in (4, 3, 2, 1))


@njit(cache=True, nogil=True)
def lanes_of(x):
    """Elements per 64-byte vector for ``x``'s dtype."""
    return VECTOR_BYTES // x.itemsize


@njit(cache=True, nogil=True)
def product(a, a_rs, a_ks, K, b, c, add=False):
    """``C = A @ B`` (``C += A @ B`` when ``add``): ``c`` (M, N) and ``b`` (K, N) with unit stride
    along their rows, ``A[i, k]`` at ``a``'s element ``i * a_rs + k * a_ks`` (a row-major matrix,
    its transpose, or any view). Shapes and strides are the caller's to check.

    Column tiles of up to 4 vectors, each run down every row panel. A ``B`` wider than one tile
    whose rows lie at least four tiles apart is copied a tile at a time into contiguous rows
    first: such a tile's rows fall on few of the cache's sets (a 64-column tile of a 512-column
    ``B`` ran at 0.8 of the rate of the same tile packed); nearer rows are read in place."""
    M, N = c.shape
    if M == 0 or N == 0:
        return
    L = lanes_of(c)
    ldc = c.strides[0] // c.itemsize if M > 1 else N
    ldb = b.strides[0] // b.itemsize if K > 1 else N
    # rows at least four tiles apart, a tile too tall for the first cache, and row panels to share the copy
    wide = N > 4 * L and ldb >= 16 * L and K >= 256 and M >= 96
    pack = np.empty((K, 4 * L) if wide else (0, 0), c.dtype)
    j = 0
    while j < N:
        w = min(N - j, 4 * L)
        if wide:
            for k in range(K):                # plain loops: a slice assignment took 1.5 s to compile
                for i in range(w):
                    pack[k, i] = b[k, j + i]
            bt = pack
        else:
            bt = b[:, j:]
        _columns(a, a_rs, a_ks, K, bt, 4 * L if wide else ldb, c, j, ldc, M, w, L, add)
        j += w


@njit(cache=True, nogil=True, inline="always")
def _columns(a, a_rs, a_ks, K, b, ldb, c, j, ldc, M, w, L, add):
    """One column tile (``w`` columns from ``j``) of ``C``, every row panel."""
    V = (w + L - 1) // L
    R = 6 if V == 4 else 8 if V == 3 else 12
    for i in range(0, M, R):
        rows = min(R, M - i)
        if V == 4:
            _T4(a, i * a_rs, a_rs, a_ks, b, 0, ldb, c, i * ldc + j, ldc, K, rows, w, add)
        elif V == 3:
            _T3(a, i * a_rs, a_rs, a_ks, b, 0, ldb, c, i * ldc + j, ldc, K, rows, w, add)
        elif V == 2:
            _T2(a, i * a_rs, a_rs, a_ks, b, 0, ldb, c, i * ldc + j, ldc, K, rows, w, add)
        else:
            _T1(a, i * a_rs, a_rs, a_ks, b, 0, ldb, c, i * ldc + j, ldc, K, rows, w, add)


@njit(cache=True, nogil=True)
def matmul(a, b, c):
    """``c[...] = a @ b`` for a row-major ``a`` (unit stride along its rows) or any 2-D view."""
    s = a.itemsize
    product(a, a.strides[0] // s, a.strides[1] // s, a.shape[1], b, c)

