r"""GRU: one time step, forward and backward, in PyTorch's formulation (gate order r, z, n).

.. math::
    \begin{aligned}
    r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
    z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
    n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
    h' &= (1 - z) \odot n + z \odot h
    \end{aligned}

The trap: the reset gate multiplies :math:`W_{hn} h + b_{hn}` (bias included), not :math:`h`.
So the gradient of the recurrent pre-activation ``dhh`` differs from that of the input
projection ``dx_proj`` in the n block: ``dhh_n = dx_proj_n * r``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid, sigmoid_grad


class GRUCache(NamedTuple):
    h_prev: np.ndarray  # (N, H)
    gates: np.ndarray   # (N, 3H) activations r, z, n
    hn: np.ndarray      # (N, H) W_hn h_prev + b_hn


def gru_step(x_proj, state, W_hh, b_hh=None, gate=sigmoid):
    """``state = (h_prev,)``; returns ``((h,), cache)``. ``gate`` squashes r and z."""
    (h_prev,) = state
    H = h_prev.shape[1]
    hh = h_prev @ W_hh.T  # (N, H) @ (H, 3H) -> (N, 3H)
    if b_hh is not None:
        hh += b_hh
    a = x_proj[:, : 2 * H] + hh[:, : 2 * H]
    gates = np.empty_like(hh)
    gate(a, out=gates[:, : 2 * H])                      # r, z
    r, z = gates[:, :H], gates[:, H : 2 * H]
    hn = hh[:, 2 * H :]
    n = np.tanh(x_proj[:, 2 * H :] + r * hn, out=gates[:, 2 * H :])
    h = n + z * (h_prev - n)                            # (1 - z) n + z h_prev
    return (h,), GRUCache(h_prev, gates, hn)


def gru_step_backward(dstate, cache: GRUCache, W_hh, gate_grad=sigmoid_grad):
    """Returns ``(dx_proj, dhh, (dh_prev,))``."""
    (dh,) = dstate
    H = dh.shape[1]
    g = cache.gates
    r, z, n = g[:, :H], g[:, H : 2 * H], g[:, 2 * H :]
    dx = np.empty_like(g)                               # (N, 3H)
    dn = dh * (1.0 - z) * (1.0 - n * n)
    dx[:, 2 * H :] = dn
    dx[:, :H] = dn * cache.hn * gate_grad(r)
    dx[:, H : 2 * H] = dh * (cache.h_prev - n) * gate_grad(z)
    dhh = dx.copy()
    dhh[:, 2 * H :] *= r
    dh_prev = dh * z + dhh @ W_hh  # (N, 3H) @ (3H, H) -> (N, H)
    return dx, dhh, (dh_prev,)
