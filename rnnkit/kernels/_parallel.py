"""The whole time loop of one direction of one layer in one compiled function, its steps shared
by the cores without a hand-off through Python.

The hidden units are split into parts, one per thread (``bounds``: part p owns units
``bounds[p] .. bounds[p+1]``). The weight rows are permuted part-major (``part_rows``): part p's
gate rows are one contiguous block, in the cell's own gate order, so each part is a small cell
of the same kind and the fused kernels of ``_numba`` run on it unchanged. At every step each
part computes its own rows of the recurrent product (rnnkit's own product, ``_gemm.py``, where
the cores have 512-bit vectors, else single-threaded BLAS: ``own``) and then its own units' gate
arithmetic (for the float32 LSTM on the own product, both in one pass: ``_fused.py``); the
parts meet once a step, because the next step's product needs every unit of the new state: the
loop is one parallel region with one worker per part, and a worker starts its part of a step
when every part of the step before is done (``_sync.py``).
Backward is split the same way: part p's rows of ``W_hh^T da`` are the recurrent gradient of
exactly its own units, so again one meeting per step (the fused LSTM's as a
reduce-scatter instead: each part sums over its own gate rows, see ``_lstm_backward``).

Why: two-thread BLAS per product (the loop before, benchmarks/NOTES.md attempts 8-13) left the
fused kernels on one core and made the two BLAS threads meet inside every product; this loop
runs products and kernels on both cores with one barrier a step (attempt 18).

Buffers are those of ``sequence.py`` with the gate rows permuted; ``hcur`` (2, H, N) holds the
current and next hidden state contiguously for the product, ``hh`` (G*H, N) the products,
``dscr`` (2, G*H, N) the step gradients for the backward product.
"""
from numba import njit, prange

from . import _numba as K
from ._blas import TILE, gemm, transpose_band
from ._gemm import product
from ._fused import lstm_backward_part, lstm_forward_part, tail_columns
from ._dispatch import AnyLayout
from ._sync import done, next_task, start


@AnyLayout    # called from Python with views and whole arrays alike: one build (_dispatch.py)
@njit(cache=True, nogil=True, parallel=True)
def split_gemm(a, b, out, ta, tb, P, by_rows, own):
    """``out = op(a) @ op(b)`` in ``P`` blocks of ``out``'s rows (``by_rows``) or columns, one per
    thread (:func:`rnnkit.products.matmul_into`; ``op`` and ``own`` as in :func:`._blas.gemm`)."""
    M, N = out.shape
    for p in prange(P):
        # one call of gemm (whose own product is long code to compile), on either split's block
        if by_rows:
            lo, hi = p * M // P, (p + 1) * M // P
            ap, bp, cp = (a[:, lo:hi] if ta else a[lo:hi]), b[:, :], out[lo:hi]
        else:
            lo, hi = p * N // P, (p + 1) * N // P
            ap, bp, cp = a[:, :], (b[lo:hi] if tb else b[:, lo:hi]), out[:, lo:hi]
        gemm(ap, bp, cp, ta, tb, 0.0, own)


@AnyLayout    # called from Python with views and whole arrays alike: one build (_dispatch.py)
@njit(cache=True, nogil=True, parallel=True)
def gemm_three(a0, b0, c0, ta0, tb0, a1, b1, c1, ta1, tb1, a2, b2, c2, ta2, tb2, cut, own):
    """Three products on two threads (:func:`rnnkit.products.matmul_three`): thread 0 computes
    ``c0`` and ``c2``'s columns before ``cut``, thread 1 ``c1`` and the rest of ``c2``, each
    product single-threaded (``op`` and ``own`` as in :func:`._blas.gemm`)."""
    N2 = c2.shape[1]
    for p in prange(2):
        lo, hi = (0, cut) if p == 0 else (cut, N2)
        if p == 0:
            gemm(a0, b0, c0, ta0, tb0, 0.0, own)
        else:
            gemm(a1, b1, c1, ta1, tb1, 0.0, own)
        if hi > lo:
            gemm(a2, b2[lo:hi] if tb2 else b2[:, lo:hi], c2[:, lo:hi], ta2, tb2, 0.0, own)


