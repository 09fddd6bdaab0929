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

The other form (Keras's ``reset_after=False``, ONNX's ``linear_before_reset=0``; the original
paper's) applies the reset gate before the recurrent product:

.. math::
    n = \tanh(W_{in} x + b_{in} + W_{hn} (r \odot h) + b_{hn})

Here ``dhh`` equals ``dx_proj`` in every block, but the n rows of ``W_hh`` multiply
``r * h``, not ``h``, so their weight gradient is ``dhh_n^T (r * h)``:
:func:`gru_reset_before_weight_hh_grad` forms it, and the time loop calls it through
``CellOps.weight_hh_grad`` in place of ``dhh^T h``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid, sigmoid_grad
from ..products import matmul


class GRUCache(NamedTuple):
    h_prev: np.ndarray  # (N, H)
    gates: np.ndarray   # (N, 3H) activations r, z, n
    hn: np.ndarray      # (N, H) W_hn h_prev + b_hn


def gru_step(x_proj, state, W_hh, b_hh=None, gate=sigmoid, h_rec=None):
    """``state = (h_prev,)``; returns ``((h,), cache)``. ``gate`` squashes r and z. ``h_rec``, when
    given, enters the recurrent product in place of ``h_prev`` (recurrent dropout: ``h_prev *
    mask``); the carried term ``z * h_prev`` keeps ``h_prev``, as in Gal & Ghahramani and Keras."""
    (h_prev,) = state
    H = h_prev.shape[1]
    hh = matmul(h_prev if h_rec is None else h_rec, W_hh.T)  # (N, H) @ (H, 3H) -> (N, 3H)
    if b_hh is not None:
        hh += b_hh
    h, gates = gru_gates(x_proj, hh, h_prev, gate)
    return (h,), GRUCache(h_prev, gates, hh[:, 2 * H :])


def gru_gates(x_proj, hh, h_prev, gate=sigmoid):
    """The gate arithmetic once the recurrent pre-activation ``hh`` (N, 3H) (``W_hh h + b_hh``, or a
    normalised form of it) is known: returns ``(h, gates)`` with ``gates`` (N, 3H) = r, z, n."""
    H = h_prev.shape[1]
    a = x_proj[:, : 2 * H] + hh[:, : 2 * H]
    gates = np.empty_like(hh)
    gate(a, out=gates[:, : 2 * H])                      # r, z
    r, z = gates[:, :H], gates[:, H : 2 * H]
    n = np.tanh(x_proj[:, 2 * H :] + r * hh[:, 2 * H :], out=gates[:, 2 * H :])
    return n + z * (h_prev - n), gates                  # (1 - z) n + z h_prev


def gru_step_backward(dstate, cache: GRUCache, W_hh, gate_grad=sigmoid_grad, rec_mask=None):
    """Returns ``(dx_proj, dhh, (dh_prev,))``; ``rec_mask`` is the mask of the forward's ``h_rec``."""
    (dh,) = dstate
    dx, dhh = gru_gates_backward(dh, cache, gate_grad)
    dh_rec = matmul(dhh, W_hh)  # (N, 3H) @ (3H, H) -> (N, H)
    if rec_mask is not None:
        dh_rec *= rec_mask
    dh_prev = dh * cache.gates[:, dh.shape[1] : 2 * dh.shape[1]] + dh_rec   # dh * z + ...
    return dx, dhh, (dh_prev,)


def gru_gates_backward(dh, cache, gate_grad=sigmoid_grad):
    """The gradients of :func:`gru_gates`' inputs from ``dh`` (N, H) and a cache with ``gates``,
    ``h_prev`` and ``hn`` (the n block of ``hh``): ``(dx_proj, dhh)``, each (N, 3H)."""
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
    return dx, dhh


class GRUResetBeforeCache(NamedTuple):
    h_prev: np.ndarray  # (N, H)
    gates: np.ndarray   # (N, 3H) activations r, z, n
    h_rec: np.ndarray | None = None  # (N, H) the state in the recurrent products, when not h_prev


def gru_reset_before_step(x_proj, state, W_hh, b_hh=None, gate=sigmoid, h_rec=None):
    """The reset gate applied before the recurrent product: ``n = tanh(x_n + W_hn (r * h) + b_hn)``.
    ``state = (h_prev,)``; returns ``((h,), cache)``. ``h_rec`` as in :func:`gru_step`."""
    (h_prev,) = state
    H = h_prev.shape[1]
    h_r = h_prev if h_rec is None else h_rec            # (N, H) the state in the recurrent products
    gates = np.empty_like(x_proj)                       # (N, 3H)
    a = h_r @ W_hh[: 2 * H].T                           # (N, H) @ (H, 2H) -> (N, 2H)
    if b_hh is not None:
        a += b_hh[: 2 * H]
    a += x_proj[:, : 2 * H]
    gate(a, out=gates[:, : 2 * H])                      # r, z
    r, z = gates[:, :H], gates[:, H : 2 * H]
    hn = (r * h_r) @ W_hh[2 * H :].T                    # (N, H) @ (H, H) -> (N, H)
    if b_hh is not None:
        hn += b_hh[2 * H :]
    hn += x_proj[:, 2 * H :]
    n = np.tanh(hn, out=gates[:, 2 * H :])
    h = n + z * (h_prev - n)                            # (1 - z) n + z h_prev
    return (h,), GRUResetBeforeCache(h_prev, gates, h_rec)


def gru_reset_before_step_backward(dstate, cache: GRUResetBeforeCache, W_hh, gate_grad=sigmoid_grad,
                                   rec_mask=None):
    """Returns ``(dx_proj, dhh, (dh_prev,))``; ``dhh`` is ``dx_proj`` (every block's recurrent
    pre-activation enters like the projection), the n block's weight gradient needs ``r * h``.
    ``rec_mask`` is the mask of the forward's ``h_rec``."""
    (dh,) = dstate
    H = dh.shape[1]
    g, h_prev = cache.gates, cache.h_prev
    h_r = h_prev if cache.h_rec is None else cache.h_rec
    r, z, n = g[:, :H], g[:, H : 2 * H], g[:, 2 * H :]
    dx = np.empty_like(g)                               # (N, 3H)
    dn = dh * (1.0 - z) * (1.0 - n * n)
    dx[:, 2 * H :] = dn
    drh = dn @ W_hh[2 * H :]                            # (N, H) @ (H, H) -> (N, H): d(r * h_prev)
    dx[:, :H] = drh * h_r * gate_grad(r)
    dx[:, H : 2 * H] = dh * (h_prev - n) * gate_grad(z)
    if rec_mask is None:
        dh_prev = dh * z + drh * r + dx[:, : 2 * H] @ W_hh[: 2 * H]  # (N, 2H) @ (2H, H) -> (N, H)
    else:                                               # the products saw h_prev * mask, the carry h_prev
        dh_prev = dh * z + (drh * r + dx[:, : 2 * H] @ W_hh[: 2 * H]) * rec_mask
    return dx, dx, (dh_prev,)


def gru_reset_before_weight_hh_grad(dhh, h_prev, steps):
    """``dW_hh`` (3H, H) from ``dhh`` (M, 3H) and ``h_prev`` (M, H), the rows of ``steps`` (the
    step caches) stacked in the same order: the r, z rows multiplied ``h_prev``, the n rows
    ``r * h_prev`` (with recurrent dropout, ``h_prev`` is the masked state the products saw)."""
    H = h_prev.shape[1]
    r = np.concatenate([s.gates[:, :H] for s in steps])  # (M, H)
    dW = np.empty((3 * H, H), dhh.dtype)
    dW[: 2 * H] = dhh[:, : 2 * H].T @ h_prev            # (2H, M) @ (M, H)
    dW[2 * H :] = dhh[:, 2 * H :].T @ (r * h_prev)      # (H, M) @ (M, H)
    return dW
