r"""Elman RNN: one time step, forward and backward.

.. math::
    h_t = \phi(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh}), \qquad \phi \in \{\tanh, \mathrm{ReLU}\}

``x_proj`` is the hoisted input projection :math:`x_t W_{ih}^T + b_{ih}` (computed for all time
steps at once by :mod:`rnnkit.functional.recurrent`); the step adds the recurrent part.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from ..products import matmul


class RNNCache(NamedTuple):
    h_prev: np.ndarray  # (N, H)
    h: np.ndarray       # (N, H) the activation, from which the derivative is read


def _rnn_step(x_proj, state, W_hh, b_hh, relu: bool, h_rec=None):
    (h_prev,) = state
    pre = matmul(h_prev if h_rec is None else h_rec, W_hh.T)  # (N, H) @ (H, H) -> (N, H)
    pre += x_proj
    if b_hh is not None:
        pre += b_hh
    h = np.maximum(pre, 0, out=pre) if relu else np.tanh(pre, out=pre)
    return (h,), RNNCache(h_prev, h)


def _rnn_step_backward(dstate, cache: RNNCache, W_hh, relu: bool, rec_mask=None):
    (dh,) = dstate
    dpre = dh * (cache.h > 0) if relu else dh * (1.0 - cache.h * cache.h)  # (N, H)
    dh_prev = matmul(dpre, W_hh)  # (N, H) @ (H, H) -> (N, H)
    if rec_mask is not None:
        dh_prev *= rec_mask
    return dpre, dpre, (dh_prev,)


def rnn_tanh_step(x_proj, state, W_hh, b_hh=None, h_rec=None):
    """One tanh step. ``state = (h_prev,)``; returns ``((h,), cache)``. ``h_rec``, when given, is the
    state as it enters the recurrent product in place of ``h_prev`` (recurrent dropout:
    ``h_prev * mask``)."""
    return _rnn_step(x_proj, state, W_hh, b_hh, relu=False, h_rec=h_rec)


def rnn_tanh_step_backward(dstate, cache, W_hh, rec_mask=None):
    """Returns ``(dx_proj, dhh, (dh_prev,))``; ``dhh`` is the gradient of ``h_prev W_hh^T + b_hh``.
    ``rec_mask`` is the recurrent-dropout mask the forward multiplied ``h_prev`` by (``h_rec``)."""
    return _rnn_step_backward(dstate, cache, W_hh, relu=False, rec_mask=rec_mask)


def rnn_relu_step(x_proj, state, W_hh, b_hh=None, h_rec=None):
    """One ReLU step (the IRNN when ``W_hh`` starts as the identity)."""
    return _rnn_step(x_proj, state, W_hh, b_hh, relu=True, h_rec=h_rec)


def rnn_relu_step_backward(dstate, cache, W_hh, rec_mask=None):
    return _rnn_step_backward(dstate, cache, W_hh, relu=True, rec_mask=rec_mask)