@njit(cache=True, nogil=True)
def add_from_parts(src, dst, G, P):
    """``dst += src`` with ``src``'s rows part-major (``P`` equal parts, each ``G`` gate blocks of
    ``H / P`` rows) and ``dst``'s in the natural order (``G`` blocks of ``H`` rows): a weight
    gradient added into the module's in one pass, where its reordered copy and then the sum took
    two (benchmarks/NOTES.md, attempt 76). Each element is the same one addition."""
    H = dst.shape[0] // G
    Hp = H // P
    C = dst.shape[1]
    for p in range(P):
        for g in range(G):
            s0, d0 = (p * G + g) * Hp, g * H + p * Hp
            for i in range(Hp):
                srow, drow = src[s0 + i], dst[d0 + i]
                for j in range(C):
                    drow[j] += srow[j]


@AnyLayout    # called from Python with views and whole arrays alike: one build (_dispatch.py)
@njit(cache=True, nogil=True, parallel=True)
def transpose_into(a, out):
    """``out[...] = a.T`` by bands of 32 of ``a``'s columns (:func:`._blas.transpose_band`: float32
    by 16 x 16 blocks in registers, else 32 x 32 tiles a scalar at a time), the bands shared by
    the threads: the scalar tiles alone were 2.6x faster than NumPy's copy of a transposed view at
    (2500, 512) here, which walks one side with a stride of a whole row."""
    C = a.shape[1]
    for bj in prange((C + TILE - 1) // TILE):
        j0 = bj * TILE
        transpose_band(a, out, j0, min(C, j0 + TILE))


@njit(cache=True, nogil=True, parallel=True)
def gather_columns(T, ids, out):
    """``out[r, c] = T[r, ids[c]]``, rows shared by the threads (NumPy's ``take(axis=1)`` took 8x
    longer at (256, 65) -> (256, 2500))."""
    for r in prange(T.shape[0]):
        t, o = T[r], out[r]
        for c in range(ids.shape[0]):
            o[c] = t[ids[c]]


@njit(cache=True, nogil=True, parallel=True)
def column_sums_by_id(A, ids, out):
    """``out[r, v] = sum of A[r, c] over the columns c with ids[c] == v`` (``out`` zeroed by the
    caller), rows shared by the threads: the per-token sums of a projection's gradient
    (:mod:`rnnkit.functional.tokens`)."""
    for r in prange(A.shape[0]):
        a, o = A[r], out[r]
        for c in range(ids.shape[0]):
            o[ids[c]] += a[c]


@njit(cache=True, nogil=True, parallel=True)
def shift_rows(X, t, out, picked):
    """``out[i] = X[i] - max(X[i])`` and ``picked[i] = X[i, t[i]] - max(X[i])``, rows shared by the
    threads: softmax's shifted logits and the target's, as NumPy computes them (a NaN anywhere in
    a row makes its max NaN; :func:`rnnkit.functional.losses.cross_entropy`). NumPy's row maxima
    and subtraction took 120 us of the CharLM step's 430 us cross-entropy at (2500, 65)."""
    C = X.shape[1]
    for i in prange(X.shape[0]):
        x, o = X[i], out[i]
        m = bad = x[0]                         # bad: a NaN of the row, if it has one
        for j in range(1, C):
            v = x[j]
            if v != v:
                bad = v
            elif v > m:
                m = v
        if bad != bad:
            m = bad
        for j in range(C):
            o[j] = x[j] - m
        picked[i] = x[t[i]] - m


PAIRWISE_MAX = 128      # NumPy's PW_BLOCKSIZE: longer rows it sums in halves, recursively


@njit(cache=True, nogil=True, inline="always")
def _pairwise_sum(a, zero):
    """``a.sum()`` for ``len(a) <= PAIRWISE_MAX`` in NumPy's own order (its ``pairwise_sum``:
    eight running sums, combined as a tree, then the rest), so the same bits. Not recursive, as
    NumPy is above 128 elements: a recursive function loaded from Numba's cache crashed."""
    n = a.shape[0]
    if n < 8:
        res = zero
        for i in range(n):
            res += a[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    while i < n - n % 8:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def normalize_rows(P, total, zero):
    """``total[i] = P[i].sum()`` (NumPy's order: :func:`_pairwise_sum`, rows of at most
    ``PAIRWISE_MAX``; ``zero`` is -0.0 in the rows' dtype) and ``P[i] /= total[i]``, rows shared
    by the threads: softmax from the exponentials."""
    for i in prange(P.shape[0]):
        p = P[i]
        s = _pairwise_sum(p, zero)
        total[i] = s
        for j in range(p.shape[0]):
            p[j] = p[j] / s


@njit(cache=True, nogil=True, parallel=True)
def softmax_grad_rows(P, t, w, one, out):
    """``out[i] = P[i] * w[i]`` but ``(P[i, t[i]] - one) * w[i]`` at the target: cross-entropy's
    gradient (softmax less the one-hot target, times each row's weight), NumPy's operations in
    its order, rows shared by the threads."""
    for i in prange(P.shape[0]):
        p, o, wi = P[i], out[i], w[i]
        for j in range(p.shape[0]):
            o[j] = p[j] * wi
        o[t[i]] = (p[t[i]] - one) * wi


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "contract"})
def row_sums_into(A, r0, r1, out):
    """``out[r] = A[r].sum()`` for rows ``r0 .. r1``: a backward loop's worker sums the rows of
    its own part once every step is done (the bias gradients), on its own core, where the rows
    it wrote are, instead of one single-threaded pass over all of them after the loop."""
    for r in range(r0, r1):
        a = A[r]
        out[r] = 0
        s = out[r]
        for c in range(a.shape[0]):
            s += a[c]
        out[r] = s


