"""The LSTM's forward step with its gate arithmetic inside the product's tile (float32).

One tile is one hidden unit's four gate rows of ``W_hh @ h_t`` (rows a part's units apart, the
part-major layout of ``_parallel.py``) by up to 4 vectors of 16 columns: when the K loop ends,
its 16 sums are the unit's recurrent pre-activations for those columns, and the gates, the cell
and the new state are computed from the registers and stored once. The separate path stores the
product (``hh``), and a Numba kernel reads it back row by row, with a scalar tail for the columns
past the last whole vector (48 and 49 of 50): on this machine that kernel took about as long
as the product at H = 64-128 (benchmarks/NOTES.md, attempt 36).

The arithmetic is the Numba kernel's (``_numba.lstm_forward_fm``), operation for operation:
the pre-activation ``(projection + product) + bias``, the rational tanh of ``_numba`` (clamp,
Horner with fused multiply-adds, one division), ``sigmoid(x) = 1/2 + 1/2 tanh(x/2)``, and
``c = f c_prev + i g``. ``tanh(c)`` is the same function the backward kernel recomputes from the
kept ``c``.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _numba as K
from ._gemm import TILE_ROWS, Frame, Vectors, _loop_not_unrolled, _splat, prefetch, transpose_block

LANES = 16


class _Gates(Vectors):
    """The float32 gate functions on :class:`._gemm.Vectors`, operation for operation those of
    ``_numba`` (``_tanh_fast``, ``_sig_fast``)."""

    def const(self, x):
        return ir.Constant(self.vt, [float(np.float32(x))] * self.lanes)

    def tanh(self, x):
        """``_numba._tanh_fast``: clamp, x P(x^2) / Q(x^2). The clamp keeps a NaN (unordered
        compares), as Numba's ``min`` and ``max`` do there and PyTorch's tanh does: an ordered one
        turned a NaN into -1, so the fused LSTM alone gave finite outputs from NaN weights."""
        b = self.b
        c = self.const(K._CLAMP)
        x = b.select(b.fcmp_unordered(">", x, self.const(-K._CLAMP)), x, self.const(-K._CLAMP))
        x = b.select(b.fcmp_unordered("<", x, c), x, c)
        x2 = b.fmul(x, x)
        p = self.const(K._A13)
        for coef in (K._A11, K._A9, K._A7, K._A5, K._A3, K._A1):
            p = self.fma(p, x2, self.const(coef))
        p = b.fmul(p, x)
        q = self.const(K._B6)
        for coef in (K._B4, K._B2, K._B0):
            q = self.fma(q, x2, self.const(coef))
        return b.fdiv(p, q)

    def sigmoid(self, x):
        """``_numba._sig_fast``: 1/2 + 1/2 tanh(x / 2)."""
        half = self.const(0.5)
        return self.fma(half, self.tanh(self.b.fmul(half, x)), half)

    def splat_flag(self, ptr):
        """One boolean (a byte) for every lane."""
        b = self.b
        flag = b.icmp_unsigned("!=", b.load(b.bitcast(ptr, ir.IntType(8).as_pointer())), ir.Constant(ir.IntType(8), 0))
        return _splat(b, self.mt, flag)

    def forward(self, proj, acc, bias, cp, hp, ok):
        """``_numba.lstm_forward_fm``'s arithmetic on four gates' projections, product sums and
        biases: returns the activations, the cell kept (the old one where not ``ok``) and the
        new state."""
        b = self.b
        acts = []
        for g in range(4):
            x = b.fadd(b.fadd(proj[g], acc[g]), bias[g])
            acts.append(self.tanh(x) if g == 2 else self.sigmoid(x))
        i, f, gg, o = acts
        cnew = self.fma(f, cp, b.fmul(i, gg))
        return acts, b.select(ok, cnew, cp), b.select(ok, b.fmul(o, self.tanh(cnew)), hp)

    def backward(self, acts, cp, tc, ok, acc, dd, y, dcn):
        """``_numba.lstm_backward_fm``'s arithmetic from the activations, the cells before and
        after (``tc = tanh(c)``), the product sums ``acc`` and the carried, output and cell
        gradients: returns the four gate gradients, the cell gradient and the carried one to
        hand on."""
        b = self.b
        one, zero = self.const(1.0), self.zero
        i, f, g, o = acts
        carried = b.fadd(acc, dd)
        dh = b.fadd(carried, y)
        dc = self.fma(b.fmul(dh, o), self.fma(b.fneg(tc), tc, one), dcn)
        grads = (b.fmul(b.fmul(b.fmul(dc, g), i), b.fsub(one, i)),
                 b.fmul(b.fmul(b.fmul(dc, cp), f), b.fsub(one, f)),
                 b.fmul(b.fmul(dc, i), self.fma(b.fneg(g), g, one)),
                 b.fmul(b.fmul(b.fmul(dh, tc), o), b.fsub(one, o)))
        return ([b.select(ok, gr, zero) for gr in grads], b.select(ok, b.fmul(dc, f), dcn),
                b.select(ok, zero, carried))


def _signature(arrays, valid, args):
    """An intrinsic's signature (void, ``args``), or None (no match) unless ``arrays`` are float32
    arrays and ``valid`` a boolean one."""
    if not all(isinstance(x, types.Array) and x.dtype == types.float32 for x in arrays):
        return None
    if not (isinstance(valid, types.Array) and valid.dtype == types.boolean):
        return None
    return types.void(*args)


def _frame(context, builder, signature, args, V):
    """A float32 tile's :class:`._gemm.Frame` (``cols`` its last argument) with the gate functions."""
    return Frame(context, builder, signature, args, V, types.float32, len(args) - 1, _Gates)


