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
# a tile's rows by its vectors (index V = 1..4): R * V sums + V + 1 within the 32 vector registers;
# a tuple, so compiled drivers read it too
TILE_ROWS = (0, 12, 12, 8, 6)
# rows of B a multiple of this many bytes apart fall on few of the first cache's sets: :func:`product`
# packs them (kernels/sequence.py pads the states' rows so they are not)
ALIASING_BYTES = 512
# a tile's column panel of B (K rows of 4 vectors) at least this large, from rows at least
# SPARSE_ROW_BYTES apart, is packed too: read in place it no longer stays in the second cache
# (1 MB here) between row panels, and streamed back from further away with rows 1-2 kB apart it
# ran at 69-86 GFLOP/s against 99-106 packed (dW_hh at H = 256-512, K = 3200-16384; at K=2500
# level, and rows 576 bytes apart ran in place at 110 GFLOP/s up to K=16384: benchmarks/NOTES.md,
# attempt 99)
PANEL_BYTES = 768 * 1024
SPARSE_ROW_BYTES = 1024


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


class Vectors:
    """IR for the vector arithmetic of one tile, in 64-byte vectors of ``dtype`` (a Numba float
    type): fused multiply-adds, loads and stores under a lane mask, gathers, byte flags."""

    def __init__(self, context, builder, dtype):
        self.b = builder
        self.ft = context.get_value_type(dtype)
        self.size = context.get_abi_sizeof(self.ft)
        self.lanes = n = VECTOR_BYTES // self.size
        self.vt = vt = ir.VectorType(self.ft, n)
        self.mt = mt = ir.VectorType(ir.IntType(1), n)
        self.i8v = i8v = ir.VectorType(ir.IntType(8), n)
        pv = ir.VectorType(self.ft.as_pointer(), n)
        suffix, i32, mod = f"v{n}f{8 * self.size}", ir.IntType(32), builder.module

        def declare(name, ret, *args):
            return cgutils.get_or_insert_function(mod, ir.FunctionType(ret, list(args)), name)

        self._fma = declare(f"llvm.fma.{suffix}", vt, vt, vt, vt)
        self._load = declare(f"llvm.masked.load.{suffix}.p0", vt, vt.as_pointer(), i32, mt, vt)
        self._store = declare(f"llvm.masked.store.{suffix}.p0", ir.VoidType(), vt, vt.as_pointer(), i32, mt)
        self._gather = declare(f"llvm.masked.gather.{suffix}.v{n}p0", vt, pv, i32, mt, vt)
        self._scatter = declare(f"llvm.masked.scatter.{suffix}.v{n}p0", ir.VoidType(), vt, pv, i32, mt)
        self._load8 = declare(f"llvm.masked.load.v{n}i8.p0", i8v, i8v.as_pointer(), i32, mt, i8v)
        self.zero = ir.Constant(vt, [0.0] * n)
        self.all = ir.Constant(mt, [1] * n)
        self._align = ir.Constant(i32, self.size)

    def splat(self, scalar):
        return _splat(self.b, self.vt, scalar)

    def fma(self, a, b, c):
        return self.b.call(self._fma, [a, b, c])

    def load(self, ptr, mask):
        return self.b.call(self._load, [self.b.bitcast(ptr, self.vt.as_pointer()), self._align, mask, self.zero])

    def store(self, value, ptr, mask):
        self.b.call(self._store, [value, self.b.bitcast(ptr, self.vt.as_pointer()), self._align, mask])

    def _apart(self, ptr, stride):
        """Pointers to ``lanes`` elements ``stride`` elements apart from ``ptr``."""
        b, n = self.b, self.lanes
        i64v = ir.VectorType(ir.IntType(64), n)
        base = _splat(b, i64v, b.ptrtoint(ptr, ir.IntType(64)))
        apart = b.mul(stride, ir.Constant(stride.type, self.size))          # bytes
        step = b.mul(ir.Constant(i64v, list(range(n))), _splat(b, i64v, apart))
        return b.inttoptr(b.add(base, step), ir.VectorType(self.ft.as_pointer(), n))

    def gather(self, ptr, stride, mask):
        """``lanes`` elements ``stride`` elements apart from ``ptr`` (masked lanes read nothing)."""
        return self.b.call(self._gather, [self._apart(ptr, stride), self._align, mask, self.zero])

    def scatter(self, value, ptr, stride, mask):
        """Store ``value``'s lanes ``stride`` elements apart from ``ptr`` (masked lanes: nothing)."""
        self.b.call(self._scatter, [value, self._apart(ptr, stride), self._align, mask])

    def flags(self, ptr, mask):
        """``lanes`` booleans (NumPy's one byte each) as a lane mask."""
        none = ir.Constant(self.i8v, [0] * self.lanes)
        raw = self.b.call(self._load8, [self.b.bitcast(ptr, self.i8v.as_pointer()), ir.Constant(ir.IntType(32), 1),
                                        mask, none])
        return self.b.icmp_unsigned("!=", raw, none)


