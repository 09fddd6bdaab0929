"""The fast time loop of one direction of one layer: feature-major buffers allocated once per
sequence, BLAS for the products, fused Numba kernels for everything elementwise. A drop-in
replacement for :func:`rnnkit.functional.recurrent.layer_forward` / ``layer_backward`` without
the reversal (same arguments, same results), tested against them in float32 and float64.

Layout: every buffer has one row per feature and one column per (step, sequence), column
``t*N + n``. The whole input projection is one product ``W_ih @ X^T`` (G*H, L*N); per step the
recurrent product is ``W_hh @ h_t`` (G*H, N), BLAS's fastest orientation for a tall weight and a
50-column right operand on this machine (benchmarks/NOTES.md, attempt 8). The weight gradients
are one product each over all L*N columns.

Kept for backward, reusing buffers: the projection becomes the gate activations (forward) and
then their gradients (backward); hidden states (H, (L+1)*N), and for the LSTM cell states (same
shape; backward recomputes ``tanh(c)`` from them rather than keeping it), for the GRU
``W_hn h + b_hn`` (H, L*N). ``FastSteps`` presents
them per step in the reference caches' form (``steps[t].gates`` as (N, G*H) views ...), so
diagnostics and the recording backward read either path alike.
"""
from __future__ import annotations

import numpy as np

from ..functional.gru import GRUCache
from ..functional.lstm import LSTMCache
from ..functional.rnn import RNNCache
from ..threads import batch_parts, run_parts
from . import _numba as K


class FastSteps:
    """Buffers of one direction of one layer, indexable per step like a list of step caches."""

    def __init__(self, kind, N, A, Hb, valid, Cb=None, HN=None):
        self.kind, self.N, self.A, self.Hb, self.valid = kind, N, A, Hb, valid
        self.Cb, self.HN = Cb, HN

    def layer_backward(self, ops, dy, dstate, x, W_ih, W_hh, skip=()):
        """This loop's own backward (see :func:`layer_backward`)."""
        return layer_backward(ops, dy, dstate, x, self, W_ih, W_hh, skip)

    def __len__(self):
        return self.A.shape[1] // self.N

    def _at(self, buf, t):
        return buf[:, t * self.N:(t + 1) * self.N].T   # (N, rows) view of step t

    def __getitem__(self, t):
        if self.kind == "lstm":
            return LSTMCache(self._at(self.Hb, t), self._at(self.Cb, t), self._at(self.A, t), np.tanh(self._at(self.Cb, t + 1)))
        if self.kind == "gru":
            return GRUCache(self._at(self.Hb, t), self._at(self.A, t), self._at(self.HN, t))
        return RNNCache(self._at(self.Hb, t), self._at(self.A, t))


def _steps_view(buf, L, N):
    """(rows, L*N) feature-major columns as an (L, N, rows) view, no copy."""
    return buf[:, : L * N].T.reshape(L, N, buf.shape[0])


def _state_block(buf, t, N):
    return buf[:, t * N:(t + 1) * N].T        # (N, H) view of column block t


def layer_forward(ops, x, state0, W_ih, W_hh, b_ih=None, b_hh=None, mask=None):
    """Returns ``(y, state, h_prev, steps)``: ``y`` and ``h_prev`` are (L, N, H) views of the
    hidden-state buffer (the next layer reads ``y`` without a copy), ``state`` holds copies."""
    L, N, I = x.shape
    GH, H = W_hh.shape
    dt = x.dtype
    kind = "rnn" if ops.name.startswith("rnn") else ops.name
    A = np.empty((GH, L * N), dt)
    np.matmul(W_ih, x.reshape(L * N, I).T, out=A)          # (G*H, H_in) @ (H_in, L*N)
    bias = np.zeros(GH, dt) if b_ih is None else b_ih.copy()
    b_hn = np.zeros(H, dt)
    if b_hh is not None:
        if kind == "gru":
            bias[: 2 * H] += b_hh[: 2 * H]
            b_hn = b_hh[2 * H:]                                 # stays inside the reset gate's product
        else:
            bias += b_hh
    valid = np.ones((L, N), np.bool_) if mask is None else np.ascontiguousarray(mask[:, :, 0])
    precise = dt == np.float64
    Hb = np.empty((H, (L + 1) * N), dt)
    Hb[:, :N] = state0[0].T
    Cb = np.empty((H, (L + 1) * N), dt) if kind == "lstm" else None
    if kind == "lstm":
        Cb[:, :N] = state0[1].T
    HN = np.empty((H, L * N), dt) if kind == "gru" else None
    relu = ops.name == "rnn_relu"

    def loop(lo, hi):
        n = hi - lo
        hh, scratch = np.empty((GH, n), dt), np.empty(n, dt)
        for t in range(L):
            col, v = t * N + lo, valid[t, lo:hi]
            np.matmul(W_hh, Hb[:, col:col + n], out=hh)                 # (G*H, H) @ (H, n)
            if kind == "lstm":
                K.lstm_forward_fm(hh, A, bias, Hb, Cb, scratch, v, col, N, precise)
            elif kind == "gru":
                K.gru_forward_fm(hh, A, bias, b_hn, Hb, HN, v, col, N, precise)
            else:
                K.rnn_forward_fm(hh, A, bias, Hb, v, col, N, relu, precise)
    run_parts(loop, batch_parts(N))
    steps = FastSteps(kind, N, A, Hb, valid, Cb=Cb, HN=HN)
    state = (_state_block(Hb, L, N).copy(),) + ((_state_block(Cb, L, N).copy(),) if kind == "lstm" else ())
    y = Hb[:, N:].T.reshape(L, N, H)
    if mask is not None:
        y = y * mask                                            # outputs at padded steps are zero
    return y, state, _steps_view(Hb, L, N), steps