def _make_tile(V):
    """The tile with ``V`` vectors of columns: ``tile(W, w_off, w_gs, K, h, h_off, ldh, A, a_off,
    a_gs, bias, b_off, b_gs, C, cp_off, cn_off, Hs, hp_off, hn_off, valid, v_off, cols)``. Offsets
    count float32 elements from each array's first (``valid``: booleans). Gate g's weight row is at
    ``w_off + g * w_gs`` (K elements), its projection row (overwritten by its activation) at ``a_off
    + g * a_gs``, its bias at ``b_off + g * b_gs``; ``h`` (K rows, ``ldh`` apart) is the previous
    state; ``cols`` columns, ``(V - 1) * 16 < cols <= V * 16``. The new state goes to ``Hs`` at
    ``hn_off`` (the unit's row of the step's state); :func:`._gemm.transpose_block` then copies the
    part's new states into the states' rows, as the weight gradient and the module's output read
    them."""

    @intrinsic
    def tile(typingctx, W, w_off, w_gs, Kn, h, h_off, ldh, A, a_off, a_gs, bias, b_off, b_gs,
             C, cp_off, cn_off, Hs, hp_off, hn_off, valid, v_off, cols):
        sig = _signature((W, h, A, bias, C, Hs), valid,
                         (W, w_off, w_gs, Kn, h, h_off, ldh, A, a_off, a_gs, bias, b_off, b_gs, C, cp_off, cn_off, Hs,
                          hp_off, hn_off, valid, v_off, cols))
        if sig is None:
            return None

        def codegen(context, builder, signature, args):
            frame = _frame(context, builder, signature, args, V)
            vec, c, ptr, masks = frame.vec, frame.c, frame.ptr, frame.masks
            (Wv, woff, wgs, Kv, hv, hoff, ldhv, Av, aoff, ags, bv, boff, bgs,
             Cv, cpoff, cnoff, Hv, hpoff, hnoff, vv, voff, colsv) = frame.val
            wrow = [ptr(0, builder.add(woff, builder.mul(c(g), wgs))) for g in range(4)]
            h0 = ptr(4, hoff)
            acc = [[cgutils.alloca_once_value(builder, vec.zero) for _ in range(V)] for _ in range(4)]

            def step(k):
                hrow = builder.gep(h0, [builder.mul(k, ldhv)])
                hvec = [vec.load(builder.gep(hrow, [c(v * LANES)]), masks[v]) for v in range(V)]
                for g in range(4):
                    s = vec.splat(builder.load(builder.gep(wrow[g], [k])))
                    for v in range(V):
                        builder.store(vec.fma(s, hvec[v], builder.load(acc[g][v])), acc[g][v])

            _loop_not_unrolled(builder, Kv, step)
            arow = [ptr(7, builder.add(aoff, builder.mul(c(g), ags))) for g in range(4)]
            bias = [vec.splat(builder.load(ptr(10, builder.add(boff, builder.mul(c(g), bgs))))) for g in range(4)]
            for v in range(V):
                m, at = masks[v], c(v * LANES)
                pa = [builder.gep(arow[g], [at]) for g in range(4)]
                cp = vec.load(ptr(13, builder.add(cpoff, at)), m)
                hp = vec.load(ptr(16, builder.add(hpoff, at)), m)
                ok = vec.flags(ptr(19, builder.add(voff, at)), m)
                sums = [builder.load(acc[g][v]) for g in range(4)]
                acts, cnew, hnew = vec.forward([vec.load(p, m) for p in pa], sums, bias, cp, hp, ok)
                for p, act in zip(pa, acts):
                    vec.store(act, p, m)
                vec.store(cnew, ptr(13, builder.add(cnoff, at)), m)
                vec.store(hnew, ptr(16, builder.add(hnoff, at)), m)
            return context.get_dummy_value()
        return sig, codegen
    return tile


