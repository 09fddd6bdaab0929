r"""Mixture density output for pen offsets (Graves 2013, "Generating Sequences With Recurrent
Neural Networks", sec. 4, eqs. 15-25): a bivariate Gaussian mixture over the offset
:math:`(x_1, x_2) = (dx, dy)` and a Bernoulli over the end-of-stroke bit :math:`x_3`.

A network output :math:`\hat y` of ``1 + 6M`` numbers a point is laid out as

    ``[ê | π̂_1..π̂_M | μ1_1..μ1_M | μ2_1..μ2_M | σ̂1_1..σ̂1_M | σ̂2_1..σ̂2_M | ρ̂_1..ρ̂_M]``

and mapped to the distribution's parameters by

.. math::

    e = \mathrm{sigmoid}(\hat e), \quad \pi_j = \frac{\exp \hat\pi_j}{\sum_k \exp \hat\pi_k}, \quad
    \mu_j = \hat\mu_j, \quad \sigma_j = \exp \hat\sigma_j, \quad \rho_j = \tanh \hat\rho_j

(Graves's eq. 19 writes :math:`e = 1 / (1 + \exp \hat e)`, the same with the sign of
:math:`\hat e` flipped; rnnkit uses the usual logistic so that a positive :math:`\hat e` means
"pen up"). The loss of one point (eq. 26) is

.. math::

    \mathcal L = -\log \sum_j \pi_j \, \mathcal N(x_1, x_2 \mid \mu_j, \sigma_j, \rho_j)
                 - \log \begin{cases} e & x_3 = 1 \\ 1 - e & x_3 = 0 \end{cases}

    \mathcal N = \frac{1}{2\pi\sigma_1\sigma_2\sqrt{1-\rho^2}} \exp\Big(\frac{-Z}{2(1-\rho^2)}\Big),
    \quad Z = z_1^2 + z_2^2 - 2\rho z_1 z_2, \quad z_i = \frac{x_i - \mu_i}{\sigma_i}

computed in log space: the mixture by log-sum-exp over the components, the Bernoulli as
``softplus(ê) - x3 ê``, and :math:`1 - \rho^2 = \mathrm{sech}^2 \hat\rho` so that a saturated
``tanh`` never makes it zero (:math:`\cosh^2 \hat\rho` itself overflows float32 only past
:math:`|\hat\rho| \approx 44`, where the loss becomes inf and the Trainer's divergence guard acts). With the responsibilities
:math:`\gamma_j = \pi_j \mathcal N_j / \sum_k \pi_k \mathcal N_k` and :math:`C = 1/(1-\rho^2)`,
the gradients (eqs. 27-33, derived here for this parameterisation) are

.. math::

    \partial_{\hat e} = e - x_3, \quad \partial_{\hat\pi_j} = \pi_j - \gamma_j, \quad
    \partial_{\mu1_j} = -\gamma_j \frac{C}{\sigma_1} (z_1 - \rho z_2), \quad
    \partial_{\hat\sigma 1_j} = \gamma_j \big(1 - C z_1 (z_1 - \rho z_2)\big),

    \partial_{\hat\rho_j} = \gamma_j \big(\rho\,C Z - \rho - z_1 z_2\big)

and symmetrically for the second coordinate. :func:`mdn_sample` draws from the mixture with
Graves's biased sampling (sec. 5.4, eqs. 61-62).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validate import as_float_array
from .losses import _check_reduction, log_softmax, softmax

LOG_2PI = float(np.log(2.0 * np.pi))


def mdn_size(n_components: int) -> int:
    """Outputs a point needs for ``n_components`` mixture components: ``1 + 6 M``."""
    return 1 + 6 * int(n_components)


def mdn_components(y) -> int:
    """M from an output of last dimension ``1 + 6M`` (a ValueError for any other size)."""
    size = y.shape[-1]
    if size < 7 or (size - 1) % 6:
        raise ValueError(f"mixture density output: expected a last dimension of 1 + 6M (7, 13, 19, ...), got {size}")
    return (size - 1) // 6


def mdn_split(y):
    """``y`` (\\*, 1+6M) -> views ``(e_hat (*,), pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat)``, each (\\*, M)."""
    M = mdn_components(y)
    blocks = [y[..., 1 + k * M: 1 + (k + 1) * M] for k in range(6)]
    return (y[..., 0], *blocks)


def mdn_raw(e, pi, mu1, mu2, sigma1, sigma2, rho, dtype=np.float64) -> np.ndarray:
    """The inverse map: distribution parameters (pen-up probability (\\*,), weights, means, standard
    deviations and correlations (\\*, M)) -> the raw ``(*, 1+6M)`` output that encodes them, so a
    fitted baseline is scored by the same :func:`mdn_loss` as the network."""
    e = np.asarray(e, np.float64)
    parts = [np.log(e / (1.0 - e))[..., None], np.log(pi), mu1, mu2, np.log(sigma1), np.log(sigma2),
             np.arctanh(rho)]
    return np.concatenate([np.broadcast_to(np.asarray(p, np.float64), e.shape + (np.shape(p)[-1],))
                           for p in parts], axis=-1).astype(dtype)


def _log_cosh(a):
    """``log cosh a`` without overflow: ``|a| + log1p(exp(-2|a|)) - log 2``."""
    b = np.abs(a)
    return b + np.log1p(np.exp(-2.0 * b)) - np.log(2.0)


class MDNCache(NamedTuple):
    e: np.ndarray        # (*,) sigmoid(ê)
    x3: np.ndarray       # (*,) target pen bit
    pi: np.ndarray       # (*, M) mixture weights
    gamma: np.ndarray    # (*, M) responsibilities
    z1: np.ndarray       # (*, M) standardised offsets
    z2: np.ndarray
    s1: np.ndarray       # (*, M) sigma
    s2: np.ndarray
    rho: np.ndarray      # (*, M)
    C: np.ndarray        # (*, M) 1 / (1 - rho^2)
    weight: np.ndarray   # (*,) 1 for counted points, 0 otherwise (divided by the count for 'mean')


def mdn_nll(y, target):
    """The per-point loss ``(*,)`` and the cache of :func:`mdn_loss`, before any reduction."""
    e_hat, pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat = mdn_split(y)
    x1, x2, x3 = target[..., 0:1], target[..., 1:2], target[..., 2]
    s1, s2, rho = np.exp(s1_hat), np.exp(s2_hat), np.tanh(rho_hat)
    z1, z2 = (x1 - mu1) / s1, (x2 - mu2) / s2                          # (*, M)
    C = np.cosh(rho_hat) ** 2                                          # 1 / (1 - rho^2) = cosh^2(rho_hat)
    Z = z1 * z1 + z2 * z2 - 2.0 * rho * z1 * z2
    log_pi = log_softmax(pi_hat)
    log_n = -LOG_2PI - s1_hat - s2_hat + _log_cosh(rho_hat) - 0.5 * C * Z   # log N_j: -1/2 log(1-rho^2) = log cosh
    joint = log_pi + log_n                                             # (*, M)
    top = joint.max(-1, keepdims=True)
    lse = top[..., 0] + np.log(np.exp(joint - top).sum(-1))            # log sum_j pi_j N_j
    gamma = np.exp(joint - lse[..., None])
    bern = np.logaddexp(0.0, e_hat) - x3 * e_hat                       # -log e^x3 (1-e)^(1-x3)
    e = 1.0 / (1.0 + np.exp(-e_hat))
    nll = bern - lse
    return nll, MDNCache(e, x3, np.exp(log_pi), gamma, z1, z2, s1, s2, rho, C, np.ones_like(nll))


def mdn_loss(y, target, mask=None, reduction: str = "mean"):
    """Negative log-likelihood of ``target`` (\\*, 3) = (dx, dy, pen_up) under the mixture that
    ``y`` (\\*, 1+6M) encodes. ``mask`` (\\*) bool drops points (padding); ``reduction='mean'``
    divides by the number of counted points, ``'sum'`` does not. Returns ``(loss, cache)``,
    the loss a Python float in nats."""
    _check_reduction(reduction)
    y = as_float_array(y, "mdn_loss output")
    target = as_float_array(target, "mdn_loss target")
    if target.shape != y.shape[:-1] + (3,):
        raise ValueError(f"mdn_loss: expected targets of shape {y.shape[:-1] + (3,)} (dx, dy, pen_up per point), "
                         f"got {target.shape}")
    nll, cache = mdn_nll(y, target)
    weight = np.ones(nll.shape, y.dtype) if mask is None else np.asarray(mask, bool).astype(y.dtype)
    if weight.shape != nll.shape:
        raise ValueError(f"mdn_loss mask: expected shape {nll.shape}, got {weight.shape}")
    if reduction == "mean":
        count = weight.sum()
        if count == 0:
            raise ValueError("mdn_loss: every point is masked; nothing to average")
        weight /= count
    return float((nll * weight).sum()), cache._replace(weight=weight)


def mdn_loss_backward(cache: MDNCache, dloss: float = 1.0) -> np.ndarray:
    """Gradient of the loss w.r.t. the raw output ``y`` (\\*, 1+6M) (the equations above)."""
    c = cache
    g = c.gamma
    a1, a2 = c.z1 - c.rho * c.z2, c.z2 - c.rho * c.z1                  # (*, M)
    Z = c.z1 * c.z1 + c.z2 * c.z2 - 2.0 * c.rho * c.z1 * c.z2
    parts = [(c.e - c.x3)[..., None],
             c.pi - g,
             -g * c.C * a1 / c.s1,
             -g * c.C * a2 / c.s2,
             g * (1.0 - c.C * c.z1 * a1),
             g * (1.0 - c.C * c.z2 * a2),
             g * (c.rho * c.C * Z - c.rho - c.z1 * c.z2)]
    d = np.concatenate(parts, axis=-1)
    d *= (c.weight * dloss)[..., None]
    return d.astype(c.pi.dtype, copy=False)


def mdn_sample(y, rng=None, bias: float = 0.0) -> np.ndarray:
    r"""One draw per row from the mixture ``y`` (N, 1+6M) -> (N, 3) = (dx, dy, pen_up).

    ``bias`` b >= 0 is Graves's biased sampling (eqs. 61-62): :math:`\sigma_j = \exp(\hat\sigma_j - b)`
    and :math:`\pi_j = \mathrm{softmax}(\hat\pi (1 + b))_j`, so a larger b draws more likely, neater
    strokes (b = 0 samples the model as trained). The pen bit is Bernoulli(e), unbiased.
    """
    if not bias >= 0:
        raise ValueError(f"bias: expected a number >= 0, got {bias}")
    rng = np.random.default_rng(rng)
    y = np.asarray(y, np.float64)
    e_hat, pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat = mdn_split(y)
    N = y.shape[0]
    p = softmax(pi_hat * (1.0 + bias))                                   # (N, M)
    j = np.minimum((p.cumsum(1) < rng.random((N, 1))).sum(1), p.shape[1] - 1)
    rows = np.arange(N)
    s1, s2 = np.exp(s1_hat[rows, j] - bias), np.exp(s2_hat[rows, j] - bias)
    rho = np.tanh(rho_hat[rows, j])
    n1, n2 = rng.standard_normal(N), rng.standard_normal(N)
    out = np.empty((N, 3))
    out[:, 0] = mu1[rows, j] + s1 * n1
    out[:, 1] = mu2[rows, j] + s2 * (rho * n1 + np.sqrt(1.0 - rho * rho) * n2)
    out[:, 2] = rng.random(N) < 1.0 / (1.0 + np.exp(-e_hat))
    return out