class Frame:
    """What a tile's code starts with: its ``vectors`` (:class:`Vectors` of ``dtype``), the
    arguments (integers as intp), element pointers into the array arguments, intp constants, and
    the masks of the tile's ``V`` vectors of columns: all lanes, then the last vector's ``cols -
    (V - 1) * lanes``, ``cols`` being argument ``cols_at``."""

    def __init__(self, context, builder, signature, args, V, dtype, cols_at, vectors=Vectors):
        self.context, self.builder, self.sa = context, builder, signature.args
        self.ip = context.get_value_type(types.intp)
        self.vec = vec = vectors(context, builder, dtype)
        self.val = [context.cast(builder, v, t, types.intp) if isinstance(t, types.Integer) else v
                    for v, t in zip(args, self.sa)]
        last = builder.sub(self.val[cols_at], self.c((V - 1) * vec.lanes))
        self.masks = [vec.all] * (V - 1) + [self.lanes_below(last)]

    def c(self, n):
        return ir.Constant(self.ip, n)

    def lanes_below(self, n):
        """The mask of lanes ``0 .. n`` (none when ``n <= 0``), ``n`` an intp value."""
        b, vt = self.builder, ir.VectorType(self.ip, self.vec.lanes)
        return b.icmp_signed("<", ir.Constant(vt, list(range(self.vec.lanes))), _splat(b, vt, n))

    def ptr(self, i, off):
        """A pointer to element ``off`` of array argument ``i``."""
        array = self.context.make_array(self.sa[i])(self.context, self.builder, value=self.val[i])
        return self.builder.gep(array.data, [off])

    def rows(self, i, off, stride, R, rows):
        """Pointers to ``R`` rows of array argument ``i``, ``stride`` apart from element ``off``;
        those past ``rows`` point at the last of them (read, never stored: no load out of bounds)."""
        c, b = self.c, self.builder
        top = b.sub(rows, c(1))
        return [self.ptr(i, b.add(off, b.mul(b.select(b.icmp_signed("<", c(r), rows), c(r), top), stride)))
                for r in range(R)]


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
            frame = Frame(context, builder, signature, args, V, a.dtype, 12)
            vec, c, masks = frame.vec, frame.c, frame.masks
            av, aoff, ars, aks, bv, boff, ldbv, cv, coff, ldcv, Kv, rowsv, colsv, addv = frame.val
            arow = frame.rows(0, aoff, ars, R, rowsv)
            b0 = frame.ptr(4, boff)
            acc = [[cgutils.alloca_once_value(builder, vec.zero) for _ in range(V)] for _ in range(R)]

            def step(k):
                brow = builder.gep(b0, [builder.mul(k, ldbv)])
                bvec = [vec.load(builder.gep(brow, [c(v * vec.lanes)]), masks[v]) for v in range(V)]
                ak = builder.mul(k, aks)
                for r in range(R):
                    s = vec.splat(builder.load(builder.gep(arow[r], [ak])))
                    for v in range(V):
                        builder.store(vec.fma(s, bvec[v], builder.load(acc[r][v])), acc[r][v])

            _loop_not_unrolled(builder, Kv, step)
            added = builder.trunc(addv, ir.IntType(1)) if addv.type != ir.IntType(1) else addv
            for r in range(R):
                with builder.if_then(builder.icmp_signed("<", c(r), rowsv), likely=True):
                    crow = frame.ptr(7, builder.add(coff, builder.mul(c(r), ldcv)))
                    for v in range(V):
                        p, m = builder.gep(crow, [c(v * vec.lanes)]), masks[v]
                        with builder.if_then(added):
                            builder.store(builder.fadd(builder.load(acc[r][v]), vec.load(p, m)), acc[r][v])
                        vec.store(builder.load(acc[r][v]), p, m)
            return context.get_dummy_value()
        return sig, codegen
    return tile


_T4, _T3, _T2, _T1 = (_make_tile(TILE_ROWS[v], v) for v in (4, 3, 2, 1))


BLOCK = 16          # the float32 lanes of a vector: transpose_block's side