_T4, _T3, _T2, _T1 = (_make_tile(v) for v in (4, 3, 2, 1))


# Columns past the last whole vector: a batch of 50 is 3 vectors and 2 columns, and a fourth
# vector with 2 of its 16 lanes used cost as much as 16 columns (the step's product ran at 50 / 64
# of the rate at 48 columns). Up to TAIL_MAX such columns are computed by tail tiles whose
# vectors run over 16 units instead, reading the weights transposed (``W^T[k]``'s units are
# contiguous) and the buffers with gathers and scatters: 1/16 of a multiply-add per unit, column
# and k, against a whole one.
TAIL = 2            # columns per tail tile
TAIL_MAX = 8
UNITS = 4           # vectors of units in a backward tail tile: 4 x TAIL independent sums a k


@njit(cache=True, nogil=True)
def tail_columns(N):
    """How many of a step's ``N`` columns the tail tiles compute (0: none)."""
    rem = N % LANES
    return rem if rem <= TAIL_MAX else 0


def _column_at(builder, c, j, cols):
    """Column ``j`` of a tail tile, or its last column ``cols - 1`` past it: read, never stored."""
    return builder.select(builder.icmp_signed("<", c(j), cols), c(j), builder.sub(cols, c(1)))


@intrinsic
def _forward_tail(typingctx, WT, wt_off, ldwt, w_gs, Kn, h, h_off, ldh, A, a_off, lda, a_gs, bias, b_off, b_gs,
                  C, cp_off, cn_off, ldc, Hs, hp_off, hn_off, ldhb, valid, v_off, T, t_off, ldt, cols, units):
    """The forward step for ``cols <= TAIL`` columns of ``units <= 16`` units, one vector over the
    units per gate and column. As the forward tile, but ``WT`` is the weights transposed (unit
    lanes contiguous, gate g ``w_gs`` after gate 0, rows ``ldwt`` apart), and a unit's rows in
    ``A``, ``C`` and ``Hs`` are one ``lda``, ``ldc``, ``ldhb`` after the unit
    before (gathered and scattered); in ``T``, a column's units are contiguous."""
    sig = _signature((WT, h, A, bias, C, Hs, T), valid,
                     (WT, wt_off, ldwt, w_gs, Kn, h, h_off, ldh, A, a_off, lda, a_gs, bias, b_off, b_gs, C, cp_off,
                      cn_off, ldc, Hs, hp_off, hn_off, ldhb, valid, v_off, T, t_off, ldt, cols, units))
    if sig is None:
        return None

    def codegen(context, builder, signature, args):
        frame = _frame(context, builder, signature, args, 1)         # masks[0]: the units' lanes
        vec, c, ptr, m = frame.vec, frame.c, frame.ptr, frame.masks[0]
        (WTv, wtoff, ldwtv, wgs, Kv, hv, hoff, ldhv, Av, aoff, ldav, ags, bv, boff, bgs,
         Cv, cpoff, cnoff, ldcv, Hv, hpoff, hnoff, ldhbv, vv, voff, Tv, toff, ldtv, colsv, unitsv) = frame.val
        at = [_column_at(builder, c, j, colsv) for j in range(TAIL)]
        wt0 = [ptr(0, builder.add(wtoff, builder.mul(c(g), wgs))) for g in range(4)]
        h0 = ptr(5, hoff)
        acc = [[cgutils.alloca_once_value(builder, vec.zero) for _ in range(TAIL)] for _ in range(4)]

        def step(k):
            wk = [vec.load(builder.gep(w, [builder.mul(k, ldwtv)]), m) for w in wt0]
            hrow = builder.gep(h0, [builder.mul(k, ldhv)])
            for j in range(TAIL):
                s = vec.splat(builder.load(builder.gep(hrow, [at[j]])))
                for g in range(4):
                    builder.store(vec.fma(wk[g], s, builder.load(acc[g][j])), acc[g][j])

        _loop_not_unrolled(builder, Kv, step)
        bias = [vec.load(ptr(12, builder.add(boff, builder.mul(c(g), bgs))), m) for g in range(4)]
        for j in range(TAIL):
            with builder.if_then(builder.icmp_signed("<", c(j), colsv), likely=True):
                pa = [ptr(8, builder.add(builder.add(aoff, builder.mul(c(g), ags)), c(j))) for g in range(4)]
                cp = vec.gather(ptr(15, builder.add(cpoff, c(j))), ldcv, m)
                hp = vec.gather(ptr(19, builder.add(hpoff, c(j))), ldhbv, m)
                ok = vec.splat_flag(ptr(23, builder.add(voff, c(j))))
                acts, cnew, hnew = vec.forward([vec.gather(p, ldav, m) for p in pa],
                                               [builder.load(acc[g][j]) for g in range(4)], bias, cp, hp, ok)
                for p, act in zip(pa, acts):
                    vec.scatter(act, p, ldav, m)
                vec.scatter(cnew, ptr(15, builder.add(cnoff, c(j))), ldcv, m)
                vec.scatter(hnew, ptr(19, builder.add(hnoff, c(j))), ldhbv, m)
                vec.store(hnew, ptr(25, builder.add(toff, builder.mul(c(j), ldtv))), m)
        return context.get_dummy_value()
    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _prefetch_block(X, off, ld, rows, width):
    """Prefetch ``width`` elements of ``rows`` rows of ``X`` (``ld`` apart) from element ``off``:
    the block of a buffer the part's next step reads, so it arrives while this step computes.
    Without it the loops waited on memory wherever their buffers had left the caches: the second
    layer's forward loop ran a fifth slower than the first's (benchmarks/NOTES.md, attempt 60)."""
    for i in range(rows):
        at = off + i * ld
        for c in range(0, width, LANES):
            prefetch(X, at + c)


