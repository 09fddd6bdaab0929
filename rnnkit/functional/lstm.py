r"""LSTM: one time step, forward and backward, in PyTorch's formulation (gate order i, f, g, o).

.. math::
    \begin{aligned}
    i &= \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) &
    f &= \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
    g &= \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) &
    o &= \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
    c' &= f \odot c + i \odot g &
    h' &= o \odot \tanh(c')
    \end{aligned}

Backward reads every derivative from cached activations: :math:`\sigma' = s(1-s)`,
:math:`\tanh' = 1 - t^2`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid, sigmoid_grad
from ..products import matmul


class LSTMCache(NamedTuple):
    h_prev: np.ndarray  # (N, H)
    c_prev: np.ndarray  # (N, H)
    gates: np.ndarray   # (N, 4H) activations i, f, g, o
    tanh_c: np.ndarray  # (N, H)


def lstm_step(x_proj, state, W_hh, b_hh=None, gate=sigmoid, h_rec=None):
    """``state = (h_prev, c_prev)``; returns ``((h, c), cache)``. ``gate`` squashes i, f, o.
    ``h_rec``, when given, enters the recurrent product in place of ``h_prev`` (recurrent
    dropout: ``h_prev * mask``)."""
    h_prev, c_prev = state
    H = c_prev.shape[1]  # (h_prev has P < H units in an LSTM with a projection)
    a = matmul(h_prev if h_rec is None else h_rec, W_hh.T)  # (N, H) @ (H, 4H) -> (N, 4H)
    a += x_proj
    if b_hh is not None:
        a += b_hh
    gate(a[:, : 2 * H], out=a[:, : 2 * H])             # i, f
    np.tanh(a[:, 2 * H : 3 * H], out=a[:, 2 * H : 3 * H])  # g
    gate(a[:, 3 * H :], out=a[:, 3 * H :])             # o
    i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    c = f * c_prev + i * g    # (N, H)
    tanh_c = np.tanh(c)
    h = o * tanh_c
    return (h, c), LSTMCache(h_prev, c_prev, a, tanh_c)


def lstm_step_backward(dstate, cache: LSTMCache, W_hh, gate_grad=sigmoid_grad, rec_mask=None):
    """``dstate = (dh, dc)`` w.r.t. the step's outputs; returns ``(dx_proj, dhh, (dh_prev, dc_prev))``.
    ``gate_grad`` is the gate's derivative as a function of its output; ``rec_mask`` the mask
    the forward's ``h_rec`` applied to ``h_prev``."""
    dh, dc = dstate
    H = dh.shape[1]
    a = cache.gates
    i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    t = cache.tanh_c
    dc = dc + dh * o * (1.0 - t * t)                   # (N, H) total gradient into c
    da = np.empty_like(a)                              # (N, 4H) gradient of the pre-activations
    da[:, :H] = dc * g * gate_grad(i)
    da[:, H : 2 * H] = dc * cache.c_prev * gate_grad(f)
    da[:, 2 * H : 3 * H] = dc * i * (1.0 - g * g)
    da[:, 3 * H :] = dh * t * gate_grad(o)
    dh_prev = matmul(da, W_hh)  # (N, 4H) @ (4H, H) -> (N, H)
    if rec_mask is not None:
        dh_prev *= rec_mask
    dc_prev = dc * f
    return da, da, (dh_prev, dc_prev)