def _transposed(builder, rows):
    """The 16 x 16 block ``rows`` (16 vectors of 16) transposed: four rounds of two-vector
    shuffles, round k exchanging bit k of the row index with bit k of the lane index."""
    i32 = ir.IntType(32)
    for k in range(4):
        s, out = 1 << k, list(rows)
        lo = ir.Constant(ir.VectorType(i32, BLOCK), [j if not j & s else BLOCK + j - s for j in range(BLOCK)])
        hi = ir.Constant(ir.VectorType(i32, BLOCK), [j + s if not j & s else BLOCK + j for j in range(BLOCK)])
        for i in range(BLOCK):
            if not i & s:
                out[i] = builder.shuffle_vector(rows[i], rows[i | s], lo)
                out[i | s] = builder.shuffle_vector(rows[i], rows[i | s], hi)
        rows = out
    return rows


@intrinsic
def transpose_block(typingctx, S, s_off, lds, T, t_off, ldt, rows, cols):
    """``T[t_off + n * ldt + u] = S[s_off + u * lds + n]`` for ``u < rows <= 16``, ``n < cols <=
    16`` (float32; offsets in elements from each array's first): a 16 x 16 block transposed in
    registers, 16 masked loads, 64 shuffles and 16 masked stores. The fused LSTM step copies its
    new states into their rows with it, where storing each unit's vector a lane a row (a scatter)
    took about a tenth of the forward loop at H = 64 (benchmarks/NOTES.md, attempt 48), and
    :func:`._blas.transpose_band` copies float32 matrices transposed with it (attempt 55)."""
    if not all(isinstance(x, types.Array) and x.dtype == types.float32 for x in (S, T)):
        return None
    sig = types.void(S, s_off, lds, T, t_off, ldt, rows, cols)

    def codegen(context, builder, signature, args):
        frame = Frame(context, builder, signature, args, 1, types.float32, 7)
        vec, c, ptr = frame.vec, frame.c, frame.ptr
        soff, ldsv, toff, ldtv, rowsv, colsv = (frame.val[i] for i in (1, 2, 4, 5, 6, 7))
        in_cols, in_rows = frame.masks[0], frame.lanes_below(rowsv)
        block = []
        for u in range(BLOCK):              # rows past ``rows`` read nothing (zero lanes, never stored)
            at = builder.add(soff, builder.mul(builder.select(builder.icmp_signed("<", c(u), rowsv), c(u), c(0)),
                                               ldsv))
            ok = builder.and_(in_cols, _splat(builder, vec.mt, builder.icmp_signed("<", c(u), rowsv)))
            block.append(vec.load(ptr(0, at), ok))
        for n, row in enumerate(_transposed(builder, block)):
            with builder.if_then(builder.icmp_signed("<", c(n), colsv), likely=True):
                vec.store(row, ptr(3, builder.add(toff, builder.mul(c(n), ldtv))), in_rows)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def prefetch(typingctx, arr, off):
    """Ask the CPU to bring element ``off`` of ``arr`` (counted from its first) into its caches
    (``llvm.prefetch``: a read, kept close): a hint, which never faults and which a target without
    prefetch instructions ignores."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, value=args[0]).data
        off_ = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.bitcast(builder.gep(data, [off_]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.void(arr, off), codegen


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
    whose rows lie a multiple of 512 bytes apart (and at least four tiles, or K >= 1024) is
    copied a tile at a time into contiguous rows first: the 4 cache lines of such a tile's rows
    fall on at most half of the first cache's 64 sets. Packed, a 64-column tile of a 512-column
    ``B`` ran 1.25x as fast, ``dA @ H_prev`` took 3.4-3.6 ms against 4.3 at H=256 (rows 1 kB
    apart) and 0.89-0.93 of its time at H=128 (512 bytes). Other rows are read in place: there the
    copy cost more than it saved (``W_ih^T @ dA``, rows 10,000 bytes apart, 0.77-0.86 ms in place
    against 0.98-1.02 packed at H=128; benchmarks/NOTES.md, attempt 44), unless the tile's
    column panel is too long for the second cache and its rows 1 kB or more apart
    (``PANEL_BYTES``, attempt 99)."""
    M, N = c.shape
    if M == 0 or N == 0:
        return
    L = lanes_of(c)
    ldc = c.strides[0] // c.itemsize if M > 1 else N
    ldb = b.strides[0] // b.itemsize if K > 1 else N
    # rows on few cache sets, a tile too tall for the first cache, row panels to share the copy;
    # rows only two tiles apart (512 bytes) when K is long enough for the second cache to alias
    # too (the weight gradients' K = L*N, not the time loops' per-step K = H)
    row_bytes = ldb * c.itemsize
    wide = N > 4 * L and M >= 96 and (
        (row_bytes % ALIASING_BYTES == 0 and K >= 256 and (ldb >= 16 * L or K >= 1024))
        or (row_bytes >= SPARSE_ROW_BYTES and K * VECTOR_BYTES * 4 >= PANEL_BYTES))
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
    R = TILE_ROWS[V]
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