@njit(cache=True, nogil=True)
def lstm_forward_part(W, WT, hcur, s, A, bias, Cb, HT, valid, u0, u1, col, N, Kh):
    """Step ``t`` (columns ``col .. col + N`` of the buffers) of units ``u0 .. u1``, whose gate
    rows are ``4 * u0 .. 4 * u1`` of ``W`` (G*H, H), ``A`` and ``bias`` in the part-major order:
    what ``gemm(W[r0:r1], hcur[s], hh[r0:r1])`` then ``_numba.lstm_forward_fm`` compute, in one
    pass per unit. ``hcur`` (2, H, N) holds the state before (``hcur[s]``) and receives the new
    one (``hcur[1 - s]``); the new states also go to ``HT`` ((L+1)*N, H), the layer's states in
    rows, which is all the fused path keeps of them. ``valid`` (N,) is the step's flags; ``WT``
    is ``W.T`` contiguous, read only when ``tail_columns(N)`` is not 0. ``Kh`` is the product's
    length, ``H``, or 0 where the state before is zero (the sums are then zero: no product)."""
    Hp = u1 - u0
    r0 = 4 * u0
    src = hcur[s]
    ldw, lda, ldc = W.strides[0] // 4, A.strides[0] // 4, Cb.strides[0] // 4
    ldh, plane, ldt = hcur.strides[1] // 4, hcur.strides[0] // 4, HT.strides[0] // 4
    sb, db = s * plane, (1 - s) * plane                 # the state before and after, in hcur
    nxt = col + N
    Nm = N - tail_columns(N)
    if nxt < A.shape[1]:                            # the next step's projection rows
        _prefetch_block(A, r0 * lda + nxt, lda, 4 * Hp, N)
    for j in range(Hp):
        r, u = r0 + j, u0 + j
        for j0 in range(0, Nm, 4 * LANES):
            w = min(4 * LANES, Nm - j0)
            V = (w + LANES - 1) // LANES
            args = (W, r * ldw, Hp * ldw, Kh, src, j0, ldh, A, r * lda + col + j0, Hp * lda, bias, r, Hp,
                    Cb, u * ldc + col + j0, u * ldc + nxt + j0, hcur, sb + u * ldh + j0, db + u * ldh + j0,
                    valid, j0, w)
            if V == 4:
                _T4(*args)
            elif V == 3:
                _T3(*args)
            elif V == 2:
                _T2(*args)
            else:
                _T1(*args)
    for j in range(0, Hp, LANES):                   # the new states into their rows, 16 x 16 at a time
        for j0 in range(0, Nm, LANES):
            transpose_block(hcur, db + (u0 + j) * ldh + j0, ldh, HT, (nxt + j0) * ldt + u0 + j, ldt,
                            min(LANES, Hp - j), min(LANES, Nm - j0))
    ldwt = WT.strides[0] // 4 if Nm < N else 0
    for j0 in range(Nm, N, TAIL):
        for j in range(0, Hp, LANES):
            r, u = r0 + j, u0 + j
            _forward_tail(WT, r, ldwt, Hp, Kh, src, j0, ldh, A, r * lda + col + j0, lda, Hp * lda, bias, r, Hp,
                          Cb, u * ldc + col + j0, u * ldc + nxt + j0, ldc, hcur, sb + u * ldh + j0,
                          db + u * ldh + j0, ldh, valid, j0, HT, (nxt + j0) * ldt + u, ldt, min(TAIL, N - j0),
                          min(LANES, Hp - j))


