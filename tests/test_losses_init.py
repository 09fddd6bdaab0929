"""Losses against torch.nn.functional; initialisers' defining properties."""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.functional import init
from rnnkit.functional.losses import cross_entropy, cross_entropy_backward, mse, mse_backward


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_matches_torch_with_ignore_and_mask(reduction):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 3, 7))
    targets = rng.integers(0, 7, (5, 3))
    targets[1, 2] = -100
    mask = np.ones((5, 3), bool)
    mask[4, :] = False
    loss, cache = cross_entropy(logits, targets, mask=mask, reduction=reduction)
    d = cross_entropy_backward(cache)
    tl = torch.tensor(logits, requires_grad=True)
    tt = torch.tensor(np.where(mask, targets, -100))
    ref = torch.nn.functional.cross_entropy(tl.reshape(-1, 7), tt.reshape(-1), reduction=reduction)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(d, tl.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert not d[4].any() and not d[1, 2].any()


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4]])
    loss, cache = cross_entropy(logits, np.array([1]))
    assert loss == pytest.approx(1e4)
    assert np.isfinite(cross_entropy_backward(cache)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_row_kernels_are_numpys_bits(dtype, monkeypatch):
    """The compiled cross-entropy (rnnkit/rows.py: shifted rows, NumPy's exponential,
    sums in NumPy's pairwise order) gives the loss, softmax and gradient of the NumPy path bit
    for bit: rows of 1 to 300 classes (the pairwise sum's three regimes), ignored and masked
    positions, a NaN, an infinite and an all -inf row, a 1-D input."""
    from rnnkit import rows
    from rnnkit.functional import losses

    if rows.softmax_rows(np.zeros((2, 3), dtype), np.zeros(2, np.int64)) is None:
        pytest.skip("the compiled backend is not in use")
    rng = np.random.default_rng(5)
    cases = []
    for C in (1, 3, 7, 8, 65, 128, 129, 300):
        logits = (rng.standard_normal((6, 5, C)) * 4).astype(dtype)
        targets = rng.integers(0, C, (6, 5))
        targets[0, 0] = -100
        cases.append((logits, targets, rng.random((6, 5)) > 0.2))
    odd = (rng.standard_normal((4, 9)) * 3).astype(dtype)
    odd[0, 3], odd[1, 2], odd[2] = np.nan, np.inf, -np.inf
    cases.append((odd, rng.integers(0, 9, 4), None))
    cases.append(((rng.standard_normal(11) * 2).astype(dtype), np.int64(4), None))
    for logits, targets, mask in cases:
        got = []
        for kernels in (True, False):
            if not kernels:
                monkeypatch.setattr(losses, "softmax_rows", lambda *a: None)
                monkeypatch.setattr(losses, "softmax_grad_rows", lambda *a: None)
            for reduction in ("mean", "sum"):
                loss, cache = cross_entropy(logits, targets, mask=mask, reduction=reduction)
                got.append((np.array(loss), cache.probs, cross_entropy_backward(cache, 0.7)))
            monkeypatch.undo()
        for a, b in zip(got[:2], got[2:]):
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)
                assert x.dtype == y.dtype


def test_cross_entropy_errors():
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\]"):
        cross_entropy(np.zeros((2, 3)), np.array([0, 5]))
    with pytest.raises(ValueError, match="to match logits"):
        cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer class indices"):
        cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="every position is masked"):
        cross_entropy(np.zeros((2, 3)), np.array([-100, -100]))
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="none")


def test_mse_matches_torch():
    rng = np.random.default_rng(1)
    p, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss, cache = mse(p, t)
    tp = torch.tensor(p, requires_grad=True)
    ref = torch.nn.functional.mse_loss(tp, torch.tensor(t))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(mse_backward(cache), tp.grad.numpy(), rtol=1e-12)
    mask = np.array([1, 1, 0, 0])[:, None]
    loss_m, _ = mse(p, t, mask=mask)
    assert loss_m == pytest.approx(((p - t)[:2] ** 2).mean())
    with pytest.raises(ValueError, match="expected target of shape"):
        mse(p, t[:2])


def test_orthogonal_and_identity_and_xavier():
    rng = np.random.default_rng(0)
    q = init.orthogonal((6, 6), rng)
    np.testing.assert_allclose(q @ q.T, np.eye(6), atol=1e-12)
    w = init.orthogonal((3, 6), rng)
    np.testing.assert_allclose(w @ w.T, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(init.identity((4, 4), 0.5), 0.5 * np.eye(4))
    x = init.xavier_uniform((100, 50), rng)
    assert np.abs(x).max() <= np.sqrt(6 / 150) and np.abs(x).max() > 0.9 * np.sqrt(6 / 150)


def test_init_recurrent_schemes():
    m = rnnkit.LSTM(3, 5, 2, dtype=np.float64, seed=0)
    assert all(np.abs(p).max() <= 1 / np.sqrt(5) for p in m.params.values())
    init.init_recurrent(m, "orthogonal", forget_bias=1.0)
    for k in ("weight_hh_l0", "weight_hh_l1"):
        for g in range(4):
            block = m.params[k][g * 5:(g + 1) * 5]
            np.testing.assert_allclose(block @ block.T, np.eye(5), atol=1e-10)
    np.testing.assert_array_equal(m.params["bias_ih_l0"][5:10], 1.0)
    np.testing.assert_array_equal(m.params["bias_hh_l0"][5:10], 0.0)
    assert not m.params["bias_ih_l0"][:5].any()
    r = rnnkit.RNN(3, 4, nonlinearity="relu", dtype=np.float64)
    init.init_recurrent(r, "identity")
    np.testing.assert_array_equal(r.params["weight_hh_l0"], np.eye(4))
    assert not r.params["bias_hh_l0"].any()
    with pytest.raises(ValueError, match="only LSTMs have a forget gate"):
        init.init_recurrent(r, "default", forget_bias=1.0)
    with pytest.raises(ValueError, match="scheme"):
        init.init_recurrent(r, "he")
