r"""Layer normalisation over blocks of the last axis, forward and backward side by side.

Ba, Kiros & Hinton 2016, "Layer Normalization", eq. 4: for each row and each of ``G`` blocks of
``H`` features (a gate block of a recurrent layer),

.. math::
    \mu = \frac{1}{H} \sum_j a_j,\qquad \sigma = \sqrt{\frac{1}{H} \sum_j (a_j - \mu)^2 + \epsilon},\qquad
    \hat a_j = \frac{a_j - \mu}{\sigma},\qquad y_j = \gamma_j \hat a_j + \beta_j

with a learned gain :math:`\gamma` and bias :math:`\beta` per feature (``G * H`` each) and
:math:`\epsilon = 10^{-5}` (PyTorch's ``LayerNorm`` default). Backward, per block, from the cached
:math:`\hat a` and :math:`1/\sigma` (no statistic is recomputed), with :math:`g = \gamma \odot dy`:

.. math::
    \frac{\partial L}{\partial a} = \frac{1}{\sigma}\Big(g - \overline{g} - \hat a\, \overline{g \hat a}\Big),\qquad
    \frac{\partial L}{\partial \gamma} = \sum_{rows} dy \odot \hat a,\qquad
    \frac{\partial L}{\partial \beta} = \sum_{rows} dy

where the bars are means over the block's H features.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

EPS = 1e-5


class LayerNormCache(NamedTuple):
    a_hat: np.ndarray    # (..., G, H) normalised input
    inv_std: np.ndarray  # (..., G, 1) 1 / sigma per block


def layer_norm(a, gain, bias, blocks=1, eps=EPS):
    """``a`` (..., G*H) normalised over each of ``blocks`` blocks of its last axis; ``gain``,
    ``bias`` (G*H,). Returns ``(y (..., G*H), cache)``."""
    shape = a.shape
    H = shape[-1] // blocks
    b = a.reshape(shape[:-1] + (blocks, H))                           # (..., G, H)
    mu = b.sum(axis=-1, keepdims=True)
    mu *= 1.0 / H
    a_hat = b - mu                                                    # centred, normalised in place below
    inv_std = np.einsum("...i,...i->...", a_hat, a_hat)[..., None]   # (..., G, 1) sum of squares
    inv_std *= 1.0 / H
    inv_std += eps
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    a_hat *= inv_std
    y = a_hat.reshape(shape) * gain
    y += bias
    return y, LayerNormCache(a_hat, inv_std)


def layer_norm_backward(dy, cache: LayerNormCache, gain):
    """``dy`` (..., G*H) -> ``(da (..., G*H), dgain (G*H,), dbias (G*H,))``, the parameter
    gradients summed over every leading axis."""
    a_hat, inv_std = cache
    shape, H = dy.shape, a_hat.shape[-1]
    lead = tuple(range(dy.ndim - 1))
    dgain = (dy * a_hat.reshape(shape)).sum(axis=lead)
    dbias = dy.sum(axis=lead)
    g = (dy * gain).reshape(a_hat.shape)                              # (..., G, H)
    mean_g = g.sum(axis=-1, keepdims=True)
    mean_g *= 1.0 / H
    mean_ga = np.einsum("...i,...i->...", g, a_hat)[..., None]       # (..., G, 1)
    mean_ga *= 1.0 / H
    g -= mean_g
    g -= a_hat * mean_ga
    g *= inv_std
    return g.reshape(shape), dgain, dbias