@njit(cache=True, nogil=True, inline="always")
def _first_product(W, h, out, zero, own):
    """``out = W @ h``, or zeros without the product when ``zero`` (``h`` is a zero initial state):
    the same bits for finite weights, since every product ``w * 0`` is a zero and a sum of zeros
    from +0 is +0. A first step whose state was not given (the usual call) does no recurrent
    multiply-adds, 1 / L of the forward loop's."""
    if zero:
        out[:] = 0.0
    else:
        gemm(W, h, out, False, False, 0.0, own)


@njit(cache=True, nogil=True, inline="always")
def _copy_block(dst, src):
    """``dst[...] = src`` for two 2-D blocks of one shape, by loops: a slice assignment also
    compiles NumPy's shape check and its error message, which made about a seventh of a first
    run's compilation (benchmarks/NOTES.md, attempt 82)."""
    for i in range(src.shape[0]):
        d, s = dst[i], src[i]
        for j in range(src.shape[1]):
            d[j] = s[j]


@njit(cache=True, nogil=True, inline="always")
def _at(t, p, N, valid, bounds):
    """Step ``t``'s first column and valid flags, and part ``p``'s units ``u0 .. u1``."""
    return t * N, valid[t], bounds[p], bounds[p + 1]


def _lstm_forward(W, WT, A, bias, Hb, Cb, HT, valid, bounds, hcur, hh, tcs, precise, own, fused, separate, zero0,
                  fill_wt, sync):
    # ``fused`` is None or True, and ``separate`` the other (sequence._paths): a None argument's
    # branch is pruned before typing, so the float64 build never types the float32-only fused step
    # (_fused.py), and the fused build never the separate product and kernel (benchmarks/NOTES.md,
    # attempt 82). One parallel region for the
    # whole loop, a worker per part, their steps given by _sync.next_task. ``zero0``: the initial
    # state is zero, so step 0's product is zero and is not computed (see _first_product).
    # ``fill_wt``: ``WT`` is to be written, each part's columns by whoever runs the part's step 0
    L, N = valid.shape
    P = bounds.shape[0] - 1
    start(sync)
    for w in prange(P):
        t, p = next_task(sync, w, P, L, 0)
        while t < L:
            src, dst = hcur[t % 2], hcur[(t + 1) % 2]
            col, v, u0, u1 = _at(t, p, N, valid, bounds)
            if fused is not None:
                if t == 0 and fill_wt:      # the part's columns of W^T, which only its tail tiles read
                    for j0 in range(0, W.shape[1], TILE):
                        transpose_band(W[4 * u0:4 * u1], WT[:, 4 * u0:4 * u1], j0, min(W.shape[1], j0 + TILE))
                lstm_forward_part(W, WT, hcur, t % 2, A, bias, Cb, HT, v, u0, u1, col, N,
                                  0 if t == 0 and zero0 else W.shape[1])
            if separate is not None:
                r0, r1 = 4 * u0, 4 * u1
                _first_product(W[r0:r1], src, hh[r0:r1], t == 0 and zero0, own)
                K.lstm_forward_fm(hh[r0:r1], A[r0:r1], bias[r0:r1], Hb[u0:u1], Cb[u0:u1], tcs[p], v, col, N,
                                  precise)
                _copy_block(dst[u0:u1], Hb[u0:u1, col + N:col + 2 * N])
            done(sync)
            t, p = next_task(sync, w, P, L, t)