def _make_back_tile(R, V):
    """The backward tile: ``R`` units by ``V`` vectors of columns. ``tile(WT, wt_off, ldwt, Kn, D,
    d_off, ldd, A, a_off, lda, a_gs, S, s_off, lds, s_gs, C, cp_off, cn_off, ldc, Y, y_off, ldy,
    DD, DC, DDO, DCO, n_off, ldn, valid, v_off, rows, cols)``: the sums over ``Kn`` of ``WT``'s
    rows (``ldwt`` apart, one per unit) times ``D``'s rows (the step after's gate gradients) are
    the units' recurrent gradient ``dm``; then ``_numba.lstm_backward_fm``'s arithmetic: gate
    gradients over the activations in ``A`` and into ``S`` (the next product's operand), the cell
    gradient ``DCO`` and the carried gradient ``DDO`` from ``DD``, ``DC`` and the output gradient
    ``Y``. Unit r's rows are one ``ld`` after unit r-1's in every array; gate g's rows ``a_gs`` /
    ``s_gs`` after gate 0's. ``DD``, ``DC``, ``DDO``, ``DCO`` share offsets and row stride."""

    @intrinsic
    def tile(typingctx, WT, wt_off, ldwt, Kn, D, d_off, ldd, A, a_off, lda, a_gs, S, s_off, lds, s_gs,
             C, cp_off, cn_off, ldc, Y, y_off, ldy, ycs, DD, DC, DDO, DCO, n_off, ldn, valid, v_off, rows, cols):
        sig = _signature((WT, D, A, S, C, Y, DD, DC, DDO, DCO), valid,
                         (WT, wt_off, ldwt, Kn, D, d_off, ldd, A, a_off, lda, a_gs, S, s_off, lds, s_gs, C, cp_off,
                          cn_off, ldc, Y, y_off, ldy, ycs, DD, DC, DDO, DCO, n_off, ldn, valid, v_off, rows, cols))
        if sig is None:
            return None

        def codegen(context, builder, signature, args):
            frame = _frame(context, builder, signature, args, V)
            vec, c, ptr, masks = frame.vec, frame.c, frame.ptr, frame.masks
            (WTv, wtoff, ldwtv, Kv, Dv, doff, lddv, Av, aoff, ldav, ags, Sv, soff, ldsv, sgs,
             Cv, cpoff, cnoff, ldcv, Yv, yoff, ldyv, ycsv, DDv, DCv, DDOv, DCOv, noff, ldnv, vv, voff, rowsv,
             colsv) = frame.val
            wrow = frame.rows(0, wtoff, ldwtv, R, rowsv)
            d0 = ptr(4, doff)
            acc = [[cgutils.alloca_once_value(builder, vec.zero) for _ in range(V)] for _ in range(R)]

            def step(k):
                drow = builder.gep(d0, [builder.mul(k, lddv)])
                dvec = [vec.load(builder.gep(drow, [c(v * LANES)]), masks[v]) for v in range(V)]
                for r in range(R):
                    s = vec.splat(builder.load(builder.gep(wrow[r], [k])))
                    for v in range(V):
                        builder.store(vec.fma(s, dvec[v], builder.load(acc[r][v])), acc[r][v])

            _loop_not_unrolled(builder, Kv, step)
            y0 = ptr(19, yoff)
            yslot = cgutils.alloca_once(builder, vec.vt)
            contiguous_y = builder.icmp_signed("==", ycsv, c(1))

            def y_at(r, v, m):
                """Unit r's output gradient for vector v: a vector load, or a gather when the
                columns lie ``ycs`` apart (the (L*N, H) layout the gradient arrives in)."""
                first = builder.gep(y0, [builder.add(builder.mul(c(r), ldyv), builder.mul(c(v * LANES), ycsv))])
                with builder.if_else(contiguous_y, likely=True) as (then, otherwise):
                    with then:
                        builder.store(vec.load(first, m), yslot)
                    with otherwise:
                        builder.store(vec.gather(first, ycsv, m), yslot)
                return builder.load(yslot)

            for r in range(R):
                with builder.if_then(builder.icmp_signed("<", c(r), rowsv), likely=True):
                    rc = c(r)
                    for v in range(V):
                        m, at = masks[v], c(v * LANES)

                        def at_row(i, off, ld):
                            return ptr(i, builder.add(builder.add(off, builder.mul(rc, ld)), at))

                        agate = [builder.gep(at_row(7, aoff, ldav), [builder.mul(c(g), ags)]) for g in range(4)]
                        sgate = [builder.gep(at_row(11, soff, ldsv), [builder.mul(c(g), sgs)]) for g in range(4)]
                        dcn = vec.load(at_row(24, noff, ldnv), m)
                        grads, dco, ddo = vec.backward(
                            [vec.load(p, m) for p in agate], vec.load(at_row(15, cpoff, ldcv), m),
                            vec.tanh(vec.load(at_row(15, cnoff, ldcv), m)),
                            vec.flags(ptr(29, builder.add(voff, at)), m),
                            builder.load(acc[r][v]), vec.load(at_row(23, noff, ldnv), m), y_at(r, v, m), dcn)
                        for pa, ps, gr in zip(agate, sgate, grads):
                            vec.store(gr, pa, m)
                            vec.store(gr, ps, m)
                        vec.store(dco, at_row(26, noff, ldnv), m)
                        vec.store(ddo, at_row(25, noff, ldnv), m)
            return context.get_dummy_value()
        return sig, codegen
    return tile


