"""The fast time loop of one direction of one layer: feature-major buffers allocated once per
sequence, the whole loop in one compiled function (``_parallel.py``), fused Numba kernels for
everything elementwise. A drop-in replacement for :func:`rnnkit.functional.recurrent.layer_forward`
/ ``layer_backward`` without the reversal (same arguments, same results), tested against them in
float32 and float64.

Layout: every buffer has one row per feature and one column per (step, sequence), column
``t*N + n``. The whole input projection is one product ``W_ih @ X^T`` (G*H, L*N); per step the
recurrent product is ``W_hh @ h_t`` (G*H, N), BLAS's fastest orientation for a tall weight and a
50-column right operand on this machine (benchmarks/NOTES.md, attempt 8). The weight gradients
are one product each over all L*N columns.

The hidden units are split into parts, one per thread (:func:`_parts`), and the gate rows of the
weights, the projection and the biases are permuted part-major, so that each part's rows are one
block: each thread computes its own rows of every step's product and its own units' gates, and
the threads meet once a step (``_parallel.py``; attempt 18). The permutation is undone where the
rows leave: the weight and bias gradients, and ``FastSteps``'s per-step views.

Kept for backward, reusing buffers: the projection becomes the gate activations (forward) and
then their gradients (backward); hidden states (H, (L+1)*N), or for the fused float32 LSTM in
rows, ((L+1)*N, H) (``HT``: the weight gradient, the next layer and the output read them without
a transposing copy; ``_fused.py``; rows of a multiple of 512 bytes lie ``ROW_PAD`` elements
further apart); for the LSTM cell states (H, (L+1)*N) (backward recomputes ``tanh(c)`` from them
rather than keeping it), for the GRU ``W_hn h + b_hn`` (H, L*N). ``FastSteps`` presents them per
step in the reference caches' form (``steps[t].gates`` as (N, G*H) arrays ...), so diagnostics
and the recording backward read either path alike.
"""
from __future__ import annotations

import functools

import numpy as np

from ..functional.gru import GRUCache
from ..functional.lstm import LSTMCache
from ..functional.rnn import RNNCache
from ..functional.tokens import TableGrad, TokenInput
from . import _numba as K  # noqa: F401  (Stream reads the step kernels through this module)
from ..products import MIN_ROWS, contiguous, matmul_into, matmul_three, own_product
from ..threads import num_threads
from . import _parallel as P
from ._fused import TAIL_MAX, tail_columns
from ._gemm import ALIASING_BYTES
from ._sync import counters

MIN_UNITS = 8         # hidden units per part of the time loop, at least
# the states' rows (HT) lie H + ROW_PAD elements apart where H elements are a multiple of _gemm's
# ALIASING_BYTES (H = 128, 256, 512 in float32): such rows made the weight gradients' products copy
# ("pack") them first (kernels/_gemm.py), and dW_hh at H=128 ran at 394-418 GFLOP/s against
# 458-486 read in place from padded rows (benchmarks/NOTES.md, attempt 52). Other rows
# stay H apart (a padded view made the module's output copy, before attempt 71, a strided one: +8 us at H=64).
# 16 float32 elements, one cache line, and the buffer starting on a line (line_aligned): every row
# then starts on a line, and at H = 64, 128 and 256 so does each part's share of a row, which the
# two cores write at the same step (attempt 57)
ROW_PAD = 16


class FastSteps:
    """Buffers of one direction of one layer, indexable per step like a list of step caches."""

    def __init__(self, kind, N, A, Hb, valid, Cb=None, HN=None, perm=None, parts=1, HT=None, weights=None):
        self.kind, self.N, self.A, self.Hb, self.valid = kind, N, A, Hb, valid
        self.Cb, self.HN, self.perm, self.parts, self.HT = Cb, HN, perm, parts, HT
        # (W_ih, W_hh, W_hh^T or None) with the gate rows part-major, as the forward used them:
        # the backward differentiates those (as PyTorch's saved tensors), without permuting again
        self.weights = weights

    def layer_backward(self, ops, dy, dstate, x, W_ih, W_hh, skip=(), into=None):
        """This loop's own backward (see :func:`layer_backward`)."""
        return layer_backward(ops, dy, dstate, x, self, W_ih, W_hh, skip, into)

    def __len__(self):
        return self.A.shape[1] // self.N

    def _at(self, buf, t):
        return buf[:, t * self.N:(t + 1) * self.N].T   # (N, rows) view of step t

    def _gates(self, t):
        """Step t's gate activations (N, G*H) in the cell's gate order (the buffer's rows are part-major)."""
        a = self._at(self.A, t)
        return a if self.perm is None else a[:, np.argsort(self.perm)]

    def _state(self, t):
        """The state entering step t, (N, H)."""
        return self._at(self.Hb, t) if self.HT is None else self.HT[t * self.N:(t + 1) * self.N]

    def __getitem__(self, t):
        if self.kind == "lstm":
            return LSTMCache(self._state(t), self._at(self.Cb, t), self._gates(t), np.tanh(self._at(self.Cb, t + 1)))
        if self.kind == "gru":
            return GRUCache(self._at(self.Hb, t), self._gates(t), self._at(self.HN, t))
        return RNNCache(self._at(self.Hb, t), self._gates(t))