def _gru_forward(W, A, bias, b_hn, Hb, HN, valid, bounds, hcur, hh, precise, own, zero0, sync):
    L, N = valid.shape
    P = bounds.shape[0] - 1
    start(sync)
    for w in prange(P):
        t, p = next_task(sync, w, P, L, 0)
        while t < L:
            src, dst = hcur[t % 2], hcur[(t + 1) % 2]
            col, v, u0, u1 = _at(t, p, N, valid, bounds)
            r0, r1 = 3 * u0, 3 * u1
            _first_product(W[r0:r1], src, hh[r0:r1], t == 0 and zero0, own)
            K.gru_forward_fm(hh[r0:r1], A[r0:r1], bias[r0:r1], b_hn[u0:u1], Hb[u0:u1], HN[u0:u1], v, col, N, precise)
            _copy_block(dst[u0:u1], Hb[u0:u1, col + N:col + 2 * N])
            done(sync)
            t, p = next_task(sync, w, P, L, t)


def _rnn_forward(W, A, bias, Hb, valid, bounds, hcur, hh, relu, precise, own, zero0, sync):
    L, N = valid.shape
    P = bounds.shape[0] - 1
    start(sync)
    for w in prange(P):
        t, p = next_task(sync, w, P, L, 0)
        while t < L:
            src, dst = hcur[t % 2], hcur[(t + 1) % 2]
            col, v, u0, u1 = _at(t, p, N, valid, bounds)
            _first_product(W[u0:u1], src, hh[u0:u1], t == 0 and zero0, own)
            K.rnn_forward_fm(hh[u0:u1], A[u0:u1], bias[u0:u1], Hb[u0:u1], v, col, N, relu, precise)
            _copy_block(dst[u0:u1], Hb[u0:u1, col + N:col + 2 * N])
            done(sync)
            t, p = next_task(sync, w, P, L, t)


# Backward: step s of the loop is time t = L-1-s. ``dm[s % 2]`` receives W_hh^T da of the step
# after (zero at the last step; with the LSTM's exchange, the part's own rows' sums only, the
# others' arriving in ``dd``), ``dd`` and ``dc`` carry the direct and cell gradients, double
# buffered the same way; ``dscr[s % 2]`` receives step t's gradient for the next product. The
# caller finishes with W_hh^T of the last ``dscr`` (the gradient reaching the initial state).

