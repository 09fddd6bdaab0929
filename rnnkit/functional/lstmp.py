r"""LSTM with a projection of the hidden state (LSTMP; Sak et al. 2014, PyTorch's ``proj_size``):
one direction of one layer, forward and backward through time.

.. math::
    m_t = o_t \odot \tanh(c_t),\qquad h_t = W_{hr} m_t

with the gates computed from :math:`h_{t-1}` (size P) exactly as in :mod:`rnnkit.functional.lstm`:
``W_hh`` is (4H, P), ``W_hr`` is (P, H), ``c`` keeps H units and ``h`` (the output and the
recurrent input) has P. The gate arithmetic is the LSTM step's; this module adds the projection
to the time loop, with the same packed-sequence semantics as :mod:`rnnkit.functional.recurrent`
(a padded step carries the state, outputs zero and receives no gradient). It runs on NumPy (the
fused kernels implement the plain cells only); ``W_hr``'s gradient is one product after the loop.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid, sigmoid_grad
from .lstm import lstm_step, lstm_step_backward
from .recurrent import reverse_time


class LSTMPLayerCache(NamedTuple):
    x: np.ndarray            # (L, N, H_in) input in processing order
    h_prev: np.ndarray       # (L, N, P) projected state entering each step
    m: np.ndarray            # (L, N, H) o * tanh(c) of each step, before the projection
    steps: list              # LSTMCache per step
    mask: np.ndarray | None  # (L, N, 1) bool, processing order
    rev: np.ndarray | None   # (L, N) per-sequence reversal, or None


def lstmp_layer_forward(x, state0, W_ih, W_hh, W_hr, b_ih=None, b_hh=None, mask=None, reverse=False, rev=None,
                        gate=sigmoid):
    """``x`` (L, N, H_in), ``state0 = (h_0 (N, P), c_0 (N, H))``. Returns ``(y (L, N, P), (h, c), cache)``,
    ``y`` in natural time order."""
    if reverse:
        x = reverse_time(x, rev)
    L, N = x.shape[:2]
    P, H = W_hr.shape
    x_proj = x @ W_ih.T                                   # (L, N, 4H)
    if b_ih is not None:
        x_proj += b_ih
    y = np.empty((L, N, P), x.dtype)
    h_prev = np.empty((L, N, P), x.dtype)
    ms = np.empty((L, N, H), x.dtype)
    steps = [None] * L
    state = tuple(state0)
    for t in range(L):
        h_prev[t] = state[0]
        (m, c), steps[t] = lstm_step(x_proj[t], state, W_hh, b_hh, gate=gate)
        ms[t] = m
        new = (m @ W_hr.T, c)                             # (N, H) @ (H, P) -> (N, P)
        if mask is not None:
            keep = mask[t]
            new = tuple(np.where(keep, a, b) for a, b in zip(new, state))
            np.multiply(new[0], keep, out=y[t])
        else:
            y[t] = new[0]
        state = new
    if reverse:
        y = reverse_time(y, rev)
    return y, state, LSTMPLayerCache(x, h_prev, ms, steps, mask, rev if reverse else None)


def lstmp_layer_backward(dy, dstate, cache: LSTMPLayerCache, W_ih, W_hh, W_hr, reverse=False, record=False,
                         gate_grad=sigmoid_grad):
    """``dy`` (L, N, P) in natural order, ``dstate = (dh_n (N, P), dc_n (N, H))``. Returns
    ``(dx, (dh_0, dc_0), grads)`` with ``grads`` keys ``W_ih, W_hh, W_hr, b_ih, b_hh`` (and ``h``,
    dL/dh_t in natural order, with ``record``)."""
    if reverse:
        dy = reverse_time(dy, cache.rev)
    mask = cache.mask
    if mask is not None:
        dy = dy * mask                                    # outputs at padded steps are constant zeros
    L, N, P = dy.shape
    H = W_hr.shape[1]
    dx_proj = np.empty((L, N, 4 * H), dy.dtype)
    dh_steps = np.empty((L, N, P), dy.dtype)              # gradient into each step's projected output
    rec = np.empty((L, N, P), dy.dtype) if record else None
    dh, dc = dstate
    for t in range(L - 1, -1, -1):
        dh = dh + dy[t]
        if record:
            rec[t] = dh
        if mask is None:
            dh_t, dc_t = dh, dc
        else:
            keep = mask[t]
            dh_t, dc_t = dh * keep, dc * keep
        dh_steps[t] = dh_t
        da, _, (dh_prev, dc_prev) = lstm_step_backward((dh_t @ W_hr, dc_t), cache.steps[t], W_hh,
                                                       gate_grad=gate_grad)
        dx_proj[t] = da
        if mask is None:
            dh, dc = dh_prev, dc_prev
        else:
            dh, dc = np.where(keep, dh_prev, dh), np.where(keep, dc_prev, dc)
    flat = dx_proj.reshape(L * N, 4 * H)
    grads = {"W_ih": flat.T @ cache.x.reshape(L * N, -1),                     # (4H, H_in)
             "W_hh": flat.T @ cache.h_prev.reshape(L * N, P),                 # (4H, P)
             "W_hr": dh_steps.reshape(L * N, P).T @ cache.m.reshape(L * N, H),  # (P, H)
             "b_ih": flat.sum(axis=0), "b_hh": flat.sum(axis=0)}
    dx = dx_proj @ W_ih
    if reverse:
        dx = reverse_time(dx, cache.rev)
    if record:
        grads["h"] = reverse_time(rec, cache.rev) if reverse else rec
    return dx, (dh, dc), grads
