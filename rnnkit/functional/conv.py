r"""Temporal convolution and masked batch normalisation over (L, N, C) sequences, forward and
backward side by side.

**Convolution** (``conv1d``), 'same' zero padding, PyTorch's ``Conv1d`` cross-correlation with
``weight`` (C_out, C_in, K):

.. math::
    y_{t,n,o} = b_o + \sum_{k=0}^{K-1} \sum_c W_{o,c,k}\, x_{t+k-p_l,\,n,\,c},\qquad p_l = \lfloor (K-1)/2 \rfloor

with :math:`x` zero outside :math:`0 \le t < L` (the extra zero of an even kernel goes on the right:
:math:`p_r = K - 1 - p_l`, as PyTorch's and Keras' ``padding='same'``). Written as im2col and one
matrix product: the columns :math:`X_{t,n} = [x_{t-p_l}; \dots; x_{t-p_l+K-1}] \in \mathbb R^{K C_{in}}`
and :math:`y = X \tilde W^\top + b` with :math:`\tilde W_{o,(k,c)} = W_{o,c,k}`. Backward:
:math:`\partial L/\partial \tilde W = dy^\top X`, :math:`\partial L/\partial b = \sum_{t,n} dy`,
:math:`\partial L/\partial X = dy\, \tilde W`, scattered back (added) onto the steps each column read.

**Batch normalisation** (``batch_norm``; Ioffe & Szegedy 2015, "Batch normalization:
accelerating deep network training by reducing internal covariate shift", Algorithm 1) per
feature over the valid steps only: with the mask :math:`m_{t,n} = [t < \ell_n]` and
:math:`M = \sum_{t,n} m_{t,n}`,

.. math::
    \mu = \frac1M \sum_{t,n} m\, x,\qquad \sigma^2 = \frac1M \sum_{t,n} m\, (x - \mu)^2,\qquad
    \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}},\qquad y = m\,(\gamma \hat x + \beta)

Backward, from the cached :math:`\hat x` and :math:`1/\sqrt{\sigma^2+\epsilon}` (with
:math:`g = m\, \gamma\, dy`, sums over the valid steps):

.. math::
    \frac{\partial L}{\partial x} = \frac{m}{M \sqrt{\sigma^2+\epsilon}}
        \Big(M g - \sum g - \hat x \sum g \hat x\Big),\qquad
    \frac{\partial L}{\partial \gamma} = \sum m\, dy\, \hat x,\qquad \frac{\partial L}{\partial \beta} = \sum m\, dy

In evaluation the running statistics take the place of :math:`\mu, \sigma^2` (constants):
:math:`\partial L/\partial x = m\, \gamma\, dy / \sqrt{\sigma^2_{run} + \epsilon}`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

EPS = 1e-5


def same_padding(K: int) -> tuple[int, int]:
    """(left, right) zeros so that a kernel of K steps keeps L output steps."""
    left = (K - 1) // 2
    return left, K - 1 - left


def conv1d(x, weight, bias=None):
    """``x`` (L, N, C_in), ``weight`` (C_out, C_in, K), ``bias`` (C_out,) or None ->
    ``(y (L, N, C_out), cols)``; ``cols`` (L*N, K*C_in) is what backward needs."""
    L, N, C = x.shape
    O, _, K = weight.shape
    left, right = same_padding(K)
    xp = np.zeros((L + K - 1, N, C), x.dtype)
    xp[left:left + L] = x                                                   # (L+K-1, N, C_in) zero padded
    cols = np.empty((L, N, K, C), x.dtype)
    for k in range(K):
        cols[:, :, k] = xp[k:k + L]                                         # column block k reads step t+k-left
    cols = cols.reshape(L * N, K * C)
    W = weight.transpose(0, 2, 1).reshape(O, K * C)                         # (C_out, K*C_in), (k, c) order
    y = cols @ W.T                                                          # (L*N, K*C_in) @ (K*C_in, C_out)
    if bias is not None:
        y += bias
    return y.reshape(L, N, O), cols


def conv1d_backward(dy, cols, weight, need_weight=True):
    """``dy`` (L, N, C_out) -> ``(dx (L, N, C_in), dweight (C_out, C_in, K) or None, dbias (C_out,))``."""
    L, N, O = dy.shape
    _, C, K = weight.shape
    left, _ = same_padding(K)
    flat = dy.reshape(L * N, O)
    W = weight.transpose(0, 2, 1).reshape(O, K * C)
    dweight = None
    if need_weight:
        dweight = (flat.T @ cols).reshape(O, K, C).transpose(0, 2, 1)      # (C_out, L*N) @ (L*N, K*C_in)
    dcols = (flat @ W).reshape(L, N, K, C)                                 # (L*N, C_out) @ (C_out, K*C_in)
    dxp = np.zeros((L + K - 1, N, C), dy.dtype)
    for k in range(K):
        dxp[k:k + L] += dcols[:, :, k]
    return dxp[left:left + L], dweight, flat.sum(0)


class BatchNormCache(NamedTuple):
    x_hat: np.ndarray     # (L, N, C) normalised input
    inv_std: np.ndarray   # (C,) 1 / sqrt(var + eps)
    mask: np.ndarray      # (L, N, 1) 1 at valid steps
    count: int            # M, the number of valid steps (0: evaluation, statistics were constants)


def valid_mask(L, N, lengths, dtype):
    """(L, N, 1): 1 where ``t < lengths[n]`` (every step without ``lengths``)."""
    if lengths is None:
        return np.ones((L, N, 1), dtype)
    return (np.arange(L)[:, None] < np.asarray(lengths)[None, :]).astype(dtype)[:, :, None]


def batch_norm(x, gamma, beta, mask, mean=None, var=None, eps=EPS):
    """``x`` (L, N, C), ``mask`` (L, N, 1). With ``mean``/``var`` None: batch statistics over the
    valid steps (training); else those constants (evaluation). Returns ``(y, cache, (mu, var_biased, M))``."""
    if mean is None:
        M = int(mask.sum())
        mu = (x * mask).sum((0, 1)) / M                                     # (C,)
        centred = (x - mu) * mask
        var = np.einsum("lnc,lnc->c", centred, centred) / M                 # (C,) biased, as in the normalisation
        stats = (mu, var, M)
    else:
        M, mu, stats = 0, mean, None
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mu) * inv_std                                              # (L, N, C)
    y = (x_hat * gamma + beta) * mask
    return y.astype(x.dtype, copy=False), BatchNormCache(x_hat.astype(x.dtype, copy=False),
                                                          inv_std.astype(x.dtype), mask, M), stats


def batch_norm_backward(dy, cache: BatchNormCache, gamma):
    """``dy`` (L, N, C) -> ``(dx, dgamma (C,), dbeta (C,))``."""
    x_hat, inv_std, mask, M = cache
    dy = dy * mask
    dbeta = dy.sum((0, 1))
    dgamma = np.einsum("lnc,lnc->c", dy, x_hat)
    g = dy * gamma                                                          # zero at padded steps
    if M == 0:                                                              # evaluation: constant statistics
        return g * inv_std, dgamma, dbeta
    dx = (M * g - g.sum((0, 1)) - x_hat * np.einsum("lnc,lnc->c", g, x_hat)) * (inv_std / M)
    return dx * mask, dgamma, dbeta