def _lstm_backward(WT, W, A, Cb, DY, valid, bounds, dm, dd, dc, dscr, xch, xt, scatter, ths, precise, own, fused,
                   separate, dy_rows, bsum, sync):
    # dy_rows: DY is (L*N, H), read by the fused step as it is (it needs fused); workers as forward.
    # ``xch`` (2, P, H, N), or None (then the branches that use it are pruned from the build, as
    # ``separate`` is): with ``scatter`` (else the blocks may be empty: one build for any number of
    # parts) the recurrent product as a reduce-scatter. Each part sums ``W_hh^T da`` over
    # its own gate rows only, for its own units in its tiles and for every other part's units into
    # ``xch[i][p]`` (_exchange; ``xt`` (P, TAIL_MAX, H) its scratch for the batch's last columns),
    # and adds the other parts' sums for its units to its carried gradient before its next step
    # (_add_exchanged). So the gate gradients never cross between the cores, only those sums: a
    # quarter of the bytes with two parts (benchmarks/NOTES.md, attempt 85)
    L, N = valid.shape
    P = bounds.shape[0] - 1
    start(sync)
    for w in prange(P):
        s, p = next_task(sync, w, P, L, 0)
        while s < L:
            t, i, o = L - 1 - s, s % 2, (s + 1) % 2
            col, v, u0, u1 = _at(t, p, N, valid, bounds)
            r0, r1 = 4 * u0, 4 * u1
            k0, k1 = 0, dscr.shape[1]
            if xch is not None:
                if scatter:
                    k0, k1 = r0, r1
                    if s > 0:
                        _add_exchanged(xch[o], p, dd[i], u0, u1)
            if fused is not None:                  # as in _lstm_forward
                lstm_backward_part(WT, W, dscr[o], A, dscr[i], Cb, DY, dy_rows, dd[i], dc[i], dd[o], dc[o], v, u0, u1,
                                   col, N, k1 - k0 if s > 0 else 0, k0)
            if separate is not None:
                if s > 0 and xch is not None and scatter:      # (the fused path's twin, for the tests)
                    gemm(WT[u0:u1, k0:k1], dscr[o][k0:k1], dm[i][u0:u1], False, False, 0.0, own)
                elif s > 0:                         # (rows whole: the type of the build without it)
                    gemm(WT[u0:u1], dscr[o], dm[i][u0:u1], False, False, 0.0, own)
                K.lstm_backward_fm(dm[i][u0:u1], dd[i][u0:u1], DY[u0:u1], dc[i][u0:u1], A[r0:r1], Cb[u0:u1], v, col,
                                   N, dd[o][u0:u1], dc[o][u0:u1], ths[p], precise)
                _copy_block(dscr[i][r0:r1], A[r0:r1, col:col + N])
            if xch is not None and s < L - 1:     # (the last step's product is the caller's: the initial state)
                if scatter:
                    _exchange(WT, W, dscr[i], xch[i][p], xt[p], bounds, p)
            done(sync)
            s, p = next_task(sync, w, P, L, s)
        row_sums_into(A, 4 * bounds[w], 4 * bounds[w + 1], bsum)     # every step is done (next_task)