def layer_backward(ops, dy, dstate, x, steps: FastSteps, W_ih, W_hh, skip=()):
    """Returns ``(dx, dstate0, grads)`` as the reference ``layer_backward`` (without reversal);
    the weight-gradient products named in ``skip`` (``"W_ih"``, ``"W_hh"``: frozen weights) are not computed.
    The gradients are written over the cached activations, so the cache is spent: one backward
    per forward, which the modules enforce anyway."""
    L, N, H = dy.shape
    GH = W_hh.shape[0]
    dt = dy.dtype
    A, Hb, valid = steps.A, steps.Hb, steps.valid
    DY = np.ascontiguousarray(dy.reshape(L * N, H).T)          # (H, L*N)
    W_hhT = np.ascontiguousarray(W_hh.T)                       # (H, G*H): BLAS's fast orientation
    gru, lstm = steps.kind == "gru", steps.kind == "lstm"
    DHN = np.empty((H, L * N), dt) if gru else None      # the GRU's n block of dW_hh's gradient
    relu, precise = ops.name == "rnn_relu", dt == np.float64
    # the recurrent gradient leaving step 0, in two parts (see the kernels), and the cell state's
    dmat, ddir = np.zeros((H, N), dt), np.empty((H, N), dt)
    dc0 = np.empty((H, N), dt) if lstm else None

    def loop(lo, hi):
        n = hi - lo
        DS = np.empty((GH, n), dt) if gru else None      # the GRU's step gradient of W_hh h + b_hh
        dm, dm2 = np.zeros((H, n), dt), np.empty((H, n), dt)
        # copies, always: the kernels write into them
        dd, dd2 = np.array(dstate[0][lo:hi].T, dtype=dt, order="C"), np.empty((H, n), dt)
        if lstm:
            dc, dc2, scratch = np.array(dstate[1][lo:hi].T, dtype=dt, order="C"), np.empty((H, n), dt), np.empty(n, dt)
        for t in range(L - 1, -1, -1):
            col, v = t * N + lo, valid[t, lo:hi]
            if lstm:
                K.lstm_backward_fm(dm, dd, DY, dc, A, steps.Cb, v, col, N, dd2, dc2, scratch, precise)
                dc, dc2 = dc2, dc
            elif gru:
                K.gru_backward_fm(dm, dd, DY, A, steps.HN, Hb, v, col, DS, DHN, dd2)
            else:
                K.rnn_backward_fm(dm, dd, DY, A, v, col, relu, dd2)
            np.matmul(W_hhT, DS if gru else A[:, col:col + n], out=dm2)  # (H, G*H) @ (G*H, n)
            dm, dm2, dd, dd2 = dm2, dm, dd2, dd
        dmat[:, lo:hi], ddir[:, lo:hi] = dm, dd
        if lstm:
            dc0[:, lo:hi] = dc
    run_parts(loop, batch_parts(N))
    X, Hprev = x.reshape(L * N, -1), Hb[:, : L * N].T
    grads = {"b_ih": A.sum(axis=1)}
    if "W_ih" not in skip:
        grads["W_ih"] = A @ X                            # (G*H, L*N) @ (L*N, H_in)
    if gru:                                              # rows r, z as the projection's, n from DHN
        if "W_hh" not in skip:
            grads["W_hh"] = np.concatenate([A[: 2 * H] @ Hprev, DHN @ Hprev])
        grads["b_hh"] = np.concatenate([grads["b_ih"][: 2 * H], DHN.sum(axis=1)])
    else:
        if "W_hh" not in skip:
            grads["W_hh"] = A @ Hprev                    # (G*H, L*N) @ (L*N, H)
        grads["b_hh"] = grads["b_ih"].copy()
    dx = (A.T @ W_ih).reshape(L, N, -1)         # (L*N, G*H) @ (G*H, H_in)
    dstate0 = tuple(np.ascontiguousarray(d.T) for d in ((dmat + ddir, dc0) if lstm else (dmat + ddir,)))
    return dx, dstate0, grads
