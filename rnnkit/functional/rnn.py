r"""Elman RNN: one time step, forward and backward.

.. math::
    h_t = \phi(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh}), \qquad \phi \in \{\tanh, \mathrm{ReLU}\}

``x_proj`` is the hoisted input projection :math:`x_t W_{ih}^T + b_{ih}` (computed for all time
steps at once by :mod:`rnnkit.functional.recurrent`); the step adds the recurrent part.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class RNNCache(NamedTuple):
    h_prev: np.ndarray  # (N, H)
    h: np.ndarray       # (N, H) the activation, from which the derivative is read


def _rnn_step(x_proj, state, W_hh, b_hh, relu: bool):
    (h_prev,) = state
    pre = h_prev @ W_hh.T  # (N, H) @ (H, H) -> (N, H)
    pre += x_proj
    if b_hh is not None:
        pre += b_hh
    h = np.maximum(pre, 0, out=pre) if relu else np.tanh(pre, out=pre)
    return (h,), RNNCache(h_prev, h)


def _rnn_step_backward(dstate, cache: RNNCache, W_hh, relu: bool):
    (dh,) = dstate
    dpre = dh * (cache.h > 0) if relu else dh * (1.0 - cache.h * cache.h)  # (N, H)
    dh_prev = dpre @ W_hh  # (N, H) @ (H, H) -> (N, H)
    return dpre, dpre, (dh_prev,)


def rnn_tanh_step(x_proj, state, W_hh, b_hh=None):
    """One tanh step. ``state = (h_prev,)``; returns ``((h,), cache)``."""
    return _rnn_step(x_proj, state, W_hh, b_hh, relu=False)


def rnn_tanh_step_backward(dstate, cache, W_hh):
    """Returns ``(dx_proj, dhh, (dh_prev,))``; ``dhh`` is the gradient of ``h_prev W_hh^T + b_hh``."""
    return _rnn_step_backward(dstate, cache, W_hh, relu=False)


def rnn_relu_step(x_proj, state, W_hh, b_hh=None):
    """One ReLU step (the IRNN when ``W_hh`` starts as the identity)."""
    return _rnn_step(x_proj, state, W_hh, b_hh, relu=True)


def rnn_relu_step_backward(dstate, cache, W_hh):
    return _rnn_step_backward(dstate, cache, W_hh, relu=True)