def line_aligned(shape, dt):
    """``np.empty(shape, dt)`` (2-D) starting on a 64-byte boundary (a cache line here): a row or
    a few more, the view starting where the line does. (A byte buffer 64 bytes longer took 10-30
    us to allocate inside the training step, this 1-5.)"""
    R, C = shape
    itemsize = np.dtype(dt).itemsize
    raw = np.empty((R + -(-64 // max(1, C * itemsize)), C), dt)
    at = -raw.__array_interface__["data"][0] % 64 // itemsize
    return raw.reshape(-1)[at:at + R * C].reshape(R, C)


def _paths(fused):
    """The LSTM loops' ``(fused, separate)``: exactly one of them True, the other None, so that
    Numba prunes the other path from the build (``_parallel._lstm_forward``); any other pair would
    run both steps on the same buffers, or neither."""
    return (True, None) if fused else (None, True)


def _zero_state(h0) -> bool:
    """Whether the initial hidden state is zero (as when none was given): the loops then skip step
    0's recurrent product, whose sums would all be zero (``_parallel._first_product``)."""
    return not h0.any()


def _steps_view(buf, L, N):
    """(rows, L*N) feature-major columns as an (L, N, rows) view, no copy."""
    return buf[:, : L * N].T.reshape(L, N, buf.shape[0])


def _state_block(buf, t, N):
    return buf[:, t * N:(t + 1) * N].T        # (N, H) view of column block t


def _parts(H, G):
    """Unit bounds of the parts (one per Numba thread, at least MIN_UNITS units each) and the
    part-major permutation of the G*H gate rows: row r of the permuted weights is row perm[r]."""
    P = max(1, min(num_threads(), H // MIN_UNITS))
    return _parts_of(H, G, P)


@functools.lru_cache(maxsize=64)
def _parts_of(H, G, P):
    bounds = np.array([p * H // P for p in range(P + 1)], np.int64)
    perm = np.concatenate([np.arange(g * H + bounds[p], g * H + bounds[p + 1]) for p in range(P) for g in range(G)])
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size)
    return bounds, perm, inv


def _reordered(a, index, G, P, to_parts):
    """``a[index]``, ``index`` the part-major permutation of ``a``'s ``G`` blocks of rows
    (:func:`_parts_of` with ``P`` parts; ``to_parts``) or its inverse: where the parts are equal,
    one copy of a view with each part's gate blocks side by side, which took a third to a half
    of the index's time (benchmarks/NOTES.md, attempt 63)."""
    H = a.shape[0] // G
    if H % P or a.ndim == 1:        # (a vector: the index is cheaper than the copy of a view)
        return a.take(index, axis=0)
    blocks = (G, P, H // P) if to_parts else (P, G, H // P)
    return np.array(a.reshape(blocks + a.shape[1:]).swapaxes(0, 1)).reshape(a.shape)   # a copy, as a[index]


def layer_forward(ops, x, state0, W_ih, W_hh, b_ih=None, b_hh=None, mask=None):
    """Returns ``(y, state, h_prev, steps)``: ``y`` and ``h_prev`` are (L, N, H) views of the
    hidden-state buffer (the next layer reads ``y`` without a copy), ``state`` holds copies."""
    L, N, I = x.shape
    GH, H = W_hh.shape
    dt = x.dtype
    kind = "rnn" if ops.name.startswith("rnn") else ops.name
    own = own_product()
    bounds, perm, inv = _parts(H, GH // H)
    parts = len(bounds) - 1
    A = np.empty((GH, L * N), dt)
    Wih = _reordered(W_ih, perm, GH // H, parts, True)
    if isinstance(x, TokenInput):                               # the projection of each token, gathered
        per_token = np.empty((GH, x.table.shape[0]), dt)
        matmul_into(Wih, x.table.T, per_token)                 # (G*H, H_in) @ (H_in, V)
        P.gather_columns(per_token, x.ids.reshape(-1), A)
    else:
        # (G*H, H_in) @ (H_in, L*N), split by rows when that gives a block per part: each thread
        # then computes the rows its part of the loop reads (exactly, when the parts divide H),
        # which stay in its core's caches (benchmarks/NOTES.md, attempt 56)
        matmul_into(Wih, x.reshape(L * N, I).T, A, by_rows=True if GH // MIN_ROWS >= parts else None)
    bias = np.zeros(GH, dt) if b_ih is None else b_ih.copy()
    b_hn = np.zeros(H, dt)
    if b_hh is not None:
        if kind == "gru":
            bias[: 2 * H] += b_hh[: 2 * H]
            b_hn = np.ascontiguousarray(b_hh[2 * H:])           # stays inside the reset gate's product
        else:
            bias += b_hh
    bias = _reordered(bias, perm, GH // H, parts, True)
    valid = np.ones((L, N), np.bool_) if mask is None else np.ascontiguousarray(mask[:, :, 0] != 0)  # any dtype
    precise = dt == np.float64
    # the float32 LSTM on the own product: the gates inside the product's tiles (_fused.py), which
    # keep the states in rows (HT, ((L+1)*N, H)) instead of by features (Hb): dW_hh, the next
    # layer and the output read them without a transposing copy. At every H: a Zen 5 machine had
    # put the fused forward loop 2-3% behind the separate one from H=192 (4-row tiles, not 6), but
    # on the Zen 4 machine the fused step was 5-12% shorter at H = 192-512 (benchmarks/NOTES.md,
    # attempts 36 and 99)
    fused = True if kind == "lstm" and own and dt == np.float32 else None
    if fused:
        pad = ROW_PAD if H * np.dtype(dt).itemsize % ALIASING_BYTES == 0 else 0
        rows = line_aligned(((L + 1) * N, H + pad), dt)        # the loop writes HT through its strides
        HT = rows[:, :H]
        HT[:N] = state0[0]
        Hb = np.empty((H, 0), dt)
    else:
        HT = None
        Hb = np.empty((H, (L + 1) * N), dt)
        Hb[:, :N] = state0[0].T
    hcur = np.empty((2, H, N), dt)
    hcur[0] = state0[0].T
    hh = np.empty((GH, N), dt)
    W = _reordered(W_hh, perm, GH // H, parts, True)
    WT = None
    Cb = HN = None
    sync = counters(parts)
    zero0 = _zero_state(state0[0])              # step 0's recurrent product is zero: not computed
    if kind == "lstm":
        Cb = np.empty((H, (L + 1) * N), dt)
        Cb[:, :N] = state0[1].T
        # the fused step's tail tiles read the weights transposed (_fused.py, tail_columns), each
        # part its own columns, which it writes at its first step (_parallel._lstm_forward)
        WT = np.empty((H, GH), dt) if fused and tail_columns(N) else None
        none = np.empty((0, 0), dt)
        P.LOOPS["lstm_forward"](W, none if WT is None else WT, A, bias, Hb, Cb, none if HT is None else rows, valid,
                                bounds, hcur, hh, np.empty((parts, N), dt), precise, own, *_paths(fused), zero0,
                                WT is not None, sync)
    elif kind == "gru":
        HN = np.empty((H, L * N), dt)
        P.LOOPS["gru_forward"](W, A, bias, b_hn, Hb, HN, valid, bounds, hcur, hh, precise, own, zero0, sync)
    else:
        P.LOOPS["rnn_forward"](W, A, bias, Hb, valid, bounds, hcur, hh, ops.name == "rnn_relu", precise, own,
                                zero0, sync)
    steps = FastSteps(kind, N, A, Hb, valid, Cb=Cb, HN=HN, perm=perm, parts=parts, HT=HT,
                      weights=(Wih, W, WT))
    last = HT[L * N:].copy() if fused else _state_block(Hb, L, N).copy()
    state = (last,) + ((_state_block(Cb, L, N).copy(),) if kind == "lstm" else ())
    if HT is not None:                                          # (L, N, H) views of the rows
        y, h_prev = HT[N:].reshape(L, N, H), HT[:L * N].reshape(L, N, H)
    else:
        y, h_prev = Hb[:, N:].T.reshape(L, N, H), _steps_view(Hb, L, N)
    if mask is not None:
        y = y * mask                                            # outputs at padded steps are zero
    return y, state, h_prev, steps


layer_forward.takes_tokens = True      # x may be a TokenInput (functional/tokens.py)


def layer_backward(ops, dy, dstate, x, steps: FastSteps, W_ih, W_hh, skip=(), into=None):
    """Returns ``(dx, dstate0, grads)`` as the reference ``layer_backward`` (without reversal);
    the weight-gradient products named in ``skip`` (``"W_ih"``, ``"W_hh"``: frozen weights) are not computed,
    nor, with ``"state0"`` there, the gradient reaching the initial state (``dstate0`` is then
    empty: a (G*H, N) product at each layer that a module without a given state throws away).
    ``into`` (optional) maps ``"W_ih"`` / ``"W_hh"`` to arrays of the weights' shapes: where the
    products run side by side (the LSTM and the RNN, nothing frozen) those gradients are added
    into them, in one pass from the parts' row order, and left out of ``grads``.
    The gradients are written over the cached activations, so the cache is spent: one backward
    per forward, which the modules enforce anyway."""
    L, N, H = dy.shape
    GH = W_hh.shape[0]
    G = GH // H
    dt = dy.dtype
    A, Hb, valid = steps.A, steps.Hb, steps.valid
    bounds, _, inv = _parts_of(H, G, steps.parts)
    gru, lstm = steps.kind == "gru", steps.kind == "lstm"
    own = own_product()
    fused = True if lstm and own and dt == np.float32 else None
    rows = dy.reshape(L * N, H)
    # (H, L*N); no copy when dy is the (H, L*N) input gradient of the layer above, transposed. The
    # fused LSTM step reads a C-contiguous (L*N, H) gradient as it is (gathers), not transposed
    dy_rows = fused is not None and rows.flags.c_contiguous
    DY = rows if dy_rows else contiguous(rows.T)
    Wih, W, WT = steps.weights                   # (G*H, H_in), (G*H, H): permuted rows
    if WT is None:
        WT = contiguous(W.T)                     # (H, G*H), permuted columns
    dm, dd, dscr = np.zeros((2, H, N), dt), np.empty((2, H, N), dt), np.empty((2, GH, N), dt)
    dd[0] = dstate[0].T
    sync = counters(steps.parts)
    bsum = np.empty(GH, dt)                                    # the bias gradient, rows part-major
    if lstm:
        dc = np.empty((2, H, N), dt)
        dc[0] = dstate[1].T
        # the other parts' sums for each part's units: the reduce-scatter of the fused step
        # (_parallel._lstm_backward; benchmarks/NOTES.md, attempts 85, 95 and 96). The fused step
        # always passes the blocks, empty with one part, so that one build serves every thread
        # count: ``auto`` threads (the demo) moved from two to one and compiled a second build
        # mid-run (20 s). The separate path passes None (that build has none of it); it can run
        # the exchange too (the own product), for the tests
        scatter = fused is not None and steps.parts > 1
        xch = xt = None
        if fused:
            xch = np.empty((2, steps.parts, H, N) if scatter else (2, 1, 0, 0), dt)
            xt = np.empty((steps.parts, TAIL_MAX, H) if scatter else (1, 0, 0), dt)
        P.LOOPS["lstm_backward"](WT, W, A, steps.Cb, DY, valid, bounds, dm, dd, dc, dscr, xch, xt, scatter,
                                 np.empty((steps.parts, N), dt), dt == np.float64, own, *_paths(fused), dy_rows, bsum,
                                 sync)
    elif gru:
        DHN = np.empty((H, L * N), dt)                         # the GRU's n block of dW_hh's gradient
        nsum = np.empty(H, dt)
        P.LOOPS["gru_backward"](WT, A, steps.HN, Hb, DY, valid, bounds, dm, dd, dscr, DHN, own, bsum, nsum, sync)
    else:
        P.LOOPS["rnn_backward"](WT, A, DY, valid, bounds, dm, dd, dscr, ops.name == "rnn_relu", own, bsum, sync)
    frozen = tuple(k for k in skip if k != "state0")            # the weights' products left out
    if "state0" in skip:
        dstate0 = ()
    else:                                                      # W_hh^T da of step 0: reaches the initial state
        dmat = np.empty((H, N), dt)
        matmul_into(WT, dscr[(L - 1) % 2], dmat)
        dh0 = dmat + dd[L % 2]
        dstate0 = (np.ascontiguousarray(dh0.T),) + ((np.ascontiguousarray(dc[L % 2].T),) if lstm else ())
    # (L*N, H) for dW_hh: the fused LSTM's state rows as they are; the feature-major states
    # transposed once here (on the threads), not by each product that reads them
    Hprev = None
    if "W_hh" not in frozen:
        Hprev = contiguous(Hb[:, : L * N].T) if steps.HT is None else steps.HT[: L * N]
    grads = {"b_ih": _reordered(bsum, inv, G, steps.parts, False)}
    tokens = isinstance(x, TokenInput)
    if tokens:                                                 # the input's gradients per token first
        V = x.table.shape[0]
        per_token = np.zeros((GH, V), dt)
        P.column_sums_by_id(A, x.ids.reshape(-1), per_token)
        src, X = per_token, x.table                            # (G*H, V), (V, H_in)
    else:
        src, X = A, x.reshape(L * N, -1)                       # (G*H, L*N), (L*N, H_in)
    dxT = np.empty((x.shape[-1], src.shape[1]), dt)              # (H_in, L*N or V)
    if gru or frozen:       # one product at a time: the GRU's n block, frozen weights' products left out
        if "W_ih" not in frozen:
            grads["W_ih"] = _product(src, X, inv, G, steps.parts)   # (G*H, L*N or V) @ (L*N or V, H_in)
        if "W_hh" not in frozen:
            grads["W_hh"] = _gru_w_hh(A, DHN, Hprev, bounds) if gru else _product(A, Hprev, inv, G, steps.parts)
        matmul_into(Wih.T, src, dxT)                                # (H_in, G*H) @ (G*H, L*N or V)
    else:                   # the three products side by side (products.matmul_three)
        g_hh, g_ih = np.empty((GH, H), dt), np.empty((GH, X.shape[1]), dt)
        matmul_three((A, Hprev, g_hh), (src, X, g_ih), (Wih.T, src, dxT))
        for name, g in (("W_ih", g_ih), ("W_hh", g_hh)):
            dst = (into or {}).get(name)
            if dst is not None and H % steps.parts == 0:
                P.add_from_parts(g, dst, G, steps.parts)
            else:
                grads[name] = _reordered(g, inv, G, steps.parts, False)
    grads["b_hh"] = np.concatenate([grads["b_ih"][: 2 * H], nsum]) if gru else grads["b_ih"].copy()
    dx = TableGrad(dxT.T) if tokens else dxT.T.reshape(L, N, -1)
    return dx, dstate0, grads


def _gru_w_hh(A, DHN, Hprev, bounds):
    """The GRU's ``dW_hh`` (3H, H) in the natural row order: rows r and z from the gate gradients
    ``A`` (each part's r and z rows, part-major), rows n from ``DHN`` (H, L*N), each times
    ``Hprev`` (L*N, H). The n rows of ``A @ Hprev``, which a product of all of ``A`` computed and
    ``DHN``'s then replaced, are left out; with two parts the three products run side by side
    (:func:`~rnnkit.products.matmul_three`: each part's r and z rows whole on a thread, the n rows
    split; benchmarks/NOTES.md, attempt 66)."""
    H = Hprev.shape[1]
    g = np.empty((3 * H, H), A.dtype)
    parts = len(bounds) - 1
    jobs = []
    for p in range(parts):
        u0, Hp = bounds[p], bounds[p + 1] - bounds[p]
        jobs.append((A[3 * u0:3 * u0 + 2 * Hp], Hprev, np.empty((2 * Hp, H), A.dtype)))
    n_rows = (DHN, Hprev, g[2 * H:])
    if parts == 2:
        matmul_three(jobs[0], jobs[1], n_rows)
    else:
        for job in jobs + [n_rows]:
            matmul_into(*job)
    for p, (_, _, rz) in enumerate(jobs):
        u0, u1 = bounds[p], bounds[p + 1]
        g[u0:u1], g[H + u0:H + u1] = rz[:u1 - u0], rz[u1 - u0:]
    return g


def _product(A, B, inv, G, P):
    """``A @ B`` for A with part-major rows (``G`` gate blocks, ``P`` parts), returned in the
    natural row order."""
    out = np.empty((A.shape[0], B.shape[1]), A.dtype)
    matmul_into(A, B, out)
    return _reordered(out, inv, G, P, False)