_B4, _B3, _B2, _B1 = (_make_back_tile(TILE_ROWS[v], v) for v in (4, 3, 2, 1))


@intrinsic
def _backward_tail(typingctx, W, w_off, ldw, Kn, D, d_off, ldd, A, a_off, lda, a_gs, S, s_off, lds, s_gs,
                   C, cp_off, cn_off, ldc, Y, y_off, ldy, ycs, DD, DC, DDO, DCO, n_off, ldn, valid, v_off, cols,
                   units):
    """The backward step for ``cols <= TAIL`` columns of ``units <= UNITS * 16`` units, in vectors
    over the units (UNITS of them, so that a k's multiply-adds do not wait for each other): the
    backward tile's arguments, with ``W`` the weights untransposed (row k's units contiguous,
    rows ``ldw`` apart) and every buffer gathered and scattered, a unit one row after the unit
    before."""
    sig = _signature((W, D, A, S, C, Y, DD, DC, DDO, DCO), valid,
                     (W, w_off, ldw, Kn, D, d_off, ldd, A, a_off, lda, a_gs, S, s_off, lds, s_gs, C, cp_off, cn_off,
                      ldc, Y, y_off, ldy, ycs, DD, DC, DDO, DCO, n_off, ldn, valid, v_off, cols, units))
    if sig is None:
        return None

    def codegen(context, builder, signature, args):
        frame = _frame(context, builder, signature, args, 1)
        vec, c, ptr = frame.vec, frame.c, frame.ptr
        (Wv, woff, ldwv, Kv, Dv, doff, lddv, Av, aoff, ldav, ags, Sv, soff, ldsv, sgs,
         Cv, cpoff, cnoff, ldcv, Yv, yoff, ldyv, ycsv, DDv, DCv, DDOv, DCOv, noff, ldnv, vv, voff, colsv,
         unitsv) = frame.val
        masks = [frame.lanes_below(builder.sub(unitsv, c(u * LANES))) for u in range(UNITS)]
        at = [_column_at(builder, c, j, colsv) for j in range(TAIL)]
        w0, d0 = ptr(0, woff), ptr(4, doff)
        acc = [[cgutils.alloca_once_value(builder, vec.zero) for _ in range(TAIL)] for _ in range(UNITS)]

        def step(k):
            wrow = builder.gep(w0, [builder.mul(k, ldwv)])
            wk = [vec.load(builder.gep(wrow, [c(u * LANES)]), masks[u]) for u in range(UNITS)]
            drow = builder.gep(d0, [builder.mul(k, lddv)])
            for j in range(TAIL):
                s = vec.splat(builder.load(builder.gep(drow, [at[j]])))
                for u in range(UNITS):
                    builder.store(vec.fma(wk[u], s, builder.load(acc[u][j])), acc[u][j])

        _loop_not_unrolled(builder, Kv, step)
        for u in range(UNITS):
            m = masks[u]
            with builder.if_then(builder.icmp_signed(">", unitsv, c(u * LANES)), likely=True):
                for j in range(TAIL):
                    with builder.if_then(builder.icmp_signed("<", c(j), colsv), likely=True):
                        cj = c(j)

                        def at_col(i, off, ld):
                            return ptr(i, builder.add(builder.add(off, builder.mul(c(u * LANES), ld)), cj))

                        agate = [builder.gep(at_col(7, aoff, ldav), [builder.mul(c(g), ags)]) for g in range(4)]
                        sgate = [builder.gep(at_col(11, soff, ldsv), [builder.mul(c(g), sgs)]) for g in range(4)]
                        yat = builder.add(builder.add(yoff, builder.mul(c(u * LANES), ldyv)), builder.mul(cj, ycsv))
                        grads, dco, ddo = vec.backward(
                            [vec.gather(p, ldav, m) for p in agate], vec.gather(at_col(15, cpoff, ldcv), ldcv, m),
                            vec.tanh(vec.gather(at_col(15, cnoff, ldcv), ldcv, m)),
                            vec.splat_flag(ptr(29, builder.add(voff, cj))), builder.load(acc[u][j]),
                            vec.gather(at_col(23, noff, ldnv), ldnv, m), vec.gather(ptr(19, yat), ldyv, m),
                            vec.gather(at_col(24, noff, ldnv), ldnv, m))
                        for pa, ps, gr in zip(agate, sgate, grads):
                            vec.scatter(gr, pa, ldav, m)
                            vec.scatter(gr, ps, ldsv, m)
                        vec.scatter(dco, at_col(26, noff, ldnv), ldnv, m)
                        vec.scatter(ddo, at_col(25, noff, ldnv), ldnv, m)
        return context.get_dummy_value()
    return sig, codegen


