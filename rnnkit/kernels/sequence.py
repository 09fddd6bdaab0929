"""The fast time loop: preallocated sequence buffers, BLAS for ``h W_hh^T``, fused Numba kernels
for everything elementwise. A drop-in replacement for
:func:`rnnkit.functional.recurrent.sequence_forward` / ``sequence_backward`` (same arguments,
same results), tested against them in float32 and float64.

What backward needs is kept as whole-sequence buffers, and buffers are reused: the input
projection becomes the gate activations in forward, and the activations become their own
gradients in backward. Kept: gate activations (L, N, G*H), hidden
states (L+1, N, H), and for the LSTM cell states (L+1, N, H) and ``tanh(c)`` (L, N, H), for the
GRU ``W_hn h + b_hn`` (L, N, H). ``FastSteps`` presents them per step in the reference caches'
form (``steps[t].gates`` ...), so diagnostics read either path alike.
"""
from __future__ import annotations

import numpy as np

from ..functional.gru import GRUCache
from ..functional.lstm import LSTMCache
from ..functional.rnn import RNNCache
from . import _numba as K


class FastSteps:
    """Buffers of one direction of one layer, indexable per step like a list of step caches."""

    def __init__(self, kind, a, h, valid, c=None, tc=None, hn=None):
        self.kind, self.a, self.h, self.valid, self.c, self.tc, self.hn = kind, a, h, valid, c, tc, hn

    def __len__(self):
        return self.a.shape[0]

    def __getitem__(self, t):
        if self.kind == "lstm":
            return LSTMCache(self.h[t], self.c[t], self.a[t], self.tc[t])
        if self.kind == "gru":
            return GRUCache(self.h[t], self.a[t], self.hn[t])
        return RNNCache(self.h[t], self.a[t])


def _valid(mask, L, N):
    return np.ones((L, N), dtype=np.bool_) if mask is None else np.ascontiguousarray(mask[:, :, 0])


def sequence_forward(ops, x_proj, state0, W_hh, b_hh=None, mask=None):
    """Same contract as the reference: returns ``(y, state, h_prev, steps)``. ``x_proj`` is
    modified in place (the foldable recurrent biases are added to it)."""
    L, N, GH = x_proj.shape
    H = W_hh.shape[1]
    dt = x_proj.dtype
    kind = "rnn" if ops.name.startswith("rnn") else ops.name
    if b_hh is not None:
        if kind == "gru":
            x_proj[:, :, : 2 * H] += b_hh[: 2 * H]
        else:
            x_proj += b_hh
    valid = _valid(mask, L, N)
    precise = dt == np.float64
    a = x_proj                            # the kernels overwrite the projection with the activations
    hh = np.empty((N, GH), dt)            # h W_hh^T of the current step
    h = np.empty((L + 1, N, H), dt)       # h[t]: state entering step t
    h[0] = state0[0]
    y = h[1:] if mask is None else np.empty((L, N, H), dt)
    W_hhT = W_hh.T                        # (H, G*H) view
    if kind == "lstm":
        c = np.empty((L + 1, N, H), dt)
        c[0] = state0[1]
        tc = np.empty((L, N, H), dt)
        for t in range(L):
            np.matmul(h[t], W_hhT, out=hh)    # (N, H) @ (H, 4H) -> (N, 4H)
            K.lstm_forward_step(hh, a[t], c[t], h[t], valid[t], c[t + 1], tc[t], h[t + 1], y[t], precise)
        return y, (h[L], c[L]), h[:L], FastSteps(kind, a, h, valid, c=c, tc=tc)
    if kind == "gru":
        hn = np.empty((L, N, H), dt)
        b_hn = b_hh[2 * H:] if b_hh is not None else np.zeros(H, dt)
        for t in range(L):
            np.matmul(h[t], W_hhT, out=hh)    # (N, H) @ (H, 3H) -> (N, 3H)
            K.gru_forward_step(hh, a[t], b_hn, h[t], valid[t], hn[t], h[t + 1], y[t], precise)
        return y, (h[L],), h[:L], FastSteps(kind, a, h, valid, hn=hn)
    relu = ops.name == "rnn_relu"
    for t in range(L):
        np.matmul(h[t], W_hhT, out=hh)        # (N, H) @ (H, H) -> (N, H)
        K.rnn_forward_step(hh, a[t], h[t], valid[t], relu, h[t + 1], y[t], precise)
    return y, (h[L],), h[:L], FastSteps(kind, a, h, valid)


def sequence_backward(ops, dy, dstate, steps: FastSteps, W_hh, mask=None):
    """Same contract as the reference: returns ``(dx_proj, dhh, dstate0)``. The gradients are
    written over the cached activations (``dx_proj`` is the activation buffer), so the cache is
    spent: one backward per forward, which the modules enforce anyway."""
    L, N, H = dy.shape
    GH = W_hh.shape[0]
    dt = dy.dtype
    a, valid = steps.a, steps.valid
    dx = a
    dhh = np.empty((L, N, GH), dt) if steps.kind == "gru" else dx
    dmat, dmat2 = np.zeros((N, H), dt), np.empty((N, H), dt)
    ddir, ddir2 = np.array(dstate[0], dtype=dt, copy=True), np.empty((N, H), dt)
    if steps.kind == "lstm":
        dc, dc2 = np.array(dstate[1], dtype=dt, copy=True), np.empty((N, H), dt)
        for t in range(L - 1, -1, -1):
            K.lstm_backward_step(dmat, ddir, dy[t], dc, a[t], steps.c[t], steps.tc[t], valid[t], dx[t], ddir2, dc2)
            np.matmul(dx[t], W_hh, out=dmat2)  # (N, 4H) @ (4H, H) -> (N, H)
            dmat, dmat2, ddir, ddir2, dc, dc2 = dmat2, dmat, ddir2, ddir, dc2, dc
        return dx, dhh, (dmat + ddir, dc)
    for t in range(L - 1, -1, -1):
        if steps.kind == "gru":
            K.gru_backward_step(dmat, ddir, dy[t], a[t], steps.hn[t], steps.h[t], valid[t], dx[t], dhh[t], ddir2)
        else:
            K.rnn_backward_step(dmat, ddir, dy[t], a[t], valid[t], ops.name == "rnn_relu", dx[t], ddir2)
        np.matmul(dhh[t], W_hh, out=dmat2)     # (N, G*H) @ (G*H, H) -> (N, H)
        dmat, dmat2, ddir, ddir2 = dmat2, dmat, ddir2, ddir
    return dx, dhh, (dmat + ddir,)