@njit(cache=True, nogil=True)
def _exchange(WT, W, D, out, T, bounds, p):
    """Part ``p``'s sums of ``W_hh^T da`` over its own gate rows of ``D`` (G*H, N) for every other
    part's units, into those units' rows of ``out`` (H, N), on the own product (the exchange runs
    with the fused step only). The batch's last columns (``tail_columns``) are the product
    ``D[rows, tail]^T @ W[rows, units]`` into ``T``, its vectors over the units, as the fused
    step's tail tiles run them: a vector for 2 of 50 columns cost as much as 16 (the same sums, in
    the same order). Strides are passed as values, never as constants, so that the calls reuse
    the product's compiled type (a literal 1 is a type of its own to Numba: 5-6 s more of a first
    run's compilation)."""
    r0, r1 = 4 * bounds[p], 4 * bounds[p + 1]
    N = D.shape[1]
    Nm = N - tail_columns(N)
    for q in range(bounds.shape[0] - 1):
        if q != p:
            q0, q1 = bounds[q], bounds[q + 1]
            a, b, c = WT[q0:q1, r0:r1], D[r0:r1, :Nm], out[q0:q1, :Nm]
            product(a, a.strides[0] // a.itemsize, a.strides[1] // a.itemsize, r1 - r0, b, c)
            if Nm < N:
                a, b, c = D[r0:r1, Nm:], W[r0:r1, q0:q1], T[:N - Nm, :q1 - q0]
                product(a, a.strides[1] // a.itemsize, a.strides[0] // a.itemsize, r1 - r0, b, c)
                for j in range(N - Nm):
                    for u in range(q1 - q0):
                        out[q0 + u, Nm + j] = c[j, u]


@njit(cache=True, nogil=True, inline="always")
def _add_exchanged(X, p, dd, u0, u1):
    """``dd[u0:u1] += X[q][u0:u1]`` for every part ``q`` but ``p``, in the parts' order: the other
    parts' sums for part ``p``'s units, added to the gradient it carries into its step."""
    for q in range(X.shape[0]):
        if q != p:
            for u in range(u0, u1):
                d, x = dd[u], X[q, u]
                for j in range(d.shape[0]):
                    d[j] += x[j]


def _gru_backward(WT, A, HN, Hb, DY, valid, bounds, dm, dd, dscr, DHN, own, bsum, nsum, sync):
    L, N = valid.shape
    P = bounds.shape[0] - 1
    start(sync)
    for w in prange(P):
        s, p = next_task(sync, w, P, L, 0)
        while s < L:
            t, i, o = L - 1 - s, s % 2, (s + 1) % 2
            col, v, u0, u1 = _at(t, p, N, valid, bounds)
            r0, r1 = 3 * u0, 3 * u1
            if s > 0:
                gemm(WT[u0:u1], dscr[o], dm[i][u0:u1], False, False, 0.0, own)
            K.gru_backward_fm(dm[i][u0:u1], dd[i][u0:u1], DY[u0:u1], A[r0:r1], HN[u0:u1], Hb[u0:u1], v, col,
                              dscr[i][r0:r1], DHN[u0:u1], dd[o][u0:u1])
            done(sync)
            s, p = next_task(sync, w, P, L, s)
        row_sums_into(A, 3 * bounds[w], 3 * bounds[w + 1], bsum)
        row_sums_into(DHN, bounds[w], bounds[w + 1], nsum)


def _rnn_backward(WT, A, DY, valid, bounds, dm, dd, dscr, relu, own, bsum, sync):
    L, N = valid.shape
    P = bounds.shape[0] - 1
    start(sync)
    for w in prange(P):
        s, p = next_task(sync, w, P, L, 0)
        while s < L:
            t, i, o = L - 1 - s, s % 2, (s + 1) % 2
            col, v, u0, u1 = _at(t, p, N, valid, bounds)
            if s > 0:
                gemm(WT[u0:u1], dscr[o], dm[i][u0:u1], False, False, 0.0, own)
            K.rnn_backward_fm(dm[i][u0:u1], dd[i][u0:u1], DY[u0:u1], A[u0:u1], v, col, relu, dd[o][u0:u1])
            _copy_block(dscr[i][u0:u1], A[u0:u1, col:col + N])
            done(sync)
            s, p = next_task(sync, w, P, L, s)
        row_sums_into(A, bounds[w], bounds[w + 1], bsum)


# Each loop is compiled once, across the threads, and serves every number of parts: at one thread
# it runs as fast as a serial build of the same function (attempt 28). A serial build beside it
# shared its entry in Numba's on-disk cache, which keys entries by name, line and bytecode, not
# by flags, so a process ran whichever build an earlier process had written.
LOOPS = {name: njit(cache=True, nogil=True, parallel=True)(f) for name, f in (
    ("lstm_forward", _lstm_forward), ("gru_forward", _gru_forward), ("rnn_forward", _rnn_forward),
    ("lstm_backward", _lstm_backward), ("gru_backward", _gru_backward), ("rnn_backward", _rnn_backward))}

