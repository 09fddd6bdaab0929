"""Handwriting as pen movement (issue 13): the mixture density output against finite differences
and a PyTorch autograd reference of the same formula, biased sampling, the kanjivg loader, the
user's stroke files, the model, the baselines and the command line end to end."""
import json
import math
import os

import numpy as np
import pytest
import torch

from rnnkit.functional.mdn import mdn_loss, mdn_loss_backward, mdn_raw, mdn_sample, mdn_size, mdn_split
from tests.helpers import numeric_grad


def _problem(shape=(4, 3), M=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(shape + (mdn_size(M),)).astype(dtype)
    target = rng.standard_normal(shape + (3,)).astype(dtype)
    target[..., 2] = rng.random(shape) < 0.3
    mask = rng.random(shape) < 0.8
    mask.flat[0] = True
    return y, target, mask


def torch_mdn_nll(y, target, M):
    """Graves (2013) eqs. 18-26 written directly with torch ops (no log-space tricks except logsumexp),
    for autograd to differentiate: the reference the hand-written backward is held to."""
    e_hat = y[..., 0]
    pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat = (y[..., 1 + k * M: 1 + (k + 1) * M] for k in range(6))
    x1, x2, x3 = target[..., 0:1], target[..., 1:2], target[..., 2]
    s1, s2, rho = torch.exp(s1_hat), torch.exp(s2_hat), torch.tanh(rho_hat)
    z1, z2 = (x1 - mu1) / s1, (x2 - mu2) / s2
    Z = z1 ** 2 + z2 ** 2 - 2 * rho * z1 * z2
    log_n = -torch.log(2 * math.pi * s1 * s2 * torch.sqrt(1 - rho ** 2)) - Z / (2 * (1 - rho ** 2))
    log_pi = torch.log_softmax(pi_hat, -1)
    e = torch.sigmoid(e_hat)
    return -torch.logsumexp(log_pi + log_n, -1) - (x3 * torch.log(e) + (1 - x3) * torch.log(1 - e))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mdn_loss_and_gradient_match_torch_autograd(reduction):
    M = 3
    y, target, mask = _problem(M=M)
    loss, cache = mdn_loss(y, target, mask, reduction=reduction)
    dy = mdn_loss_backward(cache, 0.7)
    yt = torch.tensor(y, requires_grad=True)
    nll = torch_mdn_nll(yt, torch.tensor(target), M) * torch.tensor(mask, dtype=torch.float64)
    ref = nll.sum() / (mask.sum() if reduction == "mean" else 1.0)
    (0.7 * ref).backward()
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dy, yt.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert np.all(dy[~mask] == 0)


def test_mdn_gradient_matches_finite_differences():
    y, target, mask = _problem(shape=(3, 2), M=2, seed=1)
    y[..., -2:] *= 2.0                                   # correlations near +-1 too
    _, cache = mdn_loss(y, target, mask)
    dy = mdn_loss_backward(cache)
    f = lambda: mdn_loss(y, target, mask)[0]  # noqa: E731
    for idx in np.ndindex(y.shape):
        np.testing.assert_allclose(dy[idx], numeric_grad(f, y, idx), rtol=1e-5, atol=1e-8, err_msg=str(idx))


def test_mdn_loss_is_finite_where_tanh_saturates():
    y, target, _ = _problem(shape=(2,), M=1, dtype=np.float32)
    y[..., -1] = 30.0                                    # tanh(30) == 1 in float32: 1 - rho^2 would be 0
    loss, cache = mdn_loss(y, target)
    assert np.isfinite(loss) and np.all(np.isfinite(mdn_loss_backward(cache)))


def test_mdn_raw_round_trips_parameters_and_the_single_gaussian_density():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((500, 2)) @ np.array([[1.0, 0.0], [0.6, 0.5]]) + [0.3, -1.0]
    mean, cov = x.mean(0), np.cov(x.T, bias=True)
    s = np.sqrt(np.diag(cov))
    y = mdn_raw(np.full(500, 0.25), [1.0], [mean[0]], [mean[1]], [s[0]], [s[1]], [cov[0, 1] / s[0] / s[1]])
    target = np.concatenate([x, np.zeros((500, 1))], 1)
    loss, _ = mdn_loss(y, target, reduction="sum")
    d = x - mean                                           # the bivariate normal written with the inverse covariance
    logdens = -np.log(2 * np.pi) - 0.5 * np.log(np.linalg.det(cov)) - 0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(loss, -logdens.sum() - 500 * np.log(0.75), rtol=1e-10)
    e_hat, pi_hat, *_ = mdn_split(y)
    np.testing.assert_allclose(1 / (1 + np.exp(-e_hat)), 0.25)


def test_mdn_sample_moments_bias_and_seed():
    mean, s, rho = np.array([1.0, -2.0]), np.array([0.5, 2.0]), 0.8
    y = mdn_raw(np.full(20000, 0.3), [0.5, 0.5], [1.0, 1.0], [-2.0, -2.0], [s[0]] * 2, [s[1]] * 2, [rho] * 2)
    out = mdn_sample(y, rng=0)
    np.testing.assert_allclose(out[:, :2].mean(0), mean, atol=0.05)
    np.testing.assert_allclose(out[:, :2].std(0), s, rtol=0.03)
    assert abs(np.corrcoef(out[:, 0], out[:, 1])[0, 1] - rho) < 0.02
    assert abs(out[:, 2].mean() - 0.3) < 0.02 and set(np.unique(out[:, 2])) <= {0.0, 1.0}
    biased = mdn_sample(y, rng=0, bias=1.0)                 # sigma shrinks by e^-b
    np.testing.assert_allclose(biased[:, :2].std(0), s * np.exp(-1.0), rtol=0.03)
    np.testing.assert_array_equal(mdn_sample(y[:50], rng=3), mdn_sample(y[:50], rng=3))
    with pytest.raises(ValueError, match="bias"):
        mdn_sample(y, bias=-1.0)


def test_mdn_bad_sizes_are_one_line():
    with pytest.raises(ValueError, match="1 \\+ 6M"):
        mdn_loss(np.zeros((2, 8)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="targets of shape"):
        mdn_loss(np.zeros((2, 7)), np.zeros((2, 2)))