@njit(cache=True, nogil=True)
def lstm_backward_part(WT, W, dprev, A, dnext, Cb, DY, dy_rows, dd_in, dc_in, dd_out, dc_out, valid, u0, u1, col, N,
                       Kn, k0=0):
    """Step ``t``'s backward for units ``u0 .. u1``: what ``gemm(WT[u0:u1, k0:k0 + Kn], dprev[k0:k0 + Kn],
    dm)`` (skipped when ``Kn`` is 0: the last step has no step after) then ``_numba.lstm_backward_fm``
    then the copy of the gate gradients into ``dnext`` compute, in one pass per tile of units. ``WT``
    (H, G*H) is ``W_hh``'s permuted transpose and ``W`` its transpose (read only when
    ``tail_columns(N)`` is not 0), ``dprev`` / ``dnext`` (G*H, N) the gate gradients of the step
    after / of this step, ``dd_*`` and ``dc_*`` (H, N) the carried and cell gradients. ``DY`` is
    the output gradient, (H, L*N) or, when ``dy_rows``, (L*N, H) as it arrives from the user or
    the layer above (read with gathers, which costs less than transposing it)."""
    Hp = u1 - u0
    r0 = 4 * u0
    ldwt, lda, ldc = WT.strides[0] // 4, A.strides[0] // 4, Cb.strides[0] // 4
    ldy, ycs = (1, DY.strides[0] // 4) if dy_rows else (DY.strides[0] // 4, 1)
    ldd, lds, ldn = dprev.strides[0] // 4, dnext.strides[0] // 4, dd_in.strides[0] // 4
    nxt = col + N
    Nm = N - tail_columns(N)
    if col >= N:                                    # what the step before reads: cells, dy
        _prefetch_block(Cb, u0 * ldc + col - N, ldc, Hp, N)
        if dy_rows:
            _prefetch_block(DY, (col - N) * ycs + u0, ycs, N, Hp)
        else:
            _prefetch_block(DY, u0 * ldy + col - N, ldy, Hp, N)
    for j0 in range(0, Nm, 4 * LANES):
        w = min(4 * LANES, Nm - j0)
        V = (w + LANES - 1) // LANES
        R = TILE_ROWS[V]
        for jj in range(0, Hp, R):
            rows = min(R, Hp - jj)
            u, r = u0 + jj, r0 + jj
            args = (WT, u * ldwt + k0, ldwt, Kn, dprev, k0 * ldd + j0, ldd, A, r * lda + col + j0, lda, Hp * lda,
                    dnext, r * lds + j0, lds, Hp * lds, Cb, u * ldc + col + j0, u * ldc + nxt + j0, ldc,
                    DY, u * ldy + (col + j0) * ycs, ldy, ycs, dd_in, dc_in, dd_out, dc_out, u * ldn + j0, ldn, valid,
                    j0, rows, w)
            if V == 4:
                _B4(*args)
            elif V == 3:
                _B3(*args)
            elif V == 2:
                _B2(*args)
            else:
                _B1(*args)
            if col >= N and j0 == 0:                # then these units' activations, a tile at a time
                for g in range(4):                  # (all at the start: 0.1 ms slower; NOTES, attempt 60)
                    _prefetch_block(A, (r + g * Hp) * lda + col - N, lda, rows, N)
    ldw = W.strides[0] // 4 if Nm < N else 0
    for j0 in range(Nm, N, TAIL):
        for jj in range(0, Hp, UNITS * LANES):
            u, r = u0 + jj, r0 + jj
            _backward_tail(W, k0 * ldw + u, ldw, Kn, dprev, k0 * ldd + j0, ldd, A, r * lda + col + j0, lda, Hp * lda,
                           dnext, r * lds + j0, lds, Hp * lds, Cb, u * ldc + col + j0, u * ldc + nxt + j0, ldc,
                           DY, u * ldy + (col + j0) * ycs, ldy, ycs, dd_in, dc_in, dd_out, dc_out, u * ldn + j0, ldn,
                           valid, j0, min(TAIL, N - j0), min(UNITS * LANES, Hp - jj))
